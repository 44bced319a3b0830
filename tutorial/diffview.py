"""Turn a stage's `git diff --color-moved` output into HTML a learner can read.

git marks each changed line with a colour; stage.py asks for one distinct colour per
kind (see GIT_COLOURS), and parse() maps them back to kinds: added, removed, and code
moved away from or into a place. The HTML uses the classes styled by docs/css/diff.css.
The files come in the order in which the stage's page first names them in its prose
(prose_spans, file_names), and tutorial/mkdocs_hooks.py links those names to them.
Only the standard library is used.
"""
import dataclasses
import html
import re
from collections import Counter

from highlight import highlight_lines

# The colour git gives each kind of line (`git -c color.diff.<slot>=<colour>`), and back.
GIT_COLOURS = {"old": "red", "new": "green", "oldMoved": "magenta", "newMoved": "cyan",
               "oldMovedAlternative": "blue", "newMovedAlternative": "yellow",
               "context": "normal", "meta": "bold", "frag": "white", "func": "normal",
               "commit": "normal", "whitespace": "normal"}
KIND_OF_SGR = {"31": ("del", False), "32": ("add", False), "35": ("moved-from", False),
               "34": ("moved-from", True), "36": ("moved-to", False), "33": ("moved-to", True)}
DIFF_OPTIONS = ["--color=always", "--color-moved=zebra",
                "--color-moved-ws=allow-indentation-change",
                "--ws-error-highlight=none", "--src-prefix=a/", "--dst-prefix=b/"]
ANSI_RE = re.compile(r"\x1b\[([\d;]*)m")
HUNK_RE = re.compile(r"^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@ ?(.*)$")
FOLD_MOVED_FROM = 6  # a block of code moved away longer than this is folded
NOTE_MIN_LINES = 3  # a moved block this long or longer says where it went or came from
SIGNS = {"add": "+", "del": "−", "moved-from": "−", "moved-to": "+", "context": " "}


@dataclasses.dataclass
class Line:
    """One line of a hunk."""

    kind: str  # context, add, del, moved-from, moved-to
    alt: bool  # the alternative colour of zebra: tells adjacent moved blocks apart
    old_no: int | None
    new_no: int | None
    text: str


@dataclasses.dataclass
class Hunk:
    """The lines under one @@ header, with the function name git found for it."""

    old_start: int
    new_start: int
    context: str
    lines: list


@dataclasses.dataclass
class FileDiff:
    """The diff of one file: its numstat entry, its hunks, and the HTML of both versions."""

    change: object  # stage.FileChange: path, old_path, added, removed, binary, label
    hunks: list
    old_html: list = dataclasses.field(default_factory=list)
    new_html: list = dataclasses.field(default_factory=list)
    new_file: bool = False
    deleted_file: bool = False

    def count(self, kind):
        """Return how many lines of the given kind the file has."""
        return sum(1 for hunk in self.hunks for line in hunk.lines if line.kind == kind)

    @property
    def anchor(self):
        """The id of the file's block on the page."""
        return "diff-" + re.sub(r"[^a-z0-9]+", "-", self.change.path.lower()).strip("-")


def split_files(coloured):
    """Split coloured `git diff` output into one list of raw lines per file."""
    files = []
    for raw in coloured.splitlines():
        if ANSI_RE.sub("", raw).startswith("diff --git "):
            files.append([])
        if files:
            files[-1].append(raw)
    return files


def parse_file(raw_lines, change):
    """Parse the raw coloured lines of one file into a FileDiff."""
    diff = FileDiff(change, [])
    old_no = new_no = 0
    for raw in raw_lines:
        text = ANSI_RE.sub("", raw)
        match = HUNK_RE.match(text)
        if match:
            old_no, new_no = int(match[1]), int(match[2])
            diff.hunks.append(Hunk(old_no, new_no, match[3], []))
            continue
        if not diff.hunks:  # the header
            diff.new_file |= text.startswith("new file mode")
            diff.deleted_file |= text.startswith("deleted file mode")
            continue
        if text.startswith("\\"):  # "\ No newline at end of file"
            continue
        sgr = ANSI_RE.search(raw)
        codes = sgr[1].split(";") if sgr else []
        sign, body = text[:1], text[1:]
        if sign == " " or not sign:
            diff.hunks[-1].lines.append(Line("context", False, old_no, new_no, body))
            old_no, new_no = old_no + 1, new_no + 1
            continue
        kind, alt = next((KIND_OF_SGR[code] for code in codes if code in KIND_OF_SGR),
                         ("add" if sign == "+" else "del", False))
        if sign == "+":
            diff.hunks[-1].lines.append(Line(kind, alt, None, new_no, body))
            new_no += 1
        else:
            diff.hunks[-1].lines.append(Line(kind, alt, old_no, None, body))
            old_no += 1
    return diff


def parse(coloured, changes, show):
    """Return a FileDiff per change, coloured by highlight_lines from show(side, path).

    changes come from `git diff --numstat` with the same options, so in the same order;
    show("old"|"new", path) returns a version of a file as text.
    """
    raw_files = split_files(coloured)
    if len(raw_files) != len(changes):
        raise ValueError(f"the diff has {len(raw_files)} files, numstat {len(changes)}")
    diffs = []
    for raw, change in zip(raw_files, changes, strict=True):
        diff = parse_file(raw, change)
        if not change.binary and diff.hunks:
            if not diff.new_file:
                diff.old_html = highlight_lines(change.old_path, show("old", change.old_path))
            if not diff.deleted_file:
                diff.new_html = highlight_lines(change.path, show("new", change.path))
        diffs.append(diff)
    return diffs


# --- where moved code went -------------------------------------------------------

def blocks(hunk):
    """Yield (kind, lines) for runs of lines of the same kind and zebra colour."""
    run = []
    for line in hunk.lines:
        if run and (line.kind, line.alt) != (run[0].kind, run[0].alt):
            yield run[0].kind, run
            run = []
        run.append(line)
    if run:
        yield run[0].kind, run


def normal(text):
    """Compare lines as move detection does here: ignoring all whitespace."""
    return "".join(text.split())


class MoveIndex:
    """Where each moved line's text sits on the other side of the move, by file."""

    def __init__(self, diffs):
        """Index the lines moved away and the lines moved in, by their text."""
        self.places = {"moved-from": {}, "moved-to": {}}
        for diff in diffs:
            for hunk in diff.hunks:
                for line in hunk.lines:
                    if line.kind in self.places and normal(line.text):
                        number = line.old_no if line.kind == "moved-from" else line.new_no
                        moved_from = line.kind == "moved-from"
                        side = diff.change.old_path if moved_from else diff.change.path
                        places = self.places[line.kind].setdefault(normal(line.text), [])
                        places.append((side, number))

    def other_end(self, kind, lines):
        """Return (path, first line) where a moved block came from or went to, or None."""
        other = "moved-to" if kind == "moved-from" else "moved-from"
        votes = Counter()
        first = {}
        for line in lines:
            for path, number in self.places[other].get(normal(line.text), []):
                votes[path] += 1
                first.setdefault(path, number)
        if not votes:
            return None
        path = votes.most_common(1)[0][0]
        return path, first[path]


# --- HTML ----------------------------------------------------------------------

def code(text):
    """Return text as an HTML code element."""
    return f"<code>{html.escape(text)}</code>"


def line_html(diff, line):
    """Return one diff line as HTML: line numbers, sign, coloured code."""
    coloured = None
    if line.new_no is not None and line.kind != "moved-from" and line.new_no <= len(diff.new_html):
        coloured = diff.new_html[line.new_no - 1]
    elif line.old_no is not None and line.old_no <= len(diff.old_html):
        coloured = diff.old_html[line.old_no - 1]
    if coloured is None:
        coloured = html.escape(line.text, quote=False)
    classes = f"fd-line fd-{line.kind}" + (" fd-alt" if line.alt else "")
    old_no = "" if line.old_no is None else line.old_no
    new_no = "" if line.new_no is None else line.new_no
    return (f'<span class="{classes}"><span class="fd-no">{old_no}</span>'
            f'<span class="fd-no">{new_no}</span><span class="fd-sign">{SIGNS[line.kind]}</span>'
            f"{coloured}\n</span>")


def note_html(kind, lines, moves):
    """Return the line that says where a moved block went to or came from."""
    end = moves.other_end(kind, lines)
    count = f"{len(lines)} line{'s' if len(lines) != 1 else ''}"
    verb = "moved to" if kind == "moved-from" else "moved here from"
    where = f"{html.escape(end[0])}, line {end[1]}" if end else "elsewhere in this change"
    return f'<span class="fd-note fd-note-{kind}">{count} {verb} {where}\n</span>'


def pre(lines_html):
    """Wrap line spans in the code block markup the theme colours."""
    return ('<div class="highlight"><pre><code><span class="fd-lines">'
            + "".join(lines_html) + "</span></code></pre></div>")


def hunk_html(diff, hunk, moves):
    """Return a hunk as HTML, with a note on each moved block and long moved-away blocks folded."""
    parts = []
    current = []
    if not (diff.new_file or diff.deleted_file):
        current.append(f'<span class="fd-hunk">@@ −{hunk.old_start} +{hunk.new_start} @@ '
                       f"{html.escape(hunk.context, quote=False)}\n</span>")
    for kind, lines in blocks(hunk):
        rows = [line_html(diff, line) for line in lines]
        if kind == "moved-from" and len(lines) > FOLD_MOVED_FROM:
            parts.append(pre(current))
            current = []
            summary = note_html(kind, lines, moves)
            parts.append(f'<details class="fd-fold"><summary>{summary}</summary>'
                         f"{pre(rows)}</details>")
            continue
        if kind in ("moved-from", "moved-to") and len(lines) >= NOTE_MIN_LINES:
            current.append(note_html(kind, lines, moves))
        current.extend(rows)
    if current:
        parts.append(pre(current))
    return "".join(parts)


def counts_html(diff):
    """Return the +added −removed and moved counts of one file, as HTML."""
    if diff.change.binary:
        return '<span class="fd-counts">binary</span>'
    added, removed = diff.count("add"), diff.count("del")
    moved_in, moved_out = diff.count("moved-to"), diff.count("moved-from")
    parts = [f'<span class="fd-plus">+{added}</span>', f'<span class="fd-minus">−{removed}</span>']
    if moved_in:
        parts.append(f'<span class="fd-moved-in">{moved_in} moved in</span>')
    if moved_out:
        parts.append(f'<span class="fd-moved-out">{moved_out} moved out</span>')
    return '<span class="fd-counts">' + " ".join(parts) + "</span>"


def title_html(diff):
    """Return the file's name (both names for a rename) as HTML."""
    change = diff.change
    if change.old_path != change.path:
        return f"{code(change.old_path)} → {code(change.path)}"
    return code(change.path)


def file_html(diff, moves, open_):
    """Return the block of one file: a summary line, then its hunks."""
    state = " open" if open_ else ""
    status = " (new)" if diff.new_file else " (deleted)" if diff.deleted_file else ""
    summary = f"<summary>{title_html(diff)}{status} {counts_html(diff)}</summary>"
    if diff.change.binary:
        body = "<p>A binary file, not shown.</p>"
    elif not diff.hunks:
        body = "<p>Renamed; the content is unchanged.</p>"
    else:
        body = "".join(hunk_html(diff, hunk, moves) for hunk in diff.hunks)
    return f'<details class="fd-file" id="{diff.anchor}"{state}>{summary}{body}</details>'


# --- the page's order -----------------------------------------------------------

CHANGE_HEADING = "## The change"  # the page's prose ends here; the generated diff follows
FENCE_RE = re.compile(r"^\s*(`{3,}|~{3,})")
CODE_SPAN_RE = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.DOTALL)


def prose_text(markdown):
    """Return a page's Markdown before its change heading, without its fenced code blocks."""
    kept, fence = [], None
    for line in markdown.splitlines():
        if line.strip() == CHANGE_HEADING:
            break
        match = FENCE_RE.match(line)
        if fence is None and match:
            fence = match[1]
        elif fence is not None and match and match[1].startswith(fence):
            fence = None
        elif fence is None:
            kept.append(line)
    return "\n".join(kept)


def prose_spans(markdown):
    """Return the text of each code span of a page's prose, in order."""
    spans = []
    for paragraph in re.split(r"\n\s*\n", prose_text(markdown)):
        spans.extend(" ".join(match[2].split()) for match in CODE_SPAN_RE.finditer(paragraph))
    return spans


def file_names(diffs, paths):
    """Return {name: changed path} for the names by which prose may call a changed file.

    A name is the file's path (or its old path, for a rename), a shorter tail of it that
    no other file of paths (the app's files before and after the stage) ends with, as
    `models.py` for flack/models.py, or a folder that holds no other file, as
    `migrations/versions/` at the stage that adds the first migration.
    """
    names = {}
    changed = [diff.change.path for diff in diffs]
    for diff in diffs:
        for name in (diff.change.path, diff.change.old_path):
            names[name] = diff.change.path
    everything = set(paths) | set(changed)
    for path in changed:
        parts = path.split("/")
        for i in range(1, len(parts)):
            tail, folder = "/".join(parts[i:]), "/".join(parts[:i]) + "/"
            if sum(other == tail or other.endswith("/" + tail) for other in everything) == 1:
                names.setdefault(tail, path)
            if sum(other.startswith(folder) for other in everything) == 1:
                names.setdefault(folder, path)
    return names


def named_paths(spans, names):
    """Return the changed paths that the spans name, in the order of their first mention."""
    named = []
    for span in spans:
        path = names.get(span)
        if path and path not in named:
            named.append(path)
    return named


def link_targets(diffs, names):
    """Return each changed file's path, anchor and names, for links from the page's prose."""
    by_path = {}
    for name, path in names.items():
        by_path.setdefault(path, []).append(name)
    return [{"path": diff.change.path, "anchor": diff.anchor,
             "names": sorted(by_path.get(diff.change.path, []))} for diff in diffs]


# --- the diffstat ----------------------------------------------------------------

# Files that a tool writes: their diff is long and teaches nothing. A migration script
# starts as Alembic's, but may be the lesson: it is one only when the page names it.
LOCK_RE = re.compile(r"(^|/)(package-lock\.json|[^/]+\.lock)$")
MIGRATION_RE = re.compile(r"(^|/)migrations/versions/[^/]+\.py$")
GROUP_RANK = {"core": 0, "tests": 1, "docs": 2, "generated": 3}


def group_of(path, named=False):
    """Return "core", "tests", "docs" or "generated" (lock files, unnamed migrations)."""
    name = path.rsplit("/", 1)[-1]
    if LOCK_RE.search(path) or (MIGRATION_RE.search(path) and not named):
        return "generated"
    if path.startswith("tests/") or name.startswith("test_") or name in ("tests.py", "conftest.py"):
        return "tests"
    if name.endswith((".md", ".rst")) or path.startswith("docs/"):
        return "docs"
    return "core"


def churn(diff):
    """Return how many lines of the file changed or moved, to put the lesson's files first."""
    return diff.change.added + diff.change.removed


def ordered(diffs, named=()):
    """Return the diffs by group; in each, the files the page names in its order, then the rest.

    The rest come most changed first. named lists the changed paths that the page's
    prose names, in the order of their first mention.
    """
    mention = {path: index for index, path in enumerate(named)}

    def key(diff):
        """Sort by group, mention, churn, path."""
        path = diff.change.path
        return (GROUP_RANK[group_of(path, path in mention)], mention.get(path, len(mention)),
                -churn(diff), path)

    return sorted(diffs, key=key)


def unchanged_rename(diff):
    """Tell whether the file was only renamed."""
    return diff.change.old_path != diff.change.path and not diff.hunks


def stat_rows(diffs):
    """Return the table rows of the diffstat for some files."""
    rows = []
    for diff in diffs:
        rows.append(f'<tr><td><a href="#{diff.anchor}">{title_html(diff)}</a></td>'
                    f"<td>{counts_html(diff)}</td></tr>")
    return "".join(rows)


def diffstat_html(diffs, named=()):
    """Return the diffstat: core files in a table; tests, docs, generated files, renames folded."""
    groups = {"core": [], "tests": [], "docs": [], "generated": [], "renamed": []}
    for diff in ordered(diffs, named):
        path = diff.change.path
        groups["renamed" if unchanged_rename(diff) else group_of(path, path in named)].append(diff)
    parts = []
    if groups["core"]:
        parts.append(f'<table class="fd-stat">{stat_rows(groups["core"])}</table>')
    titles = {"tests": "Tests", "docs": "Documentation", "generated": "Lock and generated files",
              "renamed": "Renamed, content unchanged"}
    for name, title in titles.items():
        if groups[name]:
            n = len(groups[name])
            parts.append(f'<details class="fd-stat-group"><summary>{title}: {n} '
                         f'file{"s" if n != 1 else ""}</summary>'
                         f'<table class="fd-stat">{stat_rows(groups[name])}</table></details>')
    return '<div class="fd-diffstat">' + "".join(parts) + "</div>"


def legend_html():
    """Return the key to the colours."""
    items = [("add", "added"), ("del", "removed"), ("moved-to", "moved here, unchanged"),
             ("moved-from", "moved away (folded when long)")]
    spans = " ".join(f'<span class="fd-key fd-{kind}">{text}</span>' for kind, text in items)
    return f'<p class="fd-legend">{spans}</p>'


def stage_html(diffs, named=()):
    """Return the whole change of a stage: legend, diffstat, then one block per file.

    named lists the changed paths that the page's prose names, in the order of their
    first mention (named_paths): they come first. Only core files start open.
    """
    moves = MoveIndex(diffs)
    blocks_html = []
    for diff in ordered(diffs, named):
        path = diff.change.path
        open_ = group_of(path, path in named) == "core" and not unchanged_rename(diff)
        blocks_html.append(file_html(diff, moves, open_))
    return ('<div class="flack-diff">' + legend_html() + diffstat_html(diffs, named)
            + "".join(blocks_html) + "</div>")
