"""mkdocs hooks of the tutorial's site (mkdocs.yml `hooks:`), with the standard library only.

on_page_content makes each code span of a stage page's prose that names a file the
stage changed, such as `flack/models.py`, a link to that file in the diff at the end of
the same page. `tutorial/stage.py docs` lists the changed files, their anchors and the
names the prose may use for them in docs/_generated/stages/vX.Y-files.json, from the
same diffs it renders. docs/js/diff-links.js opens the file's box when a link is followed.
"""
import html
import json
import re
from pathlib import Path

STAGE_PAGE_RE = re.compile(r"^stages/(v\d+\.\d+)\.md$")
TAG_RE = re.compile(r"<(/?)([a-zA-Z][\w-]*)([^>]*)>")
CODE_SPAN_RE = re.compile(r"<code>([^<]*)</code>")
# The parts of the page that stage.py generates: the diff, the file trees, the pictures.
# Code in them is not the page's prose, and the diff's own file names link already.
GENERATED_RE = re.compile(r"""\bclass=["'](?:[^"']*\s)?flack-(?:diff|trees|picture)["'\s]""")
# Code in these is not prose either: a code block, and a link of its own.
SKIPPED_TAGS = ("pre", "a")


def targets(files):
    """Return {name: (anchor, path)} from a stage's list of changed files."""
    return {name: (file["anchor"], file["path"]) for file in files for name in file["names"]}


def link_html(span, anchor, path):
    """Return a code span wrapped in a link to a file's block in the diff."""
    title = html.escape(f"{path}: its change, below", quote=True)
    return f'<a class="diff-link" href="#{anchor}" title="{title}">{span}</a>'


def link_code_spans(text, names):
    """Return HTML whose code spans that names knows link to their file in the diff.

    Code in a <pre>, in a link, or in a generated part (GENERATED_RE) stays as it is.
    """
    out, done = [], 0
    skipped = dict.fromkeys(SKIPPED_TAGS, 0)
    generated, depth = None, 0  # the tag of the generated part the scan is in, and how deep
    for tag in TAG_RE.finditer(text):
        closing, name, attributes = tag[1] == "/", tag[2].lower(), tag[3]
        if generated is None and not closing and GENERATED_RE.search(attributes):
            generated = name
        if name == generated:
            depth += -1 if closing else 1
            generated = generated if depth else None
        if name in skipped:
            skipped[name] += -1 if closing else 1
        elif name == "code" and not closing and generated is None and not any(skipped.values()):
            span = CODE_SPAN_RE.match(text, tag.start())
            target = span and names.get(html.unescape(span[1]).strip())
            if target:
                out.append(text[done:span.start()])
                out.append(link_html(span[0], *target))
                done = span.end()
    out.append(text[done:])
    return "".join(out)


def stage_files(docs_dir, version):
    """Return the changed files that `stage.py docs` listed for a stage ([] if none)."""
    path = Path(docs_dir) / "_generated" / "stages" / f"{version}-files.json"
    if not path.exists():
        return []
    return json.loads(path.read_text(encoding="utf-8"))


def on_page_content(html_text, page, config, files):
    """Link the code spans of a stage page that name a changed file to its diff."""
    match = STAGE_PAGE_RE.match(page.file.src_uri)
    if not match:
        return html_text
    names = targets(stage_files(config["docs_dir"], match[1]))
    return link_code_spans(html_text, names) if names else html_text
