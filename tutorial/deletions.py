#!/usr/bin/env python3
"""Delete statements one at a time and check that a test fails each time.

mutmut, the mutation tool of `make mutate`, leaves decorated functions alone: in
Flack that is every view, the authentication callbacks and the commands. This
script covers them the simplest way: it replaces one statement of such a function
with `pass`, runs the tests, and reports each deletion that no test noticed.

    python3 tutorial/deletions.py --python .venv/bin/python             # every module
    python3 tutorial/deletions.py --python .venv/bin/python flack/auth.py

It works on a copy of the project, never on the files in place. The tests that
start servers in other processes run too: a deleted statement is in the copy
they start from.
"""
import argparse
import ast
import concurrent.futures
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
# The copy needs what the tests read; the tutorial's own files are left out.
IGNORED = shutil.ignore_patterns(".git", ".venv*", "mutants", "site", "docs", "bench",
                                 "__pycache__", "*.sqlite", ".pytest_cache")
PYTEST = ["-m", "pytest", "-x", "-q", "-n", "0", "-p", "no:cacheprovider", "--no-cov",
          "--deselect=tests/test_commands.py::test_code_passes_lint"]


def decorated_statements(source):
    """Return (first line, last line, indent) of each statement in a decorated function."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.decorator_list:
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(
                    getattr(body[0], "value", None), ast.Constant):
                body = body[1:]  # the docstring is no behaviour
            for statement in body:
                # The statement, and each statement nested in it (an if's body, say).
                for inner in ast.walk(statement):
                    if isinstance(inner, ast.stmt):
                        found.append((inner.lineno, inner.end_lineno, inner.col_offset))
    return found


def without(source, first, last, indent):
    """Return source with lines first to last (1-based) replaced by `pass`."""
    lines = source.splitlines(keepends=True)
    return "".join(lines[:first - 1] + [" " * indent + "pass\n"] + lines[last:])


def likely_tests(path):
    """Return the test paths to run for a module: its own test module first, if any."""
    own = Path("tests") / f"test_{Path(path).stem}.py"
    return [str(own), "tests"] if (TOP / own).exists() else ["tests"]


def survives(copy, python, path, source, statement):
    """Delete one statement in the copy, run the tests; tell whether they all passed."""
    target = copy / path
    target.write_text(without(source, *statement))
    try:
        result = subprocess.run([python, *PYTEST, *likely_tests(path)], cwd=copy,
                                capture_output=True, timeout=900,
                                env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
        return result.returncode == 0
    finally:
        target.write_text(source)


def check_modules(copy, python, paths):
    """Return the statements of some modules whose deletion no test noticed."""
    survivors = []
    for path in paths:
        source = (TOP / path).read_text()
        for statement in decorated_statements(source):
            if survives(copy, python, path, source, statement):
                survivors.append((path, statement))
                print(f"{path}:{statement[0]}: survived", flush=True)
    return survivors


def main():
    """Check every decorated function of the modules named (all of flack/ by default)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--python", required=True, help="the venv's python, with pytest")
    parser.add_argument("modules", nargs="*", help="paths such as flack/auth.py")
    args = parser.parse_args()
    # The tests run in copies of the project: paths given relative to this folder must
    # not be read relative to a copy. abspath, not resolve(): the venv's python is a link.
    python = os.path.abspath(args.python)
    modules = ([str(Path(m).resolve().relative_to(TOP)) for m in args.modules] or
               sorted(str(p.relative_to(TOP)) for p in (TOP / "flack").rglob("*.py")))
    with tempfile.TemporaryDirectory() as work:
        # One copy per worker, so that two deletions never meet in one tree.
        copies = [shutil.copytree(TOP, Path(work) / f"copy{n}", ignore=IGNORED) for n in (0, 1)]
        total = sum(len(decorated_statements((TOP / m).read_text())) for m in modules)
        print(f"deleting {total} statements of decorated functions, one at a time", flush=True)
        with concurrent.futures.ThreadPoolExecutor(len(copies)) as pool:
            futures = [pool.submit(check_modules, copy, python, modules[n::len(copies)])
                       for n, copy in enumerate(copies)]
            survivors = [found for future in futures for found in future.result()]
    for path, (first, last, _) in survivors:
        print(f"{path}:{first}: deleting lines {first}-{last} broke no test")
    print(f"{total - len(survivors)} of {total} deletions made a test fail")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
