"""Run scenarios against checked-out stages and write their JSON, charts and snippets."""
import contextlib
import json
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from . import checkout, machine, page, processes, wrk

SMOKE_MAX_MINUTES = 10  # per scenario, most of it for a first install of a stage's venv


class TimeLimit(Exception):
    """A scenario took longer than it may."""


class BenchRun:
    """What a scenario's measure() gets: stages, folders, progress, and whether to be brief."""

    def __init__(self, smoke, stack, work_root, seconds=None, repetitions=None):
        self.smoke = smoke
        self.seconds = seconds
        self.repetitions = repetitions
        self._stack = stack
        self.work_root = work_root
        self.log_dir = work_root / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._checkouts = {}

    def checkout(self, version):
        """Return a Checkout of the stage, made once per run and removed at its end."""
        if version not in self._checkouts:
            stage = checkout.find([version])[0][version]
            self.progress(f"checking out {version} and its venv")
            self._checkouts[version] = self._stack.enter_context(
                checkout.checked_out(stage, self.log_dir))
        return self._checkouts[version]

    def settings(self, full, smoke):
        """Return the full or smoke settings, with the duration and repetitions asked for."""
        chosen = dict(smoke if self.smoke else full)
        if self.seconds and "seconds" in chosen:
            chosen["seconds"] = self.seconds
        if self.repetitions and "repetitions" in chosen:  # others have no rounds to repeat
            chosen["repetitions"] = self.repetitions
        return chosen

    def work_dir(self, name):
        """Return a new folder for one server's database and logs."""
        path = self.work_root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def stages_info(self, versions):
        """Describe the checked-out stages: sha, subject, Python and package versions."""
        info = {}
        for version in versions:
            stage_copy = self.checkout(version)
            info[version] = {"sha": stage_copy.stage.sha, "subject": stage_copy.stage.subject,
                             **machine.python_packages(stage_copy.python)}
        return info

    @staticmethod
    def progress(text):
        """Print one line of progress."""
        print(f"bench:     {text}", flush=True)


class Outputs:
    """Where a run writes its JSON and charts, and, when asked, the page snippets."""

    def __init__(self, results_dir, img_dir, pages_dir=None):
        self.results_dir = Path(results_dir)
        self.img_dir = Path(img_dir)
        self.pages_dir = Path(pages_dir) if pages_dir else None

    @classmethod
    def inside(cls, folder):
        """Put everything in one folder: results/, img/ and pages/."""
        folder = Path(folder)
        return cls(folder / "results", folder / "img", folder / "pages")


def run_scenarios(scenarios, smoke, outputs, seconds=None, repetitions=None):
    """Run every scenario whose stages exist; return the names of those that failed."""
    failed = []
    work_root = Path(tempfile.mkdtemp(prefix="flack-bench-"))
    finished = False
    try:
        # Leaving the block kills the started processes first, then removes the worktrees.
        with contextlib.ExitStack() as stack, processes.cleanup_on_exit():
            bench_run = BenchRun(smoke, stack, work_root, seconds, repetitions)
            for scenario in scenarios:
                minutes = SMOKE_MAX_MINUTES if smoke else scenario.max_minutes
                try:
                    with time_limit(minutes * 60):
                        run_one(scenario, bench_run, outputs)
                except (RuntimeError, OSError, subprocess.SubprocessError,
                        checkout.StageError, TimeLimit) as error:
                    print(f"bench: {scenario.name}: FAILED: {error}", flush=True)
                    failed.append(scenario.name)
        finished = True
    finally:
        if finished and not failed:
            shutil.rmtree(work_root, ignore_errors=True)
        else:
            print(f"bench: the servers' logs are kept in {work_root}", flush=True)
    return failed


def run_one(scenario, bench_run, outputs):
    """Run one scenario, or say why it is skipped; write its results."""
    _, missing = checkout.find(scenario.stages)
    if missing:
        print(f"bench: {scenario.name}: needs stage {', '.join(missing)}, not found: skipped",
              flush=True)
        return
    if scenario.measure is None:
        print(f"bench: {scenario.name}: its stages exist, but the scenario is not written yet: "
              "skipped", flush=True)
        return
    print(f"bench: {scenario.name}: {scenario.title} ({', '.join(scenario.stages)})", flush=True)
    if scenario.needs_wrk:
        wrk.require()
    started = time.monotonic()
    described = machine.describe()
    measured = scenario.measure(bench_run)
    results = {"scenario": scenario.name, "title": scenario.title, "smoke": bench_run.smoke,
               "machine": described,
               "load_generator": wrk.version() if scenario.needs_wrk else None,
               "total_seconds": round(time.monotonic() - started), **measured}
    results["stages"] = bench_run.stages_info(scenario.stages)
    written = write_outputs(scenario, results, outputs)
    print(f"bench: {scenario.name}: done in {results['total_seconds']} s; wrote "
          f"{', '.join(map(str, written))}", flush=True)
    if results.get("failures"):  # written down, and still a failed scenario
        raise RuntimeError("; ".join(results["failures"]))


def write_outputs(scenario, results, outputs):
    """Write the results as JSON, the chart as SVG and, if asked, the page snippet."""
    json_path = outputs.results_dir / f"{scenario.name}.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=1) + "\n")
    svg_path = outputs.img_dir / f"{scenario.name}.svg"
    svg_path.unlink(missing_ok=True)  # a chart with nothing valid to draw is not drawn
    scenario.chart(results, svg_path)
    written = [json_path] + ([svg_path] if svg_path.exists() else [])
    if outputs.pages_dir:
        page_path = outputs.pages_dir / f"{scenario.name}.md"
        page_path.parent.mkdir(parents=True, exist_ok=True)
        link = svg_path.as_uri() if svg_path.exists() else None
        page_path.write_text(page.measured(scenario, results, link))
        written.append(page_path)
    return written


@contextlib.contextmanager
def time_limit(seconds):
    """Raise TimeLimit in the main thread if the block runs longer than seconds."""
    def expire(signum, frame):
        raise TimeLimit(f"it ran longer than its limit of {seconds:.0f} seconds")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(int(seconds))
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
