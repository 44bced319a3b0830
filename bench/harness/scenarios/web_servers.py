"""Scenario 3: the development server against gunicorn with eventlet and with gevent (v0.13)."""
import contextlib

from .. import chart, flackapp, wrk
from ..numbers import cores, errors, summarize
from . import Scenario

STAGE = "v0.13"
PATH = "/api/messages"
SERVERS = (
    flackapp.Server("development server", "runserver"),
    flackapp.Server("gunicorn + eventlet", "procfile-web"),
    flackapp.Server("gunicorn + gevent", "procfile-web", "--worker-class gevent"),
)
FULL = {"connections": 50, "warmup_seconds": 2, "seconds": 8, "repetitions": 2,
        "messages": 50}
SMOKE = {"connections": 50, "warmup_seconds": 1, "seconds": 1, "repetitions": 1,
         "messages": 5}


def measure(run):
    """Start the three servers side by side, then load each in turn, round after round."""
    settings = run.settings(FULL, SMOKE)
    stage_copy = run.checkout(STAGE)
    samples = {server.label: [] for server in SERVERS}
    with contextlib.ExitStack() as stack:
        apps = []
        for number, server in enumerate(SERVERS):
            work_dir = run.work_dir(f"web-servers-{number}")
            app = stack.enter_context(flackapp.running(stage_copy, server, work_dir))
            flackapp.seed(app.base_url, settings["messages"])
            apps.append((app, work_dir))
        for app, work_dir in apps:  # the first requests warm caches and connections up
            load(app, work_dir, settings, settings["warmup_seconds"])
        # Round after round, so that a change in the machine's other load hits every server.
        for repetition in range(settings["repetitions"]):
            for app, work_dir in apps:
                report = load(app, work_dir, settings, settings["seconds"])
                samples[app.server.label].append(report)
                run.progress(f"{app.server.label}, run {repetition + 1} of "
                             f"{settings['repetitions']}: {report['requests_per_second']:.0f} "
                             f"requests/s, p95 "
                             f"{report['latency_us']['percentiles']['95'] / 1000:.1f} ms")
    runs = [{"label": server.label, "stage": STAGE, "server": server.kind,
             "gunicorn_cmd_args": server.gunicorn_args, "samples": samples[server.label],
             "summary": summarize(samples[server.label])} for server in SERVERS]
    return {"settings": {**settings, "path": PATH, "wrk_threads": 1}, "runs": runs}


def load(app, work_dir, settings, seconds):
    """Run wrk against the app's GET /api/messages and return its report."""
    return wrk.measure(app.base_url + PATH, settings["connections"], seconds,
                       app.process.pid, work_dir)


def draw(results, path, title=None):
    """Chart requests per second and latency for each server (or stage: title names them)."""
    runs = results["runs"]
    labels = [run["label"] for run in runs]

    def series(name, pick):
        picked = [pick(run["summary"]) for run in runs]
        return chart.Series(name, [p["median"] for p in picked], [p["min"] for p in picked],
                            [p["max"] for p in picked])

    settings = results["settings"]
    title = title or f"GET {settings['path']} with {settings['connections']} clients ({STAGE})"
    chart.bar_chart(path, title, labels, [
        chart.Panel("Throughput", "requests per second",
                    [series("requests/s", lambda s: s["requests_per_second"])]),
        chart.Panel("Latency", "milliseconds",
                    [series("p50", lambda s: s["latency_ms"]["50"]),
                     series("p95", lambda s: s["latency_ms"]["95"])]),
    ], note=f"median of {settings['repetitions']} run(s) of {settings['seconds']} s each; "
            "whiskers: the lowest and highest run")


def table(results):
    """Return the numbers of each server as a markdown table (medians; ranges in the chart)."""
    rows = ["| Server | Requests/s | p50 (ms) | p95 (ms) | p99 (ms) | Errors "
            "| CPU cores: server / wrk / other |",
            "|---|--:|--:|--:|--:|--:|--:|"]
    for run in results["runs"]:
        s = run["summary"]
        p50, p95, p99 = (s["latency_ms"][p]["median"] for p in ("50", "95", "99"))
        rows.append(f"| {run['label']} | {s['requests_per_second']['median']:.0f} "
                    f"| {p50:.1f} | {p95:.1f} | {p99:.1f} | {errors(s['errors'])} "
                    f"| {cores(s['server_cores'])} / {cores(s['wrk_cores'])} "
                    f"/ {cores(s['other_cores'])} |")
    return "\n".join(rows) + "\n"


def reading(results):
    """Say in numbers how the servers compare: throughput, latency, and how even it is."""
    runs = {run["label"]: run["summary"] for run in results["runs"]}
    base_rps = runs[SERVERS[0].label]["requests_per_second"]["median"]
    lines = []
    for server in SERVERS:
        s = runs[server.label]
        rps = s["requests_per_second"]["median"]
        p50, p95 = (s["latency_ms"][p]["median"] for p in ("50", "95"))
        versus = "" if server is SERVERS[0] else \
            f" ({rps / base_rps:.2f}× the development server's)"
        lines.append(f"- {server.label}: {rps:.0f} requests per second{versus}; half of the "
                     f"requests took {p50:.1f} ms or less, and the slowest 5% took "
                     f"{p95:.1f} ms or more, {p95 / max(p50, 0.001):.1f}× the median.")
    body = runs[SERVERS[0].label]["bytes_per_response"]
    lines.append(f"- Each answer held about {body / 1024:.1f} KiB, headers included.")
    return "\n".join(lines) + "\n"


SCENARIO = Scenario(
    name="web-servers", number=3,
    title="The development server, or gunicorn with green threads",
    question="Requests per second and p95 latency of GET /api/messages with 50 clients at "
             "once, at v0.13, on the development server and on gunicorn with eventlet and "
             "with gevent.",
    stages=(STAGE,), measure=measure, chart=draw, table=table, reading=reading)
