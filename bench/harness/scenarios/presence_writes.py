"""Scenario 8: the database writes that 1,000 idle connected browsers cost (v0.18, v0.19)."""
import contextlib
import json
import os
import re
import secrets
import subprocess
import time

from .. import chart, flackapp, node, postgres, processes
from . import Scenario

STAGES = ("v0.18", "v0.19")
SERVER = flackapp.Server("gunicorn + eventlet", "procfile-web")
FULL = {"clients": 1000, "users": 10, "warmup_seconds": 25, "seconds": 60}
SMOKE = {"clients": 10, "users": 2, "warmup_seconds": 2, "seconds": 5}
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/13"  # as workers: a database of Redis's own
SPARE_CONNECTIONS = 100
QUIET_WAIT_SECONDS = 90
# Run with the stage's python: the counters of the database and of one schema's tables.
READ_STATS = """
import json, sys
import sqlalchemy
url, schema = sys.argv[1:]
engine = sqlalchemy.create_engine(url, connect_args={"connect_timeout": 5})
with engine.connect() as connection:
    database = connection.execute(sqlalchemy.text(
        "SELECT xact_commit, xact_rollback FROM pg_stat_database "
        "WHERE datname = current_database()")).one()
    tables = connection.execute(sqlalchemy.text(
        "SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables "
        "WHERE schemaname = :schema"), {"schema": schema}).all()
    wal = connection.execute(sqlalchemy.text(
        "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')")).scalar()
print(json.dumps({"xact_commit": database[0], "xact_rollback": database[1],
                  "wal_bytes": int(wal),
                  "tables": {name: {"ins": ins, "upd": upd, "del": dele}
                             for name, ins, upd, dele in tables}}))
"""
FORGET_KEYS = ("import redis, sys\n"
               "client = redis.Redis.from_url(sys.argv[1])\n"
               "for key in client.scan_iter(match=sys.argv[2] + '*'):\n"
               "    client.delete(key)\n")


def stage_constant(path, name):
    """Return the number a stage's file sets name to (NAME = 20.0), or None."""
    found = re.search(rf"^\s*{name}\s*=\s*([0-9.]+)", path.read_text(), re.MULTILINE)
    return float(found.group(1)) if found else None


def heartbeat_ms(tree):
    """Return how often the stage's page says still_here, in ms, or 0 if it does not."""
    app_js = tree / "flack" / "static" / "js" / "app.js"
    if "still_here" not in app_js.read_text():
        return 0
    seconds = stage_constant(tree / "config.py", "HEARTBEAT_INTERVAL")
    if seconds is None:
        raise RuntimeError(f"{tree.name}: app.js says still_here, and config.py sets no "
                           "HEARTBEAT_INTERVAL: the scenario cannot mimic the page")
    return round(seconds * 1000)


def read_stats(python, url, schema):
    """Return the database's and the schema's counters now, and when they were read."""
    done = subprocess.run([str(python), "-c", READ_STATS, url, schema], capture_output=True,
                          text=True, timeout=30, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RuntimeError(f"reading PostgreSQL's statistics failed: {done.stderr[-500:]}")
    return {**json.loads(done.stdout), "at": time.monotonic()}


def difference(before, after):
    """Return what the counters grew by between two readings."""
    tables = {}
    for name, now in after["tables"].items():
        then = before["tables"].get(name, {"ins": 0, "upd": 0, "del": 0})
        grown = {kind: now[kind] - then[kind] for kind in ("ins", "upd", "del")}
        if any(grown.values()):
            tables[name] = grown
    return {"seconds": round(after["at"] - before["at"], 2),
            "xact_commit": after["xact_commit"] - before["xact_commit"],
            "xact_rollback": after["xact_rollback"] - before["xact_rollback"],
            "rows_written": sum(sum(grown.values()) for grown in tables.values()),
            "wal_bytes": after["wal_bytes"] - before["wal_bytes"], "tables": tables}


@contextlib.contextmanager
def stack_running(run, stage_copy, database_url, redis_url):
    """Start the stage's release, web, worker and beat, as the Procfile runs them."""
    version = stage_copy.stage.version
    work_dir = run.work_dir(f"presence-writes-{version}")
    prefix = f"bench-presence-{version}-{secrets.token_hex(4)}:"
    port = flackapp.free_port()
    env = flackapp.app_env(stage_copy, SERVER, port, work_dir / "unused.sqlite", {
        "DATABASE_URL": database_url, "REDIS_URL": redis_url, "REDIS_PREFIX": prefix,
        "BEAT_SCHEDULE_FILE": str(work_dir / "celerybeat-schedule")})
    processes.run(flackapp.procfile_command(stage_copy, "release"), stage_copy.tree, env,
                  work_dir / "release.log", flackapp.SETUP_SECONDS)
    started = []
    try:
        web_log = work_dir / "web.log"
        web = processes.start(flackapp.procfile_command(stage_copy, "web"), stage_copy.tree,
                              env, web_log)
        started.append(web)
        app = flackapp.RunningApp(SERVER, web, f"http://127.0.0.1:{port}", web_log, env)
        flackapp.wait_until_up(app)
        worker_log = work_dir / "worker.log"
        worker = processes.start(flackapp.procfile_command(stage_copy, "worker"),
                                 stage_copy.tree, env, worker_log)
        started.append(worker)
        flackapp.wait_until_ready(flackapp.RunningWorker(worker, worker_log))
        beat = processes.start(flackapp.procfile_command(stage_copy, "beat"), stage_copy.tree,
                               env, work_dir / "beat.log")
        started.append(beat)
        yield app, worker, beat
    finally:
        for process in reversed(started):  # beat first: no task is left for another stage
            processes.kill(process)
        processes.run([stage_copy.python, "-c", FORGET_KEYS, redis_url, prefix],
                      stage_copy.tree, env, work_dir / "release.log", 30)


def measure(run):
    """For each stage in turn: connect the clients, warm up, then count the writes."""
    settings = run.settings(FULL, SMOKE)
    postgres_url = postgres.url_from_environment()
    redis_url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    redis_name = redis_url if redis_url == DEFAULT_REDIS_URL else "REDIS_URL from the environment"
    copies = {version: run.checkout(version) for version in STAGES}
    reason = postgres.unreachable(copies[STAGES[-1]].python, postgres_url)
    common = {**settings, "server": "the Procfile's web (gunicorn, eventlet, one worker), "
                                    "worker and beat; production settings",
              "database": f"PostgreSQL at {postgres.without_password(postgres_url)}, a "
                          "database of its own for each stage (dropped after)",
              "message_queue": f"Redis at {redis_name}, a REDIS_PREFIX for each stage"}
    if reason:
        run.progress(f"skipped: {reason}")
        return {"settings": common, "skipped": reason, "runs": []}
    processes.raise_open_files_limit(settings["clients"] + SPARE_CONNECTIONS + 1024)
    node.install(run.log_dir / "npm-bench-node.log")
    runs = []
    with node.driver_running(run.log_dir, run.progress) as driver:
        for version in STAGES:
            runs.append(measure_stage(run, driver, copies[version], postgres_url, redis_url,
                                      settings))
    return {"settings": common, "skipped": None, "load_generator": node.describe(),
            "runs": runs, "ratios": ratios(runs), "failures": failures(runs)}


def measure_stage(run, driver, stage_copy, postgres_url, redis_url, settings):
    """Start one stage on a schema of its own; connect, warm up, measure; stop it."""
    version = stage_copy.stage.version
    beat_ms = heartbeat_ms(stage_copy.tree)
    # A database of its own, not a schema: pg_stat_database's commits are then its own.
    prefix = f"bench_presence_{version.replace('.', '')}"
    with postgres.database(stage_copy.python, postgres_url, prefix) as (database_url, _), \
            stack_running(run, stage_copy, database_url, redis_url) as (app, worker, beat):
        schema = "public"
        tokens = [flackapp.new_token(app.base_url, f"reader{n + 1}")
                  for n in range(settings["users"])]
        opened = driver.ask({"do": "open", "kind": "socket", "base_url": app.base_url,
                             "tokens": tokens, "clients": settings["clients"],
                             "compress": True, "heartbeat_ms": beat_ms},
                            60 + settings["clients"] * 0.2)
        run.progress(f"{version}: {settings['clients']} clients connected in "
                     f"{opened['seconds']:.1f} s; warming up for "
                     f"{settings['warmup_seconds']} s")
        time.sleep(settings["warmup_seconds"])
        groups = {"web": app.process.pid, "worker": worker.pid, "beat": beat.pid}
        cpu_before = {name: processes.group_cpu_seconds(pid) for name, pid in groups.items()}
        before = read_stats(stage_copy.python, database_url, schema)
        idle = driver.ask({"do": "idle", "seconds": settings["seconds"]},
                          settings["seconds"] + 30)
        after = read_stats(stage_copy.python, database_url, schema)
        cpu = {name: round(processes.group_cpu_seconds(pid) - cpu_before[name], 2)
               for name, pid in groups.items()}
        rss = processes.group_rss_bytes(app.process.pid)
        driver.ask({"do": "close"}, 60)
        processes.wait_until_quiet(app.process.pid, QUIET_WAIT_SECONDS)
    grown = difference(before, after)
    per_minute = 60 / grown["seconds"]
    entry = {"stage": version, "clients": settings["clients"], "heartbeat_ms": beat_ms,
             "connect_seconds": round(opened["seconds"], 2), "window": grown,
             "cpu_seconds": cpu, "web_rss_mib": round(rss / 1024 / 1024, 1),
             "clients_sent": {"heartbeats": idle["heartbeats"],
                              "disconnects": idle["disconnects"], "events": idle["events"]},
             "per_minute": {"commits": round(grown["xact_commit"] * per_minute),
                            "rows_written": round(grown["rows_written"] * per_minute),
                            "wal_kib": round(grown["wal_bytes"] * per_minute / 1024),
                            "heartbeats": round(idle["heartbeats"] * per_minute),
                            "web_cpu_seconds": round(cpu["web"] * per_minute, 2),
                            "disconnects": idle["disconnects"]}}
    run.progress(f"{version}: {describe(entry)}")
    return entry


def describe(entry):
    """Say in a few words what one stage wrote, for the progress line."""
    m = entry["per_minute"]
    return (f"{m['commits']:,} commits/min, {m['rows_written']:,} rows written/min, "
            f"{m['wal_kib']:,} KiB of WAL/min, web {m['web_cpu_seconds']:.2f} CPU s/min, "
            f"{m['heartbeats']:,} heartbeats/min, {entry['clients_sent']['disconnects']} "
            "disconnects")


def ratios(runs):
    """Return v0.18's figures over v0.19's, a minute each."""
    if len(runs) != 2:
        return {}
    old, new = (run["per_minute"] for run in runs)
    return {name: round(old[name] / new[name], 1) if new[name] else None
            for name in ("commits", "rows_written", "wal_kib", "web_cpu_seconds")}


def failures(runs):
    """List the stages whose clients dropped during the window."""
    return [f"{run['stage']}: {run['clients_sent']['disconnects']} clients disconnected"
            for run in runs if run["clients_sent"]["disconnects"]]


def multiple(value):
    """Format a ratio, or a dash."""
    return "–" if value is None else f"{value:,.1f}×"


def table(results):
    """Return the stages as columns, the writes a minute as rows, and the ratio."""
    if results.get("skipped"):
        return f"*Not measured*: {results['skipped']}\n"
    runs = results["runs"]
    rows = ["| A minute, with " f"{runs[0]['clients']:,} idle clients | "
            + " | ".join(run["stage"] for run in runs) + " | ratio |",
            "|---|" + "--:|" * (len(runs) + 1)]
    names = [("commits", "Commits (pg_stat_database `xact_commit`)", "{:,}"),
             ("rows_written", "Rows written (inserted + updated + deleted, the stage's "
                              "tables)", "{:,}"),
             ("wal_kib", "WAL written (KiB, the whole server)", "{:,}"),
             ("web_cpu_seconds", "CPU seconds of the web process", "{:.2f}"),
             ("heartbeats", "`still_here` heartbeats sent by the clients", "{:,}"),
             ("disconnects", "Clients dropped in the window (of those connected)", "{:,}")]
    for key, label, form in names:
        ratio = results["ratios"].get(key)
        rows.append(f"| {label} | " + " | ".join(
                        form.format(run["per_minute"].get(key, run["clients_sent"].get(key, 0)))
                        for run in runs)
                    + f" | {multiple(ratio) if key in results['ratios'] else ''} |")
    return "\n".join(rows) + "\n"


def reading(results):
    """Say how it was measured, and which tables took the writes."""
    settings = results["settings"]
    if results.get("skipped"):
        return f"- Not measured: {results['skipped']}\n"
    lines = [
        f"- Each stage in turn: {settings['server']}, on {settings['database']}, with "
        f"{settings['message_queue']}; the presence sweep (beat's `mark_offline_users`) "
        f"runs every 5 s. {settings['clients']:,} Socket.IO clients (the load generator, "
        f"{settings['users']} users' tokens shared) connect over the websocket transport "
        f"and stay idle; after {settings['warmup_seconds']} s the counters are read, and "
        f"again {settings['seconds']} s later. Figures are scaled to one minute.",
        "- `xact_commit` counts every commit in the stage's own database: the app's, and "
        "the two readings' own; the rows are those of its tables. WAL is the whole "
        "server's, whatever else wrote to it meanwhile.",
    ]
    for run in results["runs"]:
        beat = (f"each client sent `still_here` every {run['heartbeat_ms'] / 1000:g} s, as "
                f"{run['stage']}'s page does" if run["heartbeat_ms"]
                else f"the clients sent nothing, as {run['stage']}'s page sends nothing")
        tables = ", ".join(f"{name} {sum(grown.values()):,}" for name, grown in sorted(
            run["window"]["tables"].items(), key=lambda item: -sum(item[1].values())))
        lines.append(f"- {run['stage']}: {beat}. In {run['window']['seconds']:.0f} s: "
                     f"{run['window']['xact_commit']:,} commits; rows written by table: "
                     f"{tables or 'none'}; web process {run['cpu_seconds']['web']:.2f} CPU s, "
                     f"worker {run['cpu_seconds']['worker']:.2f}, beat "
                     f"{run['cpu_seconds']['beat']:.2f}."
                     + (f" {run['clients_sent']['disconnects']} of the {run['clients']:,} "
                        "clients were dropped during the window (the load generator does not "
                        "reconnect them)." if run["clients_sent"]["disconnects"] else ""))
    if results["ratios"]:
        r = results["ratios"]
        lines.append(f"- {results['runs'][0]['stage']} over {results['runs'][1]['stage']}: "
                     f"{multiple(r['commits'])} the commits, {multiple(r['rows_written'])} "
                     f"the rows, {multiple(r['web_cpu_seconds'])} the web process's CPU.")
    return "\n".join(lines) + "\n"


def draw(results, path):
    """Chart commits and rows written a minute, and the web process's CPU, stage by stage."""
    runs = results.get("runs") or []
    if len(runs) < 2:
        return
    labels = [run["stage"] for run in runs]

    def panel(key, title, unit):
        return chart.Panel(title, unit, [chart.Series(title, [run["per_minute"][key]
                                                               for run in runs])])

    chart.bar_chart(path, f"{runs[0]['clients']:,} idle Socket.IO clients: a minute's work",
                    labels, [panel("commits", "commits a minute", "commits"),
                             panel("rows_written", "rows written a minute", "rows"),
                             panel("web_cpu_seconds", "web process CPU a minute",
                                   "CPU seconds")],
                    note="PostgreSQL's pg_stat_database and pg_stat_user_tables, over one "
                         "measured window scaled to a minute", panel_width=3.4)


SCENARIO = Scenario(
    name="presence-writes", number=8,
    title="What presence costs the database",
    question="Database commits, rows written and WAL a minute, and the web process's CPU, "
             "with 1,000 idle Socket.IO clients connected to one web process (with its "
             "worker and beat), at v0.18 (each browser says `still_here` every 20 s) and "
             "v0.19 (each process refreshes its own row), on PostgreSQL.",
    stages=STAGES, also_needs="PostgreSQL, Redis, Node.js and npm",
    needs_wrk=False, max_minutes=15, measure=measure, chart=draw, table=table,
    reading=reading)
