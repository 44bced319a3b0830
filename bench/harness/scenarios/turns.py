"""Scenario 12: 50 clients on one gevent worker with no Redis, before and after v0.22's turns.

Each stage's Procfile web runs with a folder as its broker and message queue
(LOCAL_BROKER_FOLDER), as on one machine without Redis, so that a request waits for
no network at all: its database is an SQLite file. wrk's 50 connections each send
their next GET /api/messages as soon as the last is answered. At v0.21 the green
thread of a connection that has its next request waiting serves it at once, again
and again; from v0.22 every request first lets the other green threads run. By
Little's law the mean time a request takes is the clients over the requests a
second, whatever the order: the median against that mean shows how fair the turns
were.
"""
import contextlib

from .. import flackapp
from ..numbers import summarize
from . import Scenario, leaving_eventlet, login_flood, web_servers

STAGES = ("v0.21", "v0.22")
PATH = "/api/messages"
FULL = {"connections": 50, "warmup_seconds": 2, "seconds": 8, "repetitions": 3,
        "messages": 50}
SMOKE = {"connections": 50, "warmup_seconds": 1, "seconds": 1, "repetitions": 1,
         "messages": 5}


def label(version):
    """Name a stage for the table: "v0.22: gunicorn 27.0 + gevent, no Redis"."""
    return f"{version}: gunicorn 27.0 + gevent, no Redis"


def measure(run):
    """Start both stages side by side without Redis, then load each in turn, round after round."""
    settings = run.settings(FULL, SMOKE)
    samples = {version: [] for version in STAGES}
    with contextlib.ExitStack() as stack:
        apps = {}
        for version in STAGES:
            work_dir = run.work_dir(f"turns-{version}")
            env = {"LOCAL_BROKER_FOLDER": str(work_dir / "broker"),
                   **login_flood.unset_settings(), **login_flood.LIMITS_OFF}
            app = stack.enter_context(flackapp.running(run.checkout(version),
                                                       login_flood.SERVER, work_dir, env))
            flackapp.seed(app.base_url, settings["messages"])
            apps[version] = (app, work_dir)
        for app, work_dir in apps.values():  # the first requests warm caches up
            leaving_eventlet.load(app, work_dir, settings, settings["warmup_seconds"])
        for repetition in range(settings["repetitions"]):
            for version, (app, work_dir) in apps.items():
                report = leaving_eventlet.load(app, work_dir, settings, settings["seconds"])
                samples[version].append(report)
                run.progress(f"{label(version)}, run {repetition + 1}: "
                             f"{report['requests_per_second']:.0f} requests/s, p50 "
                             f"{report['latency_us']['percentiles']['50'] / 1000:.1f} ms, p95 "
                             f"{report['latency_us']['percentiles']['95'] / 1000:.1f} ms")
    runs = [{"stage": version, "label": label(version), "samples": samples[version],
             "summary": summarize(samples[version])} for version in STAGES]
    return {"settings": {**settings, "path": PATH, "wrk_threads": 1,
                         "server": "each stage's Procfile web (one gunicorn worker), a folder "
                                   "as broker and message queue (no Redis), production "
                                   "settings, rate limits off"},
            "runs": runs}


def little_mean_ms(results, summary):
    """Return the mean time a request took by Little's law: the clients over the requests/s."""
    return results["settings"]["connections"] / summary["requests_per_second"]["median"] * 1000


def reading(results):
    """Say, for each stage, its median and tail against the mean that Little's law gives."""
    lines = []
    for run in results["runs"]:
        s = run["summary"]
        mean = little_mean_ms(results, s)
        lines.append(
            f"- {run['label']}: {s['requests_per_second']['median']:.0f} requests/s, so a mean of "
            f"{mean:.0f} ms a request ({results['settings']['connections']} clients); p50 "
            f"{s['latency_ms']['50']['median']:.1f} ms, p95 {s['latency_ms']['95']['median']:.1f}"
            f" ms, p99 {s['latency_ms']['99']['median']:.1f} ms.")
    return "\n".join(lines) + "\n"


def draw(results, path):
    """Chart requests a second, and the requests' p50 and p95, for each stage."""
    s = results["settings"]
    web_servers.draw(results, path, f"GET {s['path']} with {s['connections']} clients, no "
                                    "Redis: before and after the turns")


SCENARIO = Scenario(
    name="turns", number=12,
    title="Taking turns: 50 clients on one gevent worker without Redis",
    question="Requests per second, and p50, p95 and p99 against the mean that Little's law "
             "gives, of GET /api/messages with 50 clients, on one gunicorn gevent worker with "
             "no Redis, at v0.21 and at v0.22, whose every request lets the other green "
             "threads run first.",
    stages=STAGES, max_minutes=10,
    measure=measure, chart=draw, table=web_servers.table, reading=reading)
