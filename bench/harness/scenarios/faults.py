"""Scenario 7: kill each part of the production stack, and time the recovery (v0.18, v0.19)."""
import contextlib
import json
import subprocess
from pathlib import Path

from .. import chart, checkout, postgres, processes
from . import Scenario

STAGES = ("v0.18", "v0.19")
DRIVER_STAGE = "v0.19"  # whose tests/faults.py drives every stage
CHILD = Path(__file__).resolve().parents[1] / "fault_child.py"
FAULTS = ("web-worker", "celery-pool", "celery-main", "redis", "nginx")
FULL = {"faults": list(FAULTS), "settle_seconds": 60}
SMOKE = {"faults": ["web-worker"], "settle_seconds": 15}
# Around the settle time: the stack's start, the posts before and after the kill, its stop.
CHILD_EXTRA_SECONDS = 180
WHAT = {  # what each fault kills, for the table
    "web-worker": "a gunicorn worker (its master starts another)",
    "celery-pool": "the Celery pool's processes (the worker starts others)",
    "celery-main": "the Celery worker's main process, then started again",
    "redis": "Redis, then started again, empty",
    "nginx": "nginx, then started again",
}


def measure(run):
    """Run each fault against each stage, stage after stage for each fault."""
    settings = run.settings(FULL, SMOKE)
    driver_copy = run.checkout(DRIVER_STAGE)
    driver = driver_copy.tree / "tests" / "faults.py"
    if not driver.exists():
        raise RuntimeError(f"{DRIVER_STAGE} has no tests/faults.py: nothing drives the faults")
    copies = {version: run.checkout(version) for version in STAGES}
    postgres_url = postgres.url_from_environment()
    reason = postgres.unreachable(driver_copy.python, postgres_url)
    database = "SQLite" if reason else \
        f"PostgreSQL at {postgres.without_password(postgres_url)}, a schema for each run"
    if reason:
        run.progress(f"PostgreSQL not used: {reason}; SQLite instead")
    runs = []
    for fault in settings["faults"]:  # stage by stage within a fault: a drift hits both
        for version in STAGES:
            found = run_one(run, driver_copy, driver, copies[version], fault, settings,
                            None if reason else postgres_url)
            found["recovered"] = recovered(found, settings["settle_seconds"])
            runs.append({"stage": version, **found})
            run.progress(f"{version}, {fault}: {describe(found)}")
    return {"settings": {**settings, "database": database,
                         "driver": f"{DRIVER_STAGE}'s tests/faults.py, with {DRIVER_STAGE}'s "
                                   "venv; each stage's stack with its own venv",
                         "redis": "a redis-server of each run's own (never the machine's)"},
            "database_reason": reason or None,
            "load_generator": f"{DRIVER_STAGE}'s tests/faults.py (python-socketio clients)",
            "runs": runs, "failures": [f"{r['stage']}, {r['fault']}: {r['error']}"
                                       for r in runs if r.get("error")]}


def run_one(run, driver_copy, driver, stage_copy, fault, settings, postgres_url):
    """Run one fault against one stage in a child process; return what it wrote."""
    version = stage_copy.stage.version
    folder = run.work_dir(f"faults-{version}-{fault}")
    out = folder / "result.json"
    with contextlib.ExitStack() as stack:
        database_url = None
        if postgres_url:
            database_url = stack.enter_context(postgres.schema(
                stage_copy.python, postgres_url,
                f"bench_faults_{version.replace('.', '')}_{fault.replace('-', '_')}"))
        args = {"driver": str(driver), "root": str(stage_copy.tree),
                "python": str(stage_copy.python), "folder": str(folder),
                "database_url": database_url, "fault": fault,
                "settle": settings["settle_seconds"], "out": str(out)}
        log_path = folder / "driver.log"
        process = processes.start([driver_copy.python, CHILD, json.dumps(args)],
                                  stage_copy.tree, child_env(), log_path)
        try:
            process.wait(timeout=settings["settle_seconds"] + CHILD_EXTRA_SECONDS)
        except subprocess.TimeoutExpired:
            pass
        finally:
            # SIGINT first: the driver stops its services, each in a session of its own.
            processes.stop_tree(process, grace=20)
            process.wait()
            processes.forget(process)
    if not out.exists():
        tail = log_path.read_text(errors="replace")[-2000:]
        return {"fault": fault, "error": f"the driver wrote no result (log: {log_path}):\n{tail}"}
    found = json.loads(out.read_text())
    if found.get("error"):
        run.progress(f"{version}, {fault}: the driver failed: {found['error']}")
    return summarize(found)


def child_env():
    """Our environment, without what the shell's Flack settings would change in the stack."""
    env = checkout.make_env()
    for name in list(env):
        if name in ("DATABASE_URL", "SECRET_KEY", "PORT", "HOST", "REDIS_URL",
                    "LOCAL_BROKER_FOLDER", "VIRTUAL_ENV") or \
                name.startswith(("FLACK_", "FLASK_", "GUNICORN_", "LINK_PREVIEW", "CELERY_")):
            del env[name]
    return env


def summarize(found):
    """Keep what the table and the page need, and the counts behind them."""
    alive = found.get("alive") or {}
    recovered = found.get("recovered_after")
    return {
        "fault": found["fault"], "error": found.get("error"),
        "recovered_after": None if recovered is None else round(recovered, 1),
        "posted": len(found.get("posted") or []), "posts_failed": found.get("posts_failed"),
        "stored": found.get("stored"),
        "pending": len(found.get("pending") or []),
        "pending_ids": found.get("pending") or [],
        "clients_missing": found.get("clients_missing") or [],
        "refused": sum(1 for refusals in found.get("refused") or [] if refusals),
        "refusals": [r for r in found.get("refused") or [] if r],
        "server_closed": sum(found.get("server_closed") or []),
        "tokens_valid": found.get("tokens_valid"),
        "alive": alive, "dead": [name for name, up in alive.items() if not up],
        "heartbeats": found.get("heartbeats"),
        "start_seconds": found.get("start_seconds"), "seconds": found.get("seconds"),
        "log_lines": found.get("log_lines") or {},
        "traceback": found.get("traceback"),
    }


def recovered(entry, settle):
    """Say when a run recovered, or that it did not, or that it failed."""
    if entry.get("error"):
        return "driver failed"
    if "recovered_after" not in entry:
        return "no result"
    if entry["recovered_after"] is None:
        return f"not within {settle:g} s"
    return f"{entry['recovered_after']:.1f} s"


def describe(entry):
    """Say in a few words how one fault went, for the progress line."""
    if entry.get("error"):
        return f"the driver failed: {entry['error'].splitlines()[0]}"
    when = "did not recover" if entry["recovered_after"] is None else \
        f"recovered after {entry['recovered_after']:.1f} s"
    missing = sum(entry["clients_missing"])
    return (f"{when}; {entry['posted']} posted, {entry['posts_failed']} failed, "
            f"{entry['pending']} pending, {missing} missing in clients, "
            f"{entry['refused']} clients refused, dead: {', '.join(entry['dead']) or 'none'}")


def count(number, noun):
    """Say "1 preview" or "5 previews"."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def cell(entry, settle):
    """One table cell: the recovery, then what was left wrong."""
    if entry is None:
        return "–"
    text = recovered(entry, settle)
    if entry.get("error"):
        return text
    wrong = []
    if entry["pending"]:
        wrong.append(f"{count(entry['pending'], 'preview')} pending")
    missing = sum(entry["clients_missing"])
    if missing:
        wrong.append(f"{count(missing, 'message')} missing in the browsers, summed "
                     f"({sum(1 for m in entry['clients_missing'] if m)} of "
                     f"{len(entry['clients_missing'])} browsers lack some)")
    if entry["refused"]:
        wrong.append(f"{count(entry['refused'], 'client')} logged out")
    if entry["dead"]:
        wrong.append(f"dead at the end: {', '.join(entry['dead'])}")
    if entry["posts_failed"]:
        wrong.append(f"{entry['posts_failed']} of {entry['posted'] + entry['posts_failed']} "
                     "POSTs failed")
    return text + ("; " + "; ".join(wrong) if wrong else "")


def by_fault(results):
    """Return {fault: {stage: entry}}, in the order run."""
    found = {}
    for entry in results["runs"]:
        found.setdefault(entry["fault"], {})[entry["stage"]] = entry
    return found


def table(results):
    """Return the faults as rows, the stages as columns."""
    settle = results["settings"]["settle_seconds"]
    rows = ["| Fault | " + " | ".join(STAGES) + " |", "|---|" + "---|" * len(STAGES)]
    for fault, entries in by_fault(results).items():
        rows.append(f"| `{fault}`: {WHAT[fault]} | "
                    + " | ".join(cell(entries.get(v), settle) for v in STAGES) + " |")
    return "\n".join(rows) + "\n"


def reading(results):
    """Say how the faults were run, and quote what the logs said where a stage did not recover."""
    settings = results["settings"]
    lines = [
        f"- {DRIVER_STAGE}'s `tests/faults.py` drives every stage: each run starts the "
        f"stage's stack as production runs it, with the stage's own venv: two gunicorns, a "
        f"Celery worker, beat and nginx, {settings['redis']}, on {settings['database']}. "
        "Browsers (python-socketio "
        "clients that behave as the page does: connect, catch up, merge the pushes; at "
        "v0.18 they also send `still_here` every HEARTBEAT_INTERVAL, as its page did) "
        "connect through nginx and to each web process; a poster posts a message with a "
        "link to a slow page every 0.2 s. Then one part is killed and, where nothing starts "
        "it by itself, started again after 1 s, as a supervisor would.",
        f"- Recovered: seconds from the kill until every browser had every stored message "
        f"in its final version (its preview shown, or given up); the run waits "
        f"{settings['settle_seconds']:g} s at most after the poster stops.",
    ]
    for fault, entries in by_fault(results).items():
        for version in STAGES:
            entry = entries.get(version)
            if entry and (entry.get("error") or entry["recovered_after"] is None):
                lines.append(failure_reading(version, fault, entry))
    return "\n".join(lines) + "\n"


def failure_reading(version, fault, entry):
    """Say what a stage left wrong after a fault, and the last line its logs complained with."""
    if entry.get("error"):
        return f"- {version}, `{fault}`: the driver failed: {entry['error'].splitlines()[0]}"
    quoted = [f"{service}: `{telling(lines).strip()[:200]}`"
              for service, lines in entry["log_lines"].items()]
    logs = f" The logs' last complaints: {'; '.join(quoted)}." if quoted else ""
    return (f"- {version}, `{fault}`: not recovered; {count(entry['pending'], 'preview')} still "
            f"pending, {count(sum(entry['clients_missing']), 'message')} missing in the browsers, "
            f"dead at the end: {', '.join(entry['dead']) or 'nothing'}.{logs}")


def telling(lines):
    """Pick the line of a log that says most: the last CRITICAL, else the last logged ERROR."""
    for wanted in (lambda line: "CRITICAL" in line or "Unrecoverable" in line,
                   lambda line: "ERROR" in line and not line[:1].isspace(),
                   lambda line: "Traceback" not in line or " ... " in line):
        found = [line for line in lines if wanted(line)]
        if found:
            return found[-1]
    return lines[-1]


def draw(results, path):
    """Chart the seconds until recovery, each fault's stages side by side (none: not drawn)."""
    settle = results["settings"]["settle_seconds"]
    groups = by_fault(results)
    faults = list(groups)
    series = []
    notes = []
    for version in STAGES:
        values = []
        for fault in faults:
            entry = groups[fault].get(version)
            ok = entry and not entry.get("error") and entry["recovered_after"] is not None
            values.append(entry["recovered_after"] if ok else settle)
        series.append(chart.Series(version, values))
    for fault in faults:
        failed = [v for v in STAGES if groups[fault].get(v) is None
                  or groups[fault][v].get("error") or groups[fault][v]["recovered_after"] is None]
        notes.append("not recovered: " + ", ".join(failed) if failed else "")
    chart.bar_chart(path, "Seconds from the kill until every browser had every message",
                    faults, [chart.Panel("recovery (a bar at the limit: not recovered)",
                                         "seconds", series, notes)],
                    note=f"A stage that did not recover within {settle:g} s has its bar at that "
                         "limit",
                    panel_width=8)


SCENARIO = Scenario(
    name="faults", number=7,
    title="Recovery after each fault",
    question="How long after one part of the production stack is killed (a gunicorn "
             "worker, the Celery pool, the Celery worker, Redis, nginx) and started again "
             "every browser has every message in its final version, at v0.18 and v0.19, "
             "driven by v0.19's tests/faults.py; and what is left pending, missing, logged "
             "out or dead when it does not.",
    stages=STAGES, also_needs="nginx, redis-server and Node.js and npm (the pages' packages)",
    needs_wrk=False, max_minutes=30, measure=measure, chart=draw, table=table, reading=reading)
