"""Scenario 1: how long `make test` takes at v0.13 and at v0.14, without and with PostgreSQL."""
import functools
import os
import re
import time

from .. import chart, checkout, postgres, processes
from ..numbers import spread
from ..postgres import without_password
from . import Scenario

STAGES = BEFORE, AFTER = ("v0.13", "v0.14")
CLAIMED_SPEED_UP, CLAIM = 2, "twice as fast"  # v0.14: "runs in parallel and twice as fast"
VARIANTS = {"sqlite": "SQLite only", "postgresql": "SQLite and PostgreSQL"}
SMOKE_TEST_FILE = "tests/test_utils.py"  # small, and in both stages
FULL = {"repetitions": 1, "timeout_seconds": 600}
SMOKE = {"repetitions": 1, "timeout_seconds": 120}
STOP_GRACE_SECONDS = 20  # for pytest to stop its servers and drop its schemas
LOG_TAIL_LINES = 30
BUSY_ELSEWHERE_CORES = 0.3  # more than this kept busy by other work makes timings suspect

ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
# pytest's last line: "==== 3 failed, 180 passed, 4 skipped in 61.20s (0:01:01) ====".
SUMMARY_LINE = re.compile(r"^=*\s*(?P<counts>(?:\d+ \w+(?:, )?)+|no tests ran) "
                          r"in (?P<seconds>[\d.]+)s\b")
SINGULAR = {"errors": "error", "warnings": "warning"}


def measure(run):
    """Run each stage's tests in turn, v0.13 then v0.14, round after round, per variant."""
    settings = run.settings(FULL, SMOKE)
    copies = {version: run.checkout(version) for version in STAGES}
    postgres_url = postgres.url_from_environment()
    variants = [{"name": "sqlite", "label": VARIANTS["sqlite"], "state": "measured"}]
    if not run.smoke:  # a smoke run only shows that the scenario works
        variants.append(postgres_variant(copies[BEFORE].python, postgres_url))
    measured = [v["name"] for v in variants if v["state"] == "measured"]
    log_dir = run.work_dir("test-suite")
    samples = {(version, name): [] for version in STAGES for name in measured}
    # Alternating stages, so that a change in the machine's other load hits both.
    for repetition in range(settings["repetitions"]):
        for name in measured:
            for version in STAGES:
                log_path = log_dir / f"{version}-{name}-{repetition + 1}.log"
                sample = run_tests(copies[version], run.smoke, variant_env(name, postgres_url),
                                   log_path, settings["timeout_seconds"])
                samples[version, name].append(sample)
                run.progress(f"{version} {VARIANTS[name]}, run {repetition + 1} of "
                             f"{settings['repetitions']}: {describe(sample)}")
    runs = [{"label": f"{version}, {VARIANTS[name]}", "stage": version, "variant": name,
             "samples": samples[version, name], "summary": summarize(samples[version, name])}
            for name in measured for version in STAGES]
    return {"settings": {**settings, "command": command_text(run.smoke),
                         "postgresql": without_password(postgres_url) if not run.smoke
                         else "not used",
                         "redis": without_password(os.environ.get("FLACK_TEST_REDIS_URL", ""))
                         or "unset"},
            "variants": variants, "runs": runs, "comparisons": compare(runs, measured),
            "failures": failures(runs)}


def postgres_variant(python, url):
    """Return the PostgreSQL variant, skipped with the reason if the server does not answer."""
    variant = {"name": "postgresql", "label": VARIANTS["postgresql"], "state": "measured"}
    reason = postgres.unreachable(python, url)
    if reason:
        variant.update(state="skipped", reason=reason)
    return variant


def variant_env(name, postgres_url):
    """Return the environment for a variant: FLACK_TEST_POSTGRES_URL set or unset."""
    env = checkout.make_env()
    env.pop("FLACK_TEST_POSTGRES_URL", None)
    if name == "postgresql":
        env["FLACK_TEST_POSTGRES_URL"] = postgres_url
    return env


def test_command(stage_copy, smoke):
    """Return the stage's own test command, or a small test file of it in a smoke run."""
    if smoke:
        return [stage_copy.python, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                SMOKE_TEST_FILE]
    return ["make", "test", f"VENV={stage_copy.venv}"]


def command_text(smoke):
    """Say what ran, for the settings line."""
    if smoke:
        return f"python -m pytest -q -x -p no:cacheprovider {SMOKE_TEST_FILE}"
    return "make test VENV=<the stage's venv>"


def run_tests(stage_copy, smoke, env, log_path, timeout):
    """Run the tests once; return the wall and CPU time, exit status and pytest's counts."""
    busy_before = processes.machine_busy_seconds()
    started = time.monotonic()
    process = processes.start(test_command(stage_copy, smoke), stage_copy.tree, env, log_path)
    stop = functools.partial(processes.stop_tree, grace=STOP_GRACE_SECONDS)
    try:
        code, cpu, timed_out = processes.wait_with_usage(process, timeout, stop)
    except BaseException:  # Ctrl-C or the scenario's time limit: stop the tests first
        if process.returncode is None:
            processes.stop_tree(process, STOP_GRACE_SECONDS)
        raise
    wall = time.monotonic() - started
    busy = processes.machine_busy_seconds() - busy_before
    output = ANSI_ESCAPE.sub("", log_path.read_text(encoding="utf-8", errors="replace"))
    line, counts, pytest_seconds = pytest_summary(output)
    sample = {"wall_seconds": round(wall, 2), "cpu_seconds": round(cpu, 2),
              "machine_busy_cpu_seconds": round(busy, 2), "exit_code": code,
              "timed_out": timed_out, "pytest_line": line, "pytest_seconds": pytest_seconds,
              "counts": counts}
    problem = sample_problem(sample, timeout)
    if problem:
        sample.update(problem=problem, log=str(log_path),
                      log_tail=output.splitlines()[-LOG_TAIL_LINES:])
    return sample


def pytest_summary(output):
    """Find pytest's last summary line; return (line, {outcome: count}, seconds) or Nones."""
    for line in reversed(output.splitlines()):
        found = SUMMARY_LINE.match(line.strip())
        if found:
            counts = {SINGULAR.get(word, word): int(number)
                      for number, word in re.findall(r"(\d+) (\w+)", found["counts"])}
            return line.strip(" ="), counts, float(found["seconds"])
    return None, None, None


def sample_problem(sample, timeout):
    """Say what went wrong in one run, or return "" if its tests passed."""
    if sample["timed_out"]:
        return f"stopped after its limit of {timeout} s"
    counts = sample["counts"]
    if counts is None:
        return f"exited with status {sample['exit_code']}, and pytest printed no summary"
    if sample["exit_code"] != 0 or counts.get("failed") or counts.get("error"):
        return f"exited with status {sample['exit_code']} ({sample['pytest_line']})"
    return ""


def describe(sample):
    """Say in a few words how one run went, for the progress line."""
    if "problem" in sample:
        return f"FAILED: {sample['problem']}"
    return f"{sample['wall_seconds']:.1f} s, {sample['cpu_seconds']:.1f} CPU s, " \
           f"{sample['pytest_line']}"


def summarize(samples):
    """Sum a stage's runs of one variant up; a single failed run makes it failed."""
    broken = [(number, s) for number, s in enumerate(samples, 1) if "problem" in s]
    if broken:
        number, sample = broken[0]
        return {"state": "failed", "failed_runs": len(broken),
                "problem": f"run {number} of {len(samples)} {sample['problem']}"}
    walls = [s["wall_seconds"] for s in samples]
    cpus = [s["cpu_seconds"] for s in samples]
    counts = samples[0]["counts"]
    return {"state": "measured", "repetitions": len(samples),
            "wall_seconds": spread(walls, 2), "cpu_seconds": spread(cpus, 2),
            # CPU seconds per second of wall time: how many cores the tests kept busy.
            "cores": round(sum(cpus) / sum(walls), 2),
            "other_cores": round(max(0.0, sum(s["machine_busy_cpu_seconds"] for s in samples)
                                     - sum(cpus)) / sum(walls), 2),
            "passed": counts.get("passed", 0), "skipped": counts.get("skipped", 0),
            "counts_vary": any(s["counts"] != counts for s in samples)}


def compare(runs, measured):
    """Return, per measured variant, v0.14's speed-up and how much of it is less CPU time."""
    by_key = {(run["stage"], run["variant"]): run["summary"] for run in runs}
    comparisons = []
    for name in measured:
        before, after = by_key[BEFORE, name], by_key[AFTER, name]
        comparison = {"variant": name, "speed_up": None}
        if before["state"] == after["state"] == "measured":
            speed_up = before["wall_seconds"]["median"] / after["wall_seconds"]["median"]
            less_cpu = before["cpu_seconds"]["median"] / max(after["cpu_seconds"]["median"], 0.01)
            # speed-up = (CPU seconds ratio) × (the rest: more cores busy at once).
            comparison.update(speed_up=round(speed_up, 2), cpu_ratio=round(less_cpu, 2),
                              parallel_ratio=round(speed_up / less_cpu, 2))
        comparisons.append(comparison)
    return comparisons


def failures(runs):
    """List the stages and variants whose tests failed, one line each."""
    return [f"{run['label']}: {run['summary']['problem']}" for run in runs
            if run["summary"]["state"] == "failed"]


def draw(results, path):
    """Chart the median wall and CPU time per variant, v0.13 beside v0.14, with the speed-up."""
    shown = [c for c in results["comparisons"] if c["speed_up"] is not None]
    if not shown:  # nothing valid to draw: the page shows the table and the failures
        return
    summaries = {(run["stage"], run["variant"]): run["summary"] for run in results["runs"]}
    labels = [VARIANTS[c["variant"]] for c in shown]

    def series(version, key):
        picked = [summaries[version, c["variant"]][key] for c in shown]
        return chart.Series(version, [p["median"] for p in picked], [p["min"] for p in picked],
                            [p["max"] for p in picked])

    settings = results["settings"]
    left_out = [f"{VARIANTS[c['variant']]}: a run failed" for c in results["comparisons"]
                if c["speed_up"] is None]
    left_out += [f"{v['label']}: not measured" for v in results["variants"]
                 if v["state"] != "measured"]
    note = (f"median of {settings['repetitions']} run(s) each, stages alternating; "
            f"whiskers: the fastest and slowest run")
    if left_out:
        note += "; " + "; ".join(left_out)
    what = "a smoke run of one test file" if results["smoke"] else "make test"
    chart.bar_chart(path, f"The test suite ({what}), {BEFORE} against {AFTER}", labels, [
        chart.Panel("Wall time", "seconds", [series(v, "wall_seconds") for v in STAGES],
                    [f"{BEFORE} / {AFTER}: {c['speed_up']:.2f}×" for c in shown]),
        chart.Panel("CPU time", "CPU seconds", [series(v, "cpu_seconds") for v in STAGES],
                    [f"{BEFORE} / {AFTER}: {c['cpu_ratio']:.2f}×" for c in shown]),
    ], note=note)


def table(results):
    """Return each stage's numbers per variant as a markdown table; failures say so."""
    speed_ups = {c["variant"]: c["speed_up"] for c in results["comparisons"]}
    rows = ["| Databases | Stage | Median (s) | Runs (s) | CPU (s) | Cores busy "
            "| Passed / skipped | Speed-up |",
            "|---|---|--:|--:|--:|--:|--:|--:|"]
    for run in results["runs"]:
        s = run["summary"]
        label = VARIANTS[run["variant"]]
        if s["state"] != "measured":
            rows.append(f"| {label} | {run['stage']} | **failed** | "
                        f"{cell(s['problem'])} | | | | |")
            continue
        runs = ", ".join(f"{sample['wall_seconds']:.1f}" for sample in run["samples"])
        speed_up = speed_ups[run["variant"]] if run["stage"] == AFTER else None
        ratio = f"**{speed_up:.2f}×**" if speed_up else "–"
        vary = " (varied)" if s["counts_vary"] else ""
        rows.append(f"| {label} | {run['stage']} | {s['wall_seconds']['median']:.1f} | {runs} "
                    f"| {s['cpu_seconds']['median']:.1f} | {s['cores']:.2f} "
                    f"| {s['passed']} / {s['skipped']}{vary} | {ratio} |")
    for variant in results["variants"]:
        if variant["state"] != "measured":
            rows.append(f"| {variant['label']} | both | not measured | "
                        f"{cell(variant['reason'])} | | | | |")
    return "\n".join(rows) + "\n"


def cell(text):
    """Make plain text safe in a markdown table cell."""
    return checkout.stage_tool.escape_markdown(" ".join(text.split()))


def reading(results):
    """Say in numbers how much faster v0.14's tests ran, why, and whether any test went."""
    summaries = {(run["stage"], run["variant"]): run["summary"] for run in results["runs"]}
    cores = results["machine"]["cpu_count"]
    lines = []
    for comparison in results["comparisons"]:
        before = summaries[BEFORE, comparison["variant"]]
        after = summaries[AFTER, comparison["variant"]]
        lines.append("- " + speed_sentence(comparison, before, after, cores))
        if before["state"] == after["state"] == "measured":
            lines.append("- " + counts_sentence(comparison["variant"], before, after))
    for variant in results["variants"]:
        if variant["state"] != "measured":
            reason = cell(variant["reason"].rstrip("."))
            lines.append(f"- {variant['label']}: not measured. {reason}.")
    lines.append("- " + other_load_sentence(results["runs"]))
    if any(v["name"] == "postgresql" and v["state"] == "measured" for v in results["variants"]):
        lines.append("- The CPU seconds are those of the test processes: the PostgreSQL "
                     "server's work counts with the rest of the machine.")
    return "\n".join(lines) + "\n"


def speed_sentence(comparison, before, after, machine_cores):
    """Say how fast v0.14 ran against v0.13 in one variant, and where the gain came from."""
    label = VARIANTS[comparison["variant"]]
    if comparison["speed_up"] is None:
        failed = [f"{version} failed ({cell(s['problem'])})"
                  for version, s in ((BEFORE, before), (AFTER, after)) if s["state"] == "failed"]
        return f"{label}: no comparison, since {' and '.join(failed)}: no time is given for it."
    speed_up, cpu_ratio = comparison["speed_up"], comparison["cpu_ratio"]
    parallel = comparison["parallel_ratio"]
    runs = "one run" if after["repetitions"] == 1 else f"medians of {after['repetitions']} runs"
    text = (f"With {label}, {AFTER} ran its tests in {after['wall_seconds']['median']:.1f} s "
            f"against {before['wall_seconds']['median']:.1f} s for {BEFORE} ({runs} each): "
            f"{times(speed_up, 'as fast', 'as long')}. ")
    if speed_up >= CLAIMED_SPEED_UP:
        text += f"That meets the claim of at least {CLAIM}. "
    else:
        text += f"That is less than the {CLAIM} that {AFTER} claims. "
    text += (f"It used {after['cpu_seconds']['median']:.1f} CPU seconds against "
             f"{before['cpu_seconds']['median']:.1f} ({times(cpu_ratio, 'less', 'more')} CPU "
             f"time), and kept {after['cores']:.2f} cores busy on average against "
             f"{before['cores']:.2f}, on a machine with {machine_cores}: {speed_up:.2f}× = "
             f"{cpu_ratio:.2f}× from the CPU time × {parallel:.2f}× from the cores.")
    if parallel >= 1.1 and speed_up > 1:
        text += (f" So part of the gain comes from running on more than one core: on a single "
                 f"core, most of that {parallel:.2f}× would be lost.")
    return text


def times(ratio, better, worse):
    """Say a ratio in words: "2.10 times as fast", or "1.50 times as long" when below 1."""
    if 0.95 <= ratio <= 1.05:
        return f"about the same ({ratio:.2f}×)"
    if ratio > 1:
        return f"{ratio:.2f} times {better}"
    return f"{1 / ratio:.2f} times {worse}"


def counts_sentence(variant, before, after):
    """Say how many tests each stage passed and skipped in one variant."""
    # No "<number> tests" here: a stage page that includes this checks such counts as its own.
    text = (f"With {VARIANTS[variant]}, tests passed: {before['passed']} at {BEFORE} and "
            f"{after['passed']} at {AFTER}; skipped: {before['skipped']} and "
            f"{after['skipped']}.")
    if after["passed"] < before["passed"]:
        text += (f" {AFTER} passed {before['passed'] - after['passed']} fewer: tests were "
                 "merged or dropped, which the stage's page should explain.")
    return text


def other_load_sentence(runs):
    """Say how busy the rest of the machine was while the tests ran."""
    measured = [run["summary"] for run in runs if run["summary"]["state"] == "measured"]
    if not measured:
        return "No run passed, so no time is given."
    other = max(s["other_cores"] for s in measured)
    text = (f"While the tests ran, the rest of the machine kept up to {other:.2f} cores busy "
            "on average")
    if other > BUSY_ELSEWHERE_CORES:
        return text + ": other work shared the machine, so these timings are suspect."
    return text + "."


SCENARIO = Scenario(
    name="test-suite", number=1,
    title="The test suite: v0.13 against v0.14",
    question="How long the stage's own `make test` takes at v0.13 and at v0.14, on SQLite "
             "alone and with PostgreSQL too, and how many tests each passes: v0.14 claims "
             "to run its tests at least twice as fast, without dropping one.",
    stages=STAGES, needs_wrk=False, max_minutes=60,
    measure=measure, chart=draw, table=table, reading=reading)
