"""Scenario 10: v0.20 on gunicorn 25's eventlet worker against v0.21 on gunicorn 27's gevent.

And v0.21 on gunicorn 27's threaded worker (gthread) with Socket.IO in threading mode,
the other way that gunicorn 27 and Flask-SocketIO support, which gunicorn.conf.py refuses
because each open WebSocket holds a thread.

Two measurements in one run, each stage in turn as its Procfile runs it: GET
/api/messages with 50 clients (wrk, round after round), then a bystander's pushes,
quiet and while 20 wrong logins a second arrive (login-flood's phases, limits off so
that every login is hashed).
"""
import contextlib
import os
import secrets
from dataclasses import dataclass

from .. import checkout, flackapp, node, postgres, processes, wrk
from ..numbers import errors, summarize
from . import Scenario, login_flood, web_servers
from .presence_writes import DEFAULT_REDIS_URL, FORGET_KEYS

STAGES = ("v0.20", "v0.21")
THREADS = 100


def threaded(threads, connections=None):
    """Return gunicorn's threaded worker with gunicorn.conf.py's other settings.

    That file refuses the worker, and gunicorn reads it from the working folder unless
    another config is named: each WebSocket holds one of the threads while it is open.
    """
    more = f" --worker-connections {connections}" if connections else ""
    return flackapp.Server(
        "gunicorn + gthread", "gunicorn",
        f"--config /dev/null --worker-class gthread --threads {threads}{more} --workers 1 "
        "--timeout 30 --graceful-timeout 10 --keep-alive 5 --access-logfile - "
        "--error-logfile - --forwarded-allow-ips 127.0.0.1,::1 --no-control-socket",
        (("SOCKETIO_ASYNC_MODE", "threading"),))


THREADED = threaded(THREADS)


@dataclass(frozen=True)
class Series:
    """One way of serving a stage: its label, its stage, and how its web process starts."""

    label: str
    version: str
    server: flackapp.Server = login_flood.SERVER  # the Procfile's web


SERIES = (Series("v0.20: gunicorn 25.3 + eventlet", "v0.20"),
          Series("v0.21: gunicorn 27.0 + gevent", "v0.21"),
          Series(f"v0.21: gunicorn 27.0 + threads ({THREADS})", "v0.21", THREADED))
PATH = "/api/messages"
FULL = {"connections": 50, "warmup_seconds": 2, "seconds": 8, "repetitions": 3,
        "messages": 50, "flood_seconds": 30, "logins_per_second": 20,
        "message_interval_ms": 250}
SMOKE = {"connections": 50, "warmup_seconds": 1, "seconds": 1, "repetitions": 1,
         "messages": 5, "flood_seconds": 3, "logins_per_second": 20,
         "message_interval_ms": 250}


@contextlib.contextmanager
def web_running(run, stage_copy, server, number, redis_url):
    """Start the stage's web, its limits off, on a Redis prefix forgotten after."""
    work_dir = run.work_dir(f"leaving-eventlet-{number}")
    prefix = f"bench-leaving-eventlet-{secrets.token_hex(4)}:"
    env = {"REDIS_URL": redis_url, "REDIS_PREFIX": prefix, **login_flood.unset_settings(),
           **login_flood.LIMITS_OFF}
    try:
        with flackapp.running(stage_copy, server, work_dir, env) as app:
            yield app, work_dir
    finally:
        processes.run([stage_copy.python, "-c", FORGET_KEYS, redis_url, prefix],
                      stage_copy.tree, checkout.make_env(), work_dir / "redis.log", 30)


def measure(run):
    """Load each stage's web with wrk, round after round; then run the login flood on each."""
    settings = run.settings(FULL, SMOKE)
    redis_url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    copies = {version: run.checkout(version) for version in STAGES}
    samples = {series.label: [] for series in SERIES}
    with contextlib.ExitStack() as stack:
        apps = {}
        for number, series in enumerate(SERIES):
            app, work_dir = stack.enter_context(
                web_running(run, copies[series.version], series.server, number, redis_url))
            flackapp.seed(app.base_url, settings["messages"])
            apps[series.label] = (app, work_dir)
        for app, work_dir in apps.values():  # the first requests warm caches up
            load(app, work_dir, settings, settings["warmup_seconds"])
        for repetition in range(settings["repetitions"]):
            for name, (app, work_dir) in apps.items():
                report = load(app, work_dir, settings, settings["seconds"])
                samples[name].append(report)
                run.progress(f"{name}, run {repetition + 1}: "
                             f"{report['requests_per_second']:.0f} requests/s, p95 "
                             f"{report['latency_us']['percentiles']['95'] / 1000:.1f} ms")
    requests = [{"stage": series.version, "label": series.label,
                 "gunicorn_args": series.server.gunicorn_args or "the Procfile's web",
                 "samples": samples[series.label], "summary": summarize(samples[series.label])}
                for series in SERIES]
    return {"settings": {**settings, "path": PATH, "wrk_threads": 1,
                         "server": "each stage's Procfile web (one gunicorn worker), and "
                                   f"v0.21 on gunicorn's threaded worker ({THREADS} threads, "
                                   "Socket.IO's threading mode); production settings, rate "
                                   "limits off"},
            "runs": requests, **flood(run, copies, settings, redis_url)}


def load(app, work_dir, settings, seconds):
    """Run wrk against the app's GET /api/messages and return its report."""
    return wrk.measure(app.base_url + PATH, settings["connections"], seconds,
                       app.process.pid, work_dir)


def flood(run, copies, settings, redis_url):
    """Run login-flood's quiet and flood phases on each stage, limits off; return its runs and
    the quiet phases that missed anything (failures)."""
    phases = {"seconds": settings["flood_seconds"],
              "logins_per_second": settings["logins_per_second"],
              "message_interval_ms": settings["message_interval_ms"]}
    postgres_url = postgres.url_from_environment()
    no_postgres = postgres.unreachable(copies[STAGES[-1]].python, postgres_url)
    node.install(run.log_dir / "npm-bench-node.log")
    runs = []
    with login_flood.bystander_running(run.log_dir, run.progress) as bystander:
        for number, series in enumerate(SERIES):
            setting = login_flood.Setting(series.label, series.label, series.version,
                                          login_flood.LIMITS_OFF, server=series.server)
            runs.append(login_flood.measure_setting(
                run, bystander, copies[series.version], setting, 10 + number,
                None if no_postgres else postgres_url, redis_url, phases))
    return {"flood": {"database": "SQLite" if no_postgres else "PostgreSQL", "runs": runs},
            "failures": login_flood.failures(runs)}


def table(results):
    """Return the requests' table, then the bystander's, as markdown."""
    rows = [web_servers.table(results)]  # its columns, one row per stage
    rows += ["| Stage: server | Phase | Bystander p50 (ms) | p90 | p99 | max | Delivered "
             "| Logins answered a second | Login answer p50 / p95 (ms) |",
             "|---|---|--:|--:|--:|--:|--:|--:|--:|"]
    for run in results["flood"]["runs"]:
        for phase in run["phases"]:
            b = phase["bystander"]
            cells = " | ".join(login_flood.number(b[p]) for p in ("p50", "p90", "p99", "max"))
            f = phase.get("flood")
            logins = (f"{f['answered_per_second']:g} | {login_flood.number(f['ms_p50'])} / "
                      f"{login_flood.number(f['ms_p95'])}") if f else "– | –"
            rows.append(f"| {run['setting']} | {phase['name']} | {cells} "
                        f"| {b['delivered']} of {phase['messages_sent']} | {logins} |")
    return "\n".join(rows) + "\n"


def reading(results):
    """Say in numbers how the two workers compare."""
    s = results["settings"]
    runs = {run["label"]: run["summary"] for run in results["runs"]}
    labels = list(runs)
    lines = [f"- GET {s['path']}, {s['connections']} clients, {s['repetitions']} runs of "
             f"{s['seconds']} s per stage, taken in turn: {s['server']}, on a new SQLite "
             f"database each. The login flood: login-flood's phases, on "
             f"{results['flood']['database']}."]
    for name, r in runs.items():
        lines.append(f"- {name}: {r['requests_per_second']['median']:.0f} requests/s, "
                     f"p50 {r['latency_ms']['50']['median']:.1f} ms, p95 "
                     f"{r['latency_ms']['95']['median']:.1f} ms, errors: {errors(r['errors'])}.")
    old = runs[labels[0]]
    for name in labels[1:]:
        new = runs[name]
        throughput = new["requests_per_second"]["median"] / old["requests_per_second"]["median"]
        tail = new["latency_ms"]["95"]["median"] / max(old["latency_ms"]["95"]["median"], 0.01)
        lines.append(f"- {name} against {labels[0]}: {throughput:.2f}× the requests a second, "
                     f"p95 {tail:.2f}× its.")
    for run in results["flood"]["runs"]:
        said = login_flood.setting_reading(run)
        if said:
            lines.append(said)
    return "\n".join(lines) + "\n"


def draw(results, path):
    """Chart requests a second, and the requests' p50 and p95, for each stage."""
    s = results["settings"]
    web_servers.draw(results, path, f"GET {s['path']} with {s['connections']} clients: "
                                    "eventlet, gevent, threads")


SCENARIO = Scenario(
    name="leaving-eventlet", number=10,
    title="Leaving eventlet: gunicorn 27 with gevent",
    question="Requests per second and latency of GET /api/messages with 50 clients, and a "
             "bystander's pushes during a flood of wrong logins, at v0.20 (gunicorn 25.3 with "
             "eventlet), v0.21 (gunicorn 27.0 with gevent), and v0.21 on gunicorn 27.0's "
             "threaded worker.",
    stages=STAGES, also_needs="Node.js and npm (the bystander), Redis", max_minutes=25,
    measure=measure, chart=draw, table=table, reading=reading)
