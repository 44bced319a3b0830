#!/usr/bin/env python3
"""The stage tool: find, tag, test, check and document the stages of the Flack tutorial.

A stage is a commit whose subject ends with " (vX.Y)". A stage may span a few
consecutive commits with the same suffix; the last one represents it and carries
the annotated tag vX.Y. Stages are found from commit subjects, so everything here
also works in a fresh clone without tags.

    python3 tutorial/stage.py list              # the stages and their tags
    python3 tutorial/stage.py tag               # create the missing tags
    python3 tutorial/stage.py check [vX.Y ...]  # run every stage's tests at its commit
    python3 tutorial/stage.py try-it [vX.Y ...] # run every stage page's Try it blocks
    python3 tutorial/stage.py facts [vX.Y ...]  # record every stage's test count
    python3 tutorial/stage.py diff vX.Y         # what a stage changed in the app
    python3 tutorial/stage.py history           # check the history rules
    python3 tutorial/stage.py docs              # generate what the mkdocs pages include

The rules are in tutorial/README.md. Only the Python standard library and the git
command are used, plus Graphviz's dot for the pictures that `docs` draws. Other
scripts may import this module and call stages(), app_diff(), numstat() and friends.
"""

import argparse
import contextlib
import dataclasses
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import diffview
import filetree
import pictures
import tryit

# Paths that may change in any commit. Everything else is an app path and
# changes only in stage commits. Keep this list in step with tutorial/README.md.
INFRA_PATHS = ["README.md", "docs/", "mkdocs.yml", "tutorial/", "bench/", ".ci/", ".gitignore"]

SUBJECT_RE = re.compile(r"^(?P<title>.*) \((?P<version>v\d+\.\d+)\)$")
VERSION_RE = re.compile(r"^v\d+\.\d+$")

DEFAULT_TIMEOUT_MINUTES = 20
LOG_TAIL_LINES = 40


class StageError(Exception):
    """A problem the user must fix; main() prints it and exits with status 1."""


# --- git ---------------------------------------------------------------------

def git(*args, check=True):
    """Run git with args and return its standard output as text."""
    result = subprocess.run(["git", *args], capture_output=True, encoding="utf-8", errors="replace")
    if check and result.returncode != 0:
        raise StageError(f"git {' '.join(args)} failed:\n{result.stderr.strip()}")
    return result.stdout


def git_bytes(*args):
    """Run git with args and return its standard output as bytes."""
    return subprocess.run(["git", *args], capture_output=True, check=True).stdout


def top_dir():
    """Return the top folder of the work tree we are in."""
    return Path(git("rev-parse", "--show-toplevel").strip())


def empty_tree():
    """Return the id of the empty tree, the base for diffs of a root commit."""
    return git("hash-object", "-t", "tree", "/dev/null").strip()


def app_pathspecs():
    """Return git pathspecs that select the app paths: all but the infrastructure."""
    return [":/"] + [f":(top,exclude){path}" for path in INFRA_PATHS]


# --- stages ------------------------------------------------------------------

@dataclasses.dataclass
class Commit:
    """One commit on the first-parent history."""

    sha: str
    parent: str  # first parent, or "" for a root commit
    subject: str
    body: str

    @property
    def version(self):
        """The vX.Y at the end of the subject, or None."""
        match = SUBJECT_RE.match(self.subject)
        return match["version"] if match else None


@dataclasses.dataclass
class Stage:
    """A stage: its commits in order; the last one represents it."""

    version: str
    commits: list

    @property
    def sha(self):
        """The commit that represents the stage (and carries its tag)."""
        return self.commits[-1].sha

    @property
    def subject(self):
        """The subject of the representing commit."""
        return self.commits[-1].subject

    @property
    def title(self):
        """The subject without the " (vX.Y)" suffix."""
        return SUBJECT_RE.match(self.subject)["title"]

    @property
    def body(self):
        """The message body of the last commit that has one."""
        for commit in reversed(self.commits):
            if commit.body.strip():
                return commit.body
        return ""

    @property
    def base(self):
        """The tree or commit the stage starts from: the parent of its first commit."""
        return self.commits[0].parent or empty_tree()


def version_key(version):
    """Turn "v0.10" into (0, 10)."""
    return tuple(int(part) for part in version[1:].split("."))


def commits(rev="HEAD"):
    """Return the commits along the first-parent history of rev, oldest first."""
    if not git("rev-parse", "-q", "--verify", f"{rev}^{{commit}}", check=False).strip():
        raise StageError(f"{rev!r} is not a commit (is the repository still empty?)")
    out = git("log", "--first-parent", "--reverse", "-z", "--format=%H%x1f%P%x1f%s%x1f%b", rev)
    result = []
    for record in out.split("\0"):
        if not record.strip():
            continue
        sha, parents, subject, body = record.lstrip("\n").split("\x1f", 3)
        parent = parents.split()[0] if parents else ""
        result.append(Commit(sha, parent, subject, body))
    return result


def stages(rev="HEAD"):
    """Return the stages found along the first-parent history of rev, in order.

    All commits with the same version belong to one stage; `history` reports
    it when they are not consecutive.
    """
    by_version = {}
    for commit in commits(rev):
        if commit.version:
            by_version.setdefault(commit.version, Stage(commit.version, [])).commits.append(commit)
    return list(by_version.values())


def find_stage(version, rev="HEAD"):
    """Return the stage with the given version, or raise StageError."""
    found = {stage.version: stage for stage in stages(rev)}
    if version not in found:
        known = ", ".join(found) or "none"
        raise StageError(f"unknown stage {version!r} (stages found: {known})")
    return found[version]


def select_stages(versions, rev="HEAD"):
    """Return the stages with the given versions (all when none are given)."""
    if not versions:
        return stages(rev)
    return [find_stage(version, rev) for version in versions]


# --- tags --------------------------------------------------------------------

def tag_target(version):
    """Return the commit the tag vX.Y points to, or None if there is no such tag."""
    out = git("rev-parse", "-q", "--verify", f"refs/tags/{version}^{{commit}}", check=False)
    return out.strip() or None


def tag_state(stage):
    """Return "ok", "missing" or "points elsewhere" for the stage's tag."""
    target = tag_target(stage.version)
    if target is None:
        return "missing"
    return "ok" if target == stage.sha else "points elsewhere"


def create_tag(stage):
    """Create the annotated tag of a stage, its message being the subject."""
    git("tag", "-a", stage.version, "-m", stage.subject, stage.sha)


# --- diffs -------------------------------------------------------------------

@dataclasses.dataclass
class FileChange:
    """One app file changed by a stage, as `git diff --numstat` reports it."""

    path: str
    old_path: str  # differs from path for a renamed file
    added: int
    removed: int
    binary: bool

    @property
    def label(self):
        """The file name as shown to readers, with the old name for a rename."""
        if self.old_path != self.path:
            return f"{self.old_path} → {self.path}"
        return self.path


def numstat(stage):
    """Return the FileChanges of a stage, app paths only."""
    out = git("diff", "--numstat", "-z", "-M", stage.base, stage.sha, "--", *app_pathspecs())
    fields = out.split("\0")
    changes = []
    i = 0
    while i < len(fields) and fields[i]:
        added, removed, path = fields[i].split("\t", 2)
        old_path = path
        if not path:  # a rename: the old and new names follow
            old_path, path = fields[i + 1], fields[i + 2]
            i += 2
        binary = added == "-"
        changes.append(FileChange(path, old_path, 0 if binary else int(added),
                                  0 if binary else int(removed), binary))
        i += 1
    return changes


def app_diff(stage, paths=None, extra_args=()):
    """Return the stage's diff as text, limited to app paths (or to the given paths)."""
    pathspecs = [f":(top,literal){p}" for p in paths] if paths else app_pathspecs()
    return git("diff", "-M", *extra_args, stage.base, stage.sha, "--", *pathspecs)


def changed_app_paths(commit):
    """Return the app paths a commit changes compared to its first parent."""
    base = commit.parent or empty_tree()
    out = git("diff", "--name-only", "-z", "--no-renames", base, commit.sha, "--", *app_pathspecs())
    return [path for path in out.split("\0") if path]


# --- history rules ------------------------------------------------------------

def history_problems(rev="HEAD"):
    """Return the ways the first-parent history of rev breaks the rules (a list of text)."""
    problems = []
    current = None  # the version of the stage we are in, if still open
    closed = []  # versions of stages that are over
    for commit in commits(rev):
        short = commit.sha[:10]
        version = commit.version
        if version is None:
            paths = changed_app_paths(commit)
            if paths:
                more = f" and {len(paths) - 5} more" if len(paths) > 5 else ""
                shown = ", ".join(paths[:5]) + more
                problems.append(f"{short} \"{commit.subject}\" is not a stage commit "
                                f"but changes app paths: {shown}")
            if current:  # a stage's commits must be consecutive
                closed.append(current)
                current = None
            continue
        if version == current:
            continue
        if version in closed:
            problems.append(f"{short} \"{commit.subject}\": stage {version} already ended "
                            "(its commits must be consecutive, none after the next stage begins)")
            continue
        highest = max(closed + ([current] if current else []), key=version_key, default=None)
        if highest and version_key(version) <= version_key(highest):
            problems.append(f"{short} \"{commit.subject}\": {version} comes after {highest} "
                            "(versions must increase)")
        if current:
            closed.append(current)
        current = version
    return problems


# --- running a stage's tests ---------------------------------------------------

def cache_dir():
    """Return the folder for shared venvs and logs: $FLACK_STAGE_CACHE or ~/.cache/flack-stages."""
    return Path(os.environ.get("FLACK_STAGE_CACHE") or Path.home() / ".cache" / "flack-stages")


def python_version():
    """Return the full version of the Python that the Makefile builds venvs with."""
    python = os.environ.get("PYTHON", "python3")
    return subprocess.run([python, "-c", "import sys; print(sys.version)"],
                          capture_output=True, text=True, check=True).stdout.strip()


def requirements_hash(stage):
    """Hash every top-level requirements*.txt at the stage's commit, plus the Python version."""
    digest = hashlib.sha256(python_version().encode())
    names = git("ls-tree", "--name-only", "-z", stage.sha).split("\0")
    for name in sorted(n for n in names if re.fullmatch(r"requirements.*\.txt", n)):
        digest.update(b"\0" + name.encode() + b"\0")
        digest.update(git_bytes("show", f"{stage.sha}:{name}"))
    return digest.hexdigest()[:16]


def make_env():
    """Return our environment without the variables an outer make passes down."""
    env = dict(os.environ)
    for name in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"):
        env.pop(name, None)
    return env


def run_logged(command, cwd, log_path, timeout):
    """Run command in cwd with its output in log_path; return "pass", "fail" or "timeout"."""
    with open(log_path, "w", encoding="utf-8") as log:
        log.write(f"$ {' '.join(command)}\n")
        log.flush()
        process = subprocess.Popen(command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env=make_env(), start_new_session=True)
        try:
            return "pass" if process.wait(timeout=timeout) == 0 else "fail"
        except subprocess.TimeoutExpired:
            stop(process)
            log.write(f"\n*** stopped after the time limit of {timeout:.0f} seconds\n")
            return "timeout"
        except BaseException:  # Ctrl-C or SIGTERM: do not leave the tests running
            stop(process)
            raise


def stop(process):
    """Kill a process started in its own session, with everything it started."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def venv_for(stage):
    """Return the shared venv for the stage: one per set of requirements and Python version."""
    return cache_dir() / "venvs" / requirements_hash(stage)


@contextlib.contextmanager
def stage_tree(stage):
    """Check the stage's commit out into a temporary worktree; yield its folder, then remove it."""
    work = Path(tempfile.mkdtemp(prefix=f"flack-{stage.version}-"))
    tree = work / "tree"
    try:
        git("worktree", "add", "--detach", str(tree), stage.sha)
        yield tree
    finally:
        git("worktree", "remove", "--force", str(tree), check=False)
        git("worktree", "prune", check=False)
        shutil.rmtree(work, ignore_errors=True)


def test_target(stage):
    """Return the make target that runs all of a stage's tests: test-all where there is one.

    From v0.19, `make test` leaves out the tests that start real servers, to stay quick
    for a learner, and `make test-all` runs every test.
    """
    makefile = git("show", f"{stage.sha}:Makefile", check=False)
    return "test-all" if re.search(r"^test-all:", makefile, re.MULTILINE) else "test"


def check_stage(stage, timeout, try_it=True):
    """Run all of a stage's tests (`make test`, or `make test-all`) in a temporary worktree.

    Return (result, log path, facts); facts are the stage's test counts when it passed.
    A run that fails only in a few tests runs those again alone (rerun_failed): when
    they pass, the result is "flaky"; when they are a bug of the stage that a later
    stage fixed (KNOWN_FAILURES), "known"; else "fail". When the tests pass, the blocks
    of the page's Try it run in the same worktree (try_it_stage); if they fail, so does
    the stage, and the log path is theirs.
    """
    venv = venv_for(stage)
    logs = cache_dir() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{stage.version}-{stage.sha[:10]}.log"
    with stage_tree(stage) as tree:
        result = run_logged(["make", test_target(stage), f"VENV={venv}"], tree, log_path,
                            timeout)
        if result == "fail":
            result = rerun_failed(stage, tree, venv, log_path, timeout)
        counts = None
        if result in ("pass", "flaky", "known"):
            try:
                counts = collect_facts(stage, tree, venv)
            except StageError as error:  # the tests passed: report, but do not stop the run
                print(f"    no test count recorded: {error}", flush=True)
            if try_it and not try_it_stage(stage, tree, venv):
                result, log_path = "fail", try_it_log(stage)
    return result, log_path, counts


# A failed run whose failures are at most this many tests runs them again, alone, up
# to RERUNS times. Landed stages cannot change, and a few of their tests fail now and
# then under the load of the whole suite (README.md names them); alone, without that
# load, a test that passes tells a race in the test from a broken stage.
MOST_TESTS_RERUN = 3
RERUNS = 2
FAILED_RE = re.compile(r"^(?:FAILED|ERROR) (tests/\S+?::\S+)(?: - .*)?$", re.MULTILINE)

# Tests of landed stages that fail for a bug of that stage, found and fixed later: the
# stage cannot change, so its check reports them as "known" instead of failing. Each
# names the stage that fixed it; they still run, and a stage where any other test fails,
# fails. Keep this list in step with README.md.
KNOWN_FAILURES = {
    "v0.19": {
        "tests/test_faults.py::test_nothing_is_lost_stuck_or_logged_out_when_a_process_dies"
        "[redis]": "a push lost while Redis restarted and followed by newer ones is never "
                   "fetched; v0.20 fixed it (its page: A lost push the fault test found again)",
    },
}


def failed_tests(log_path):
    """Return the node ids of the tests that pytest's summary in a log lists as failed."""
    text = Path(log_path).read_text(encoding="utf-8", errors="replace")
    return sorted(set(FAILED_RE.findall(text)))


def rerun_failed(stage, tree, venv, log_path, timeout):
    """Run the failed tests of a stage's run again, alone; return "flaky", "known" or "fail"."""
    failed = failed_tests(log_path)
    if not failed or len(failed) > MOST_TESTS_RERUN:
        return "fail"
    # -m "": the tests of any mark, as test-all runs them.
    command = [str(venv / "bin" / "python"), "-m", "pytest", "-m", "", "-p", "no:cacheprovider",
               *failed]
    for attempt in range(1, RERUNS + 1):
        rerun_log = log_path.with_suffix(f".rerun-{attempt}.log")
        print(f"    {', '.join(failed)} failed; running {'it' if len(failed) == 1 else 'them'} "
              f"again alone ({attempt} of {RERUNS}), log: {rerun_log}", flush=True)
        if run_logged(command, tree, rerun_log, timeout) == "pass":
            print("    flaky: it passed alone", flush=True)
            return "flaky"
        failed = failed_tests(rerun_log) or failed
    known = KNOWN_FAILURES.get(stage.version, {})
    if set(failed) <= set(known):
        for test in failed:
            print(f"    known: {test} fails for a bug of this stage: {known[test]}", flush=True)
        return "known"
    return "fail"


def log_tail(path, lines=LOG_TAIL_LINES):
    """Return the last lines of a log file."""
    text = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join(text[-lines:])


# --- the pages' Try it blocks -------------------------------------------------

def try_it_blocks(stage, docs=None):
    """Return the marked blocks of the Try it section of the stage's page (tryit.py).

    The page is read from this checkout's docs/, which describes every stage; the
    commands it includes from _generated/ are made here, as `docs` makes them.
    """
    docs = Path(docs) if docs else top_dir() / "docs"
    page = docs / "stages" / f"{stage.version}.md"
    if not page.exists():
        return []

    def include(path):
        """Return the text of a file the page includes, if it can hold Try it blocks."""
        if path == f"_generated/stages/{stage.version}-commands.md":
            return commands_page(stage)
        if path.startswith("_snippets/"):
            return (docs / path).read_text(encoding="utf-8")
        return None  # generated tables and pictures: nothing to run

    lines = tryit.try_it_section(page.read_text(encoding="utf-8"))
    return tryit.marked_blocks(lines, f"docs/stages/{page.name}", include)


def try_it_log(stage):
    """Return the log file of a stage's Try it run."""
    return cache_dir() / "logs" / f"{stage.version}-{stage.sha[:10]}.try-it.log"


def learner_env():
    """Return the environment of a learner's terminal: none of CI's test settings."""
    env = make_env()
    for name in ("FLACK_TEST_POSTGRES_URL", "FLACK_TEST_REDIS_URL", "FLACK_TEST_COMPOSE",
                 "VIRTUAL_ENV", "DATABASE_URL", "REDIS_URL", "FLACK_CONFIG"):
        env.pop(name, None)
    return env


def try_it_stage(stage, tree, venv):
    """Run the Try it blocks of the stage's page in its worktree; print and return success.

    The worktree's .venv is the stage's shared venv, so that the pages' `.venv/bin/...`
    commands and `make run` find it built.
    """
    blocks = try_it_blocks(stage)
    if not blocks:
        print("    try it: the page marks no block to run", flush=True)
        return True
    dot_venv = Path(tree) / ".venv"
    if not dot_venv.exists():
        dot_venv.symlink_to(venv)
    log_path = try_it_log(stage)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with open(log_path, "w", encoding="utf-8") as log:
        try:
            ran, left = tryit.run_blocks(blocks, tree, learner_env(), log)
        except tryit.TryItError as error:
            log.write(f"\n*** {error}\n")
            print(f"    try it: failed, log: {log_path}\n{indent(str(error))}", flush=True)
            return False
    blocks_run = sum(1 for block in blocks if block.kind == "commands")
    checked = sum(1 for block in blocks if block.kind == "output")
    print(f"    try it: {blocks_run} blocks, {ran} lines run, {checked} outputs checked, "
          f"{left} lines left to the tests above, in {time.monotonic() - started:.0f}s",
          flush=True)
    return True


# --- stage facts: the test counts the pages state ------------------------------

FACTS_FILE = "docs/data/stage-facts.json"
FACTS_PLUGIN_DIR = Path(__file__).resolve().parent / "pytest_facts"


def facts_path():
    """Return the committed JSON file that holds each stage's test counts."""
    return top_dir() / FACTS_FILE


def load_facts():
    """Return the recorded facts, by version ({} when there is no file yet)."""
    path = facts_path()
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))["stages"]


def save_facts(facts):
    """Write the facts, by version in stage order, to the committed JSON file."""
    ordered = dict(sorted(facts.items(), key=lambda item: version_key(item[0])))
    data = {"about": "Written by tutorial/stage.py (check, facts); see tutorial/README.md.",
            "stages": ordered}
    write(facts_path(), json.dumps(data, indent=2) + "\n")


def stage_facts(stage, facts):
    """Return the recorded facts of a stage, or None when missing or recorded for another commit."""
    found = facts.get(stage.version)
    return found if found and found.get("sha") == stage.sha else None


def collect_facts(stage, tree, venv):
    """Count the stage's tests with `pytest --collect-only` in its tree: no test runs.

    Counted on SQLite alone, without Redis (FLACK_TEST_POSTGRES_URL and
    FLACK_TEST_REDIS_URL unset), as `make test` runs on a machine without either;
    "skipped" counts the tests whose skip marks apply here.
    """
    env = make_env()
    env.pop("FLACK_TEST_POSTGRES_URL", None)
    env.pop("FLACK_TEST_REDIS_URL", None)
    with tempfile.TemporaryDirectory() as temp:
        out = Path(temp) / "facts.json"
        env.update(FLACK_FACTS_OUT=str(out), PYTHONPATH=str(FACTS_PLUGIN_DIR))
        # -m "": every test, also those a stage's own settings leave to `make test-all`.
        command = [str(venv / "bin" / "python"), "-m", "pytest", "--collect-only", "-q",
                   "-m", "", "-p", "flack_stage_facts", "-p", "no:cacheprovider"]
        result = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True,
                                stdin=subprocess.DEVNULL)
        if result.returncode != 0 or not out.exists():
            tail = "\n".join(result.stdout.splitlines()[-LOG_TAIL_LINES:])
            raise StageError(f"{stage.version}: pytest --collect-only failed:\n{tail}")
        counts = json.loads(out.read_text(encoding="utf-8"))
    return {"sha": stage.sha, "tests": counts["tests"], "skipped": counts["skipped"]}


def ensure_venv(stage, tree):
    """Build the stage's shared venv from its own requirements, unless it exists."""
    venv = venv_for(stage)
    result = subprocess.run(["make", f"VENV={venv}", f"{venv}/.installed"], cwd=tree,
                            env=make_env(), capture_output=True, text=True,
                            stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise StageError(f"{stage.version}: building {venv} failed:\n{result.stderr.strip()}")
    return venv


# --- generated docs ------------------------------------------------------------

# Characters that Python-Markdown would read as markup (emphasis, links, attributes,
# tables); generated text escapes them so that a name like __init__ stays a name.
MARKDOWN_SPECIAL = re.compile(r"([\\*_{}\[\]()!#|+-])")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")


def escape_markdown(text):
    """Make plain text render as itself in Markdown: no emphasis, links or HTML."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return MARKDOWN_SPECIAL.sub(r"\\\1", text).replace("`", "\\`")


def markdown_text(text):
    """Escape text for Markdown but keep its `code spans`, as commit messages write them."""
    out = []
    at = 0
    for match in CODE_SPAN.finditer(text):
        out.append(escape_markdown(text[at:match.start()]))
        out.append(match.group())
        at = match.end()
    out.append(escape_markdown(text[at:]))
    return "".join(out)


def table_cell(text):
    """Make text safe for a markdown table cell: escaped, and no | outside code spans."""
    return markdown_text(text.strip())


# The Lesson column is the first item of the "What you will learn" list that opens every
# stage's page. That list is the one source that every stage has, from v0.1 to the newest:
# the first paragraph of the commit message is missing where the message has no body
# (v0.17 and v0.18), and landed commits are never rewritten; the top README's table of
# stages gets a stage's row only when someone adds it; the page's first line is the title,
# which the map shows already. Pages are under docs/, which may change in any commit, so a
# lesson can be reworded there.
LEARN_HEADING = "## What you will learn"
LIST_ITEM_RE = re.compile(r"^[-*+] ")


def lesson(page):
    """Return the first item of the "What you will learn" list of a stage's page, as one line."""
    lines = page.read_text(encoding="utf-8").splitlines()
    where = f"docs/stages/{page.name}"
    if LEARN_HEADING not in lines:
        raise StageError(f"{where}: no {LEARN_HEADING!r} section, whose first item is the "
                         "stage's lesson in the stage map")
    item = []
    for line in lines[lines.index(LEARN_HEADING) + 1:]:
        text = line.strip()
        if not item and not text:
            continue  # blank lines between the heading and the list
        if not item and LIST_ITEM_RE.match(text):
            item.append(text[2:].strip())
        elif item and text and not LIST_ITEM_RE.match(text) and not text.startswith("#"):
            item.append(text)  # the item goes on, on the next line
        else:
            break  # a blank line, the next item, or anything else ends it
    if not item:
        raise StageError(f"{where}: {LEARN_HEADING!r} is not followed by a list, whose first "
                         "item is the stage's lesson in the stage map")
    return " ".join(item)


def fence_for(text):
    """Return a backtick fence longer than any run of backticks in text (at least 3)."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def indent(text, prefix="    "):
    """Indent every line of text, for a block inside an admonition."""
    return "\n".join(prefix + line if line else prefix.rstrip() for line in text.splitlines())


def stage_map(all_stages, docs=None):
    """Return the markdown table of all stages, linking to stages/vX.Y.md.

    The links are relative to the docs/ folder: include the table only from
    pages at the top of docs/ (stage-map.md, index.md). Each stage's lesson comes
    from its page in docs (default: the docs/ folder of this checkout).
    """
    docs = Path(docs) if docs else top_dir() / "docs"
    rows = ["| Stage | Title | Lesson | Files | Added | Removed | Tests |",
            "|---|---|---|--:|--:|--:|--:|"]
    facts = load_facts()
    for stage in all_stages:
        changes = numstat(stage)
        added = sum(change.added for change in changes)
        removed = sum(change.removed for change in changes)
        counts = stage_facts(stage, facts)
        tests = counts["tests"] if counts else "?"
        rows.append(f"| [{stage.version}](stages/{stage.version}.md) | {table_cell(stage.title)} "
                    f"| {table_cell(lesson(docs / 'stages' / f'{stage.version}.md'))} "
                    f"| {len(changes)} | +{added} | −{removed} | {tests} |")
    note = (f"\n**Tests** is how many tests pytest collects at the stage, as recorded in "
            f"`{FACTS_FILE}`.\n")
    return "\n".join(rows) + "\n" + note


def coloured_diff(stage):
    """Return the stage's app diff with git's move detection, one colour per kind of line."""
    colours = [arg for slot, colour in diffview.GIT_COLOURS.items()
               for arg in ("-c", f"color.diff.{slot}={colour}")]
    return git(*colours, "diff", "-M", *diffview.DIFF_OPTIONS, stage.base, stage.sha,
               "--", *app_pathspecs())


def app_files(rev):
    """Return the app paths in a commit's tree (none for the empty tree)."""
    # ls-tree takes no exclude pathspecs; a diff from the empty tree lists the same files.
    out = git("diff", "--name-only", "--no-renames", "-z", empty_tree(), rev,
              "--", *app_pathspecs())
    return [path for path in out.split("\0") if path]


def previous_stage(stage, all_stages):
    """Return the stage before this one, or None for the first."""
    index = [s.version for s in all_stages].index(stage.version)
    return all_stages[index - 1] if index else None


def see_it_locally(stage, before):
    """Return markdown with the commands that show the stage's change in a clone."""
    if before is None:
        lines = [(f"git show --stat {stage.version}", "the files of the first stage"),
                 (f"python3 tutorial/stage.py diff {stage.version}", "all of their code")]
    else:
        moved = "--color-moved=zebra --color-moved-ws=allow-indentation-change"
        lines = [(f"python3 tutorial/stage.py diff {stage.version}",
                  "the application's change, moved code coloured"),
                 (f"git diff {moved} {before.version} {stage.version}",
                  "the same, with the tutorial's own files"),
                 (f"git diff --stat {before.version} {stage.version}", "only the list of files")]
    block = "\n".join(f"# {comment}\n{command}" for command, comment in lines)
    return ("To see this change in your clone (run `make tags` first in a fresh clone, "
            "which has no tags):\n\n```bash\n" + block + "\n```\n")


def diff_page(stage, all_stages):
    """Return the generated part of a stage's page, and the changed files its prose may link to.

    The part is the commands, trees, pictures and the change, whose files come in the
    order in which the page's prose first names them; the files are diffview.link_targets.
    """
    changes = numstat(stage)
    before = previous_stage(stage, all_stages)
    old_files, new_files = app_files(stage.base), app_files(stage.sha)
    parts = [see_it_locally(stage, before)]
    try:
        parts.extend(pictures.for_stage(stage, all_stages, git))
    except pictures.PictureError as error:
        raise StageError(f"{stage.version}: {error}") from None
    parts.append(filetree.trees_html(
        old_files, new_files, changes,
        f"Before ({before.version})" if before else "Before", f"After ({stage.version})"))
    if not changes:
        parts.append("This stage changes no application file.")
        return "\n\n".join(parts) + "\n", []

    def show(side, path):
        """Return a version of a file: before the stage or at it."""
        return git("show", f"{stage.base if side == 'old' else stage.sha}:{path}")

    diffs = diffview.parse(coloured_diff(stage), changes, show)
    names = diffview.file_names(diffs, old_files + new_files)
    page = top_dir() / "docs" / "stages" / f"{stage.version}.md"
    named = diffview.named_paths(diffview.prose_spans(page.read_text(encoding="utf-8")), names)
    parts.append(diffview.stage_html(diffs, named))
    return "\n\n".join(parts) + "\n", diffview.link_targets(diffs, names)


def commands_page(stage):
    """Return markdown with the commands to check out, test and run a stage."""
    commands = [
        (f"git checkout {stage.version}", "the code as it is at this stage"),
        ("make test", "create .venv, install requirements.txt, run the tests"),
        *([("make test-all", "every test, with those that start and kill real servers")]
          if test_target(stage) == "test-all" else []),
        ("make run", "start the chat on http://127.0.0.1:5000"),
        ("git checkout main", "back to the latest version"),
    ]
    width = max(len(command) for command, _ in commands) + 2
    lines = [f"{command:<{width}}# {comment}" for command, comment in commands]
    return "```{.bash .try-it}\n" + "\n".join(lines) + "\n```\n\n" + tests_sentence(stage)


def tests_sentence(stage):
    """Return the generated sentence that states the stage's test count ("" if unknown)."""
    counts = stage_facts(stage, load_facts())
    if counts is None:
        return ""
    sentence = f"At this stage, pytest collects {counts['tests']} tests"
    if counts["skipped"]:
        passed = counts["tests"] - counts["skipped"]
        servers = "`FLACK_TEST_POSTGRES_URL` points to a PostgreSQL server"
        if version_key(stage.version) >= version_key("v0.15"):  # the first that needs Redis
            servers = ("`FLACK_TEST_POSTGRES_URL` and `FLACK_TEST_REDIS_URL` point to "
                       "PostgreSQL and Redis servers")
        if version_key(stage.version) >= version_key("v0.23"):  # the first with containers
            servers += (", or, for the containers' tests, `FLACK_TEST_COMPOSE` names a "
                        "compose command")
        sentence += (f": {passed} run on SQLite alone, and {counts['skipped']} skip "
                     f"unless {servers}")
    return f'<span class="flack-test-count">{sentence}.</span>\n'



def write(path, text):
    """Write text to path, creating folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


# --- subcommands ---------------------------------------------------------------

def cmd_list(args):
    """Print each stage: version, short sha, tag state, subject."""
    found = stages(args.rev)
    if not found:
        print("no stages found")
    for stage in found:
        more = f"  [{len(stage.commits)} commits]" if len(stage.commits) > 1 else ""
        print(f"{stage.version:<7} {stage.sha[:10]}  {tag_state(stage):<17} {stage.subject}{more}")
    return 0


def cmd_tag(args):
    """Create the missing annotated tags; refuse to move a tag that points elsewhere."""
    status = 0
    for stage in stages(args.rev):
        state = tag_state(stage)
        if state == "missing":
            create_tag(stage)
            print(f"{stage.version}: created on {stage.sha[:10]}")
        elif state == "ok":
            print(f"{stage.version}: ok")
        else:
            target = tag_target(stage.version)
            print(f"{stage.version}: the tag points to {target[:10]}, but the stage is "
                  f"{stage.sha[:10]} (\"{stage.subject}\"); the tag is left unchanged. "
                  "Look at both and move the tag by hand if it is wrong.", file=sys.stderr)
            status = 1
    return status


def cmd_check(args):
    """Run each stage's tests at its own commit and print a table of results."""
    selected = select_stages(args.versions, args.rev)
    if not selected:
        raise StageError("no stages found")
    if args.fresh:
        for venv in {venv_for(stage) for stage in selected}:
            shutil.rmtree(venv, ignore_errors=True)
    timeout = args.timeout * 60
    results = []
    facts = load_facts()
    for stage in selected:
        print(f"==> {stage.version} {stage.sha[:10]} {stage.subject}", flush=True)
        started = time.monotonic()
        result, log_path, counts = check_stage(stage, timeout, args.try_it)
        seconds = time.monotonic() - started
        print(f"    {result} in {seconds:.0f}s, log: {log_path}", flush=True)
        if result != "pass":
            print(indent(log_tail(log_path)), flush=True)
        if result == "fail" and not failed_tests(log_path):
            # No test failed by name (a collection error, a crash): one more whole run
            # tells a flaky start from a broken stage.
            first_log = log_path.rename(log_path.with_suffix(".first-run.log"))
            print("    running it once more, to tell a flaky test from a broken stage",
                  flush=True)
            result, log_path, counts = check_stage(stage, timeout, args.try_it)
            seconds = time.monotonic() - started
            print(f"    {result} in {seconds:.0f}s, log: {log_path}", flush=True)
            if result == "pass":
                result = "flaky"
                print(f"    flaky: it failed once and then passed (first run: {first_log})",
                      flush=True)
            elif result != "flaky":
                print(indent(log_tail(log_path)), flush=True)
        if result in ("pass", "flaky", "known") and counts:
            facts[stage.version] = counts
            save_facts(facts)
        results.append((stage, result, seconds))
    print()
    print(f"{'stage':<7} {'result':<8} {'time':>7}  subject")
    for stage, result, seconds in results:
        print(f"{stage.version:<7} {result:<8} {seconds:>6.0f}s  {stage.subject}")
    failed = [stage.version for stage, result, _ in results
              if result not in ("pass", "flaky", "known")]
    flaky = [stage.version for stage, result, _ in results if result == "flaky"]
    if flaky:
        print(f"\nflaky, failed and then passed when run again: {', '.join(flaky)}")
    known = [stage.version for stage, result, _ in results if result == "known"]
    if known:
        print(f"\nknown, failed only in tests that a later stage fixed (README.md): "
              f"{', '.join(known)}")
    if failed:
        print(f"\n{len(results) - len(failed)} of {len(results)} stages passed; "
              f"failed: {', '.join(failed)}")
        return 1
    print(f"\nall {len(results)} {'stage' if len(results) == 1 else 'stages'} passed")
    return 0


def cmd_try_it(args):
    """Run the Try it blocks of each stage's page at its commit, without its tests."""
    selected = select_stages(args.versions, args.rev)
    if not selected:
        raise StageError("no stages found")
    failed = []
    for stage in selected:
        print(f"==> {stage.version} {stage.sha[:10]} {stage.subject}", flush=True)
        with stage_tree(stage) as tree:
            venv = ensure_venv(stage, tree)
            if not try_it_stage(stage, tree, venv):
                failed.append(stage.version)
    if failed:
        print(f"\nTry it failed at {', '.join(failed)}")
        return 1
    print(f"\nTry it ran at {len(selected)} {'stage' if len(selected) == 1 else 'stages'}")
    return 0


def cmd_facts(args):
    """Record each stage's test counts in the facts file, collecting but not running its tests."""
    selected = select_stages(args.versions, args.rev)
    if not selected:
        raise StageError("no stages found")
    facts = load_facts()
    for stage in selected:
        if not args.force and stage_facts(stage, facts):
            print(f"{stage.version}: up to date")
            continue
        with stage_tree(stage) as tree:
            facts[stage.version] = collect_facts(stage, tree, ensure_venv(stage, tree))
        save_facts(facts)
        counts = facts[stage.version]
        print(f"{stage.version}: {counts['tests']} tests, "
              f"{counts['skipped']} skipped without PostgreSQL")
    print(f"facts in {FACTS_FILE}")
    return 0


def cmd_diff(args):
    """Print what the stage changed in the app paths."""
    stage = find_stage(args.version, args.rev)
    extra = ["--stat"] if args.stat else ["--color-moved=zebra",
                                           "--color-moved-ws=allow-indentation-change"]
    if not args.stat and sys.stdout.isatty():
        extra.append("--color=always")
    sys.stdout.write(app_diff(stage, extra_args=extra))
    return 0


def cmd_history(args):
    """Check the history rules; print "rules hold" or each problem."""
    problems = history_problems(args.rev)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s): see the history rules in tutorial/README.md")
        return 1
    print("rules hold")
    return 0


def cmd_docs(args):
    """Generate the stage map, the per-stage diffs, the files each diff shows, and the commands."""
    docs = top_dir() / "docs"
    out = Path(args.out) if args.out else docs / "_generated"
    found = stages(args.rev)
    pages = [docs / "stages" / f"{stage.version}.md" for stage in found]
    missing = [str(page.relative_to(docs.parent)) for page in pages if not page.exists()]
    if missing:
        raise StageError("every stage needs a page; missing: " + ", ".join(missing))
    write(out / "stage-map.md", stage_map(found, docs))
    facts = load_facts()
    unknown = [stage.version for stage in found if stage_facts(stage, facts) is None]
    if unknown:
        print(f"stage.py: no test counts for {', '.join(unknown)} in {FACTS_FILE}: "
              "run `python3 tutorial/stage.py facts` (or make stages)", file=sys.stderr)
    for stage in found:
        diff, files = diff_page(stage, found)
        write(out / "stages" / f"{stage.version}-diff.md", diff)
        # What tutorial/mkdocs_hooks.py links the page's code spans to.
        write(out / "stages" / f"{stage.version}-files.json", json.dumps(files, indent=1) + "\n")
        write(out / "stages" / f"{stage.version}-commands.md", commands_page(stage))
    print(f"wrote the stage map and the diffs and commands of {len(found)} stage(s) to {out}")
    return 0


def version_arg(text):
    """Accept only vX.Y as a stage version on the command line."""
    if not VERSION_RE.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a stage version like v0.1")
    return text


def parser():
    """Build the command-line parser with one subcommand per job."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--rev", default="HEAD",
                        help="find stages along this revision (default HEAD)")
    main = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = main.add_subparsers(dest="command", required=True)

    def command(name, run, help):
        """Add a subcommand that runs the function run."""
        cmd = sub.add_parser(name, help=help, description=help, parents=[common])
        cmd.set_defaults(run=run)
        return cmd

    command("list", cmd_list, "list the stages and the state of their tags")
    command("tag", cmd_tag, "create the missing vX.Y tags")

    check = command("check", cmd_check, "run each stage's tests at its own commit")
    check.add_argument("versions", nargs="*", type=version_arg,
                       help="stages to check (default: all)")
    check.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_MINUTES,
                       help=f"minutes per stage (default {DEFAULT_TIMEOUT_MINUTES})")
    check.add_argument("--fresh", action="store_true", help="rebuild the cached venvs first")
    check.add_argument("--no-try-it", dest="try_it", action="store_false",
                       help="only the tests, not the blocks of the page's Try it")

    try_it = command("try-it", cmd_try_it, "run the Try it blocks of each stage's page at its "
                     "commit, without its tests")
    try_it.add_argument("versions", nargs="*", type=version_arg,
                        help="stages to try (default: all)")

    facts = command("facts", cmd_facts, f"record each stage's test counts in {FACTS_FILE}")
    facts.add_argument("versions", nargs="*", type=version_arg,
                       help="stages to count (default: all)")
    facts.add_argument("--force", action="store_true",
                       help="count again even when the recorded facts are for the same commit")

    diff = command("diff", cmd_diff, "show what a stage changed in the app")
    diff.add_argument("version", type=version_arg)
    diff.add_argument("--stat", action="store_true", help="only a summary of the files")

    command("history", cmd_history, "check the history rules")

    docs = command("docs", cmd_docs, "generate the content the docs include")
    docs.add_argument("--out", help="output folder (default docs/_generated)")
    return main


def exit_on_sigterm(signum, frame):
    """Turn SIGTERM into SystemExit, so that running tests are stopped and worktrees removed."""
    sys.exit(128 + signum)


def main(argv=None):
    """Run the subcommand named on the command line."""
    args = parser().parse_args(argv)
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    try:
        return args.run(args)
    except StageError as error:
        print(f"stage.py: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("stage.py: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
