"""Stages checked out in temporary worktrees, each with its cached venv, via the stage tool."""
import contextlib
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import processes

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tutorial"))
import stage as stage_tool  # noqa: E402  (tutorial/stage.py, found through the path above)

StageError = stage_tool.StageError
VENV_INSTALL_SECONDS = 900
NPM_INSTALL_SECONDS = 300


@dataclass
class Checkout:
    """A stage's code in a worktree, and the venv that has its requirements."""

    stage: object  # a stage_tool.Stage
    tree: Path
    venv: Path

    @property
    def python(self):
        """The venv's python."""
        return self.venv / "bin" / "python"


def find(versions):
    """Return ({version: Stage} for the versions that exist, [versions that do not])."""
    known = {stage.version: stage for stage in stage_tool.stages()}
    found = {version: known[version] for version in versions if version in known}
    return found, [version for version in versions if version not in known]


def make_env():
    """Return our environment without what an outer make passes down."""
    return stage_tool.make_env()


def ensure_venv(tree, venv, log_path):
    """Create or update the stage's venv the way the stage checker does."""
    makefile = tree / "Makefile"
    if makefile.exists() and "$(VENV)/.installed:" in makefile.read_text():
        processes.run(["make", f"{venv}/.installed", f"VENV={venv}"], tree, make_env(),
                      log_path, VENV_INSTALL_SECONDS)
        return
    if not (venv / "bin" / "python").exists():
        processes.run(["python3", "-m", "venv", venv], tree, make_env(), log_path, 120)
    processes.run([venv / "bin" / "python", "-m", "pip", "install", "--quiet",
                   "--disable-pip-version-check", "-r", "requirements.txt"],
                  tree, make_env(), log_path, VENV_INSTALL_SECONDS)


def ensure_node_packages(tree, log_path):
    """Install the page's npm packages, from v0.17 on: without them the server refuses to start."""
    if not (tree / "package-lock.json").exists():
        return
    makefile = tree / "Makefile"
    if makefile.exists() and "node_modules/.installed:" in makefile.read_text():
        command = ["make", "node_modules/.installed"]
    else:
        command = ["npm", "ci", "--no-audit", "--no-fund", "--loglevel", "error"]
    processes.run(command, tree, make_env(), log_path, NPM_INSTALL_SECONDS)


@contextlib.contextmanager
def checked_out(stage, log_dir):
    """Yield a Checkout of the stage in a temporary worktree, removed afterwards."""
    venv = stage_tool.venv_for(stage)
    work = Path(tempfile.mkdtemp(prefix=f"flack-bench-{stage.version}-"))
    tree = work / "tree"
    try:
        stage_tool.git("worktree", "add", "--detach", str(tree), stage.sha)
        ensure_venv(tree, venv, log_dir / f"venv-{stage.version}.log")
        ensure_node_packages(tree, log_dir / f"npm-{stage.version}.log")
        yield Checkout(stage, tree, venv)
    finally:
        stage_tool.git("worktree", "remove", "--force", str(tree), check=False)
        stage_tool.git("worktree", "prune", check=False)
        shutil.rmtree(work, ignore_errors=True)
