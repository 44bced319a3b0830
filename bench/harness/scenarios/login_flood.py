"""Scenario 9: a bystander's pushes while wrong logins flood one web process (v0.19, v0.20)."""
import base64
import collections
import concurrent.futures
import contextlib
import http.client
import json
import os
import secrets
import subprocess
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .. import chart, checkout, flackapp, node, postgres, processes
from ..numbers import percentile
from . import Scenario
from .presence_writes import DEFAULT_REDIS_URL, FORGET_KEYS, heartbeat_ms

STAGES = ("v0.19", "v0.20")
SERVER = flackapp.Server("gunicorn + eventlet", "procfile-web")
FULL = {"seconds": 30, "logins_per_second": 20, "message_interval_ms": 250}
SMOKE = {"seconds": 3, "logins_per_second": 20, "message_interval_ms": 250}
# Users who post in turn, each on a connection of its own: v0.20 limits each user to 10
# messages in 10 s, which six sharing 4 messages a second stay well under. With the bystander
# and the target, 8 users register: v0.20 lets an address register 10 an hour.
POSTERS = 6
LOGIN_TIMEOUT_SECONDS = 10  # the rule for one request; the server goes on hashing after it
ARRIVAL_WAIT_SECONDS = 30  # after the last POST's answer, for the bystander to have them all
# A POST's limit: v0.19 answers late under a flood, later the longer it lasts (20 s at 10 s).
POST_TIMEOUT_SECONDS = 120
SETTLE_SECONDS = 1  # after the bystander connects: the server's first pushes to it go out
QUIET_WAIT_SECONDS = 90  # before a phase: the server is done with the previous one's logins
WRONG_PASSWORD = "not the password at all"
SOURCE = "A message for the bystander, who waits for it"
# Flask-Limiter's switch, which v0.20's config reads from the environment; v0.19 has no limits.
LIMITS_OFF = {"RATELIMIT_ENABLED": "false"}
# Run with a stage's python in its tree: what checking one wrong password costs, hashed as
# its production settings hash passwords.
HASH_COST = """
import json, time
from werkzeug.security import check_password_hash, generate_password_hash
import config
method = config.ProductionConfig.PASSWORD_HASH_METHOD
stored = generate_password_hash("a benchmark password", method=method)
times = []
for _ in range(5):
    started = time.perf_counter()
    check_password_hash(stored, "not the password at all")
    times.append(time.perf_counter() - started)
print(json.dumps({"password_hash": stored.split("$")[0],
                  "password_check_ms": round(min(times) * 1000, 1)}))
"""


@dataclass(frozen=True)
class Setting:
    """One web process to measure: a stage, the settings it gets, and the phases it runs."""

    label: str  # for the table: "v0.20, RATELIMIT_ENABLED=false"
    short: str  # for the chart: "v0.20 (no limits)"
    version: str
    env: dict = field(default_factory=dict)
    phases: tuple = ("quiet", "flood")
    server: flackapp.Server = SERVER  # how the web process is started


def plan(versions):
    """Return the settings to run: each stage once, the newest with its limits lifted, then on."""
    *older, newest = versions
    found = [Setting(version, version, version) for version in older]
    return found + [
        Setting(f"{newest}, RATELIMIT_ENABLED=false", f"{newest} (no limits)", newest,
                LIMITS_OFF),
        Setting(f"{newest}, rate limits as configured", f"{newest} (limits)", newest, {},
                ("flood",)),
    ]


def unset_settings():
    """Return the password and rate-limit settings of the shell, emptied: the stage decides.

    The stages' config reads an empty variable as unset, so each gets its own
    defaults: scrypt, and its own limits.
    """
    names = [name for name in os.environ if name.startswith("RATELIMIT_")]
    return {name: "" for name in ["PASSWORD_HASH_METHOD", *names]}


def hash_cost(stage_copy):
    """Return a stage's password hash and the ms one wrong password takes to check (best of 5)."""
    done = subprocess.run([str(stage_copy.python), "-c", HASH_COST], capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL, cwd=stage_copy.tree,
                          env=checkout.make_env())
    if done.returncode != 0:
        raise RuntimeError(f"timing the password hash failed: {done.stderr[-500:]}")
    return json.loads(done.stdout)


@contextlib.contextmanager
def database(python, postgres_url):
    """Yield a new PostgreSQL schema's URL, dropped after; None (SQLite) without PostgreSQL."""
    if postgres_url is None:
        yield None
        return
    with postgres.schema(python, postgres_url, "bench_login_flood") as url:
        yield url


@contextlib.contextmanager
def app_running(run, stage_copy, setting, database_url, redis_url, number):
    """Start the stage's release and web as the Procfile does; forget its Redis keys after."""
    work_dir = run.work_dir(f"login-flood-{number}")
    prefix = f"bench-login-flood-{secrets.token_hex(4)}:"
    env = {"REDIS_URL": redis_url, "REDIS_PREFIX": prefix, **unset_settings(), **setting.env}
    if database_url:
        env["DATABASE_URL"] = database_url
    try:
        with flackapp.running(stage_copy, setting.server, work_dir, env) as app:
            yield app
    finally:
        processes.run([stage_copy.python, "-c", FORGET_KEYS, redis_url, prefix],
                      stage_copy.tree, checkout.make_env(), work_dir / "redis.log", 30)


def measure(run):
    """Run each setting in turn: a bystander, a poster, and the phases with and without a flood."""
    settings = run.settings(FULL, SMOKE)
    postgres_url = postgres.url_from_environment()
    redis_url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    copies = {version: run.checkout(version) for version in STAGES}
    newest = copies[STAGES[-1]]
    no_postgres = postgres.unreachable(newest.python, postgres_url)
    if no_postgres:
        run.progress(f"{no_postgres}: on SQLite instead")
    node.install(run.log_dir / "npm-bench-node.log")
    runs = []
    with bystander_running(run.log_dir, run.progress) as bystander:
        for number, setting in enumerate(plan(STAGES)):
            runs.append(measure_setting(run, bystander, copies[setting.version], setting,
                                        number, None if no_postgres else postgres_url,
                                        redis_url, settings))
    database_name = ("SQLite (PostgreSQL did not answer)" if no_postgres else
                     f"PostgreSQL at {postgres.without_password(postgres_url)}, a schema of "
                     "its own for each run")
    redis_name = redis_url if redis_url == DEFAULT_REDIS_URL else "REDIS_URL from the environment"
    return {"settings": {**settings, "posters": POSTERS,
                         "server": "the Procfile's web (gunicorn, eventlet, one worker); "
                                   "production settings",
                         "database": database_name,
                         "message_queue": f"Redis at {redis_name}, a REDIS_PREFIX for each run",
                         **hash_cost(newest)},
            "load_generator": f"Node.js {node.node_version()} with socket.io-client "
                              f"{node.package_version('socket.io-client')} "
                              "(bench/node/bystander.mjs); the logins from Python's http.client",
            "runs": runs, "failures": failures(runs)}


@contextlib.contextmanager
def bystander_running(log_dir, progress):
    """Start bench/node/bystander.mjs, which driver.mjs's protocol drives; stop it after."""
    log_path = log_dir / "node-bystander.log"
    process = processes.start_piped(["node", "bystander.mjs"], node.NODE_DIR,
                                    checkout.make_env(), log_path)
    try:
        yield node.Driver(process, log_path, progress)
    finally:
        processes.kill(process)


def measure_setting(run, bystander, stage_copy, setting, number, postgres_url, redis_url,
                    settings):
    """Start one web process, register the users, connect the bystander, run the phases."""
    with database(stage_copy.python, postgres_url) as database_url, \
            app_running(run, stage_copy, setting, database_url, redis_url, number) as app:
        target = f"target-{secrets.token_hex(4)}"  # limits kept in Redis never carry over
        flackapp.call("POST", f"{app.base_url}/api/users",
                      {"nickname": target, "password": flackapp.PASSWORD})
        reader = flackapp.new_token(app.base_url, "bystander")
        posters = [flackapp.new_token(app.base_url, f"poster{n + 1}") for n in range(POSTERS)]
        bystander.ask({"do": "open", "base_url": app.base_url, "token": reader,
                       "heartbeat_ms": heartbeat_ms(stage_copy.tree)}, 60)
        time.sleep(SETTLE_SECONDS)
        phases = []
        for name in setting.phases:
            processes.wait_until_quiet(app.process.pid, QUIET_WAIT_SECONDS)
            phase = measure_phase(bystander, app, name, posters, target, settings)
            run.progress(f"{setting.label}, {name}: {describe(phase)}")
            phases.append(phase)
        bystander.ask({"do": "close"}, 60)
    return {"stage": setting.version, "setting": setting.label, "short": setting.short,
            "environment": setting.env, "phases": phases}


def measure_phase(bystander, app, name, posters, target, settings):
    """Post a message every interval while the bystander listens, with a flood if asked."""
    seconds = settings["seconds"]
    logins = []
    flood = None
    if name == "flood":
        flood = threading.Thread(target=send_logins, daemon=True, args=(
            app.base_url, target, settings["logins_per_second"], seconds, logins))
        flood.start()
    messages = round(seconds * 1000 / settings["message_interval_ms"])
    delivered = bystander.ask({"do": "post", "base_url": app.base_url, "tokens": posters,
                               "messages": messages,
                               "interval_ms": settings["message_interval_ms"],
                               "post_timeout_ms": POST_TIMEOUT_SECONDS * 1000,
                               "wait_ms": ARRIVAL_WAIT_SECONDS * 1000, "source": SOURCE},
                              seconds + POST_TIMEOUT_SECONDS + ARRIVAL_WAIT_SECONDS + 30)
    if flood is not None:
        flood.join(seconds + 3 * LOGIN_TIMEOUT_SECONDS + 30)
        if flood.is_alive() or len(logins) != round(settings["logins_per_second"] * seconds):
            raise RuntimeError("the flood of logins did not end within its time limit, or "
                               "broke (its traceback is in the output above)")
    phase = {"name": name, "messages_sent": messages, **bystander_part(delivered)}
    if flood is not None:
        phase["flood"] = flood_summary(logins, seconds)
        phase["logins"] = logins
    return phase


def send_logins(base_url, nickname, rate, seconds, logins):
    """Send rate wrong logins a second for seconds, each on time on a new connection."""
    address = urlsplit(base_url)
    basic = base64.b64encode(f"{nickname}:{WRONG_PASSWORD}".encode()).decode()
    # Enough threads that a login never waits for one while the earlier ones wait for answers.
    workers = rate * LOGIN_TIMEOUT_SECONDS + 1
    with concurrent.futures.ThreadPoolExecutor(workers, "login-flood") as pool:
        started = time.monotonic()
        pending = []
        for n in range(round(rate * seconds)):
            time.sleep(max(0.0, started + n / rate - time.monotonic()))
            pending.append(pool.submit(login_once, address.hostname, address.port, basic,
                                       started))
    logins.extend(future.result() for future in pending)


def login_once(host, port, basic, started):
    """POST /api/tokens with a wrong password; return when it was sent, its outcome, its time."""
    sent = time.monotonic()
    connection = http.client.HTTPConnection(host, port, timeout=LOGIN_TIMEOUT_SECONDS)
    try:
        connection.request("POST", "/api/tokens", headers={"Authorization": f"Basic {basic}"})
        response = connection.getresponse()
        response.read()
        outcome = str(response.status)
    except TimeoutError:
        outcome = "timeout"
    except (OSError, http.client.HTTPException):
        outcome = "error"
    finally:
        connection.close()
    return {"sent_s": round(sent - started, 3), "outcome": outcome,
            "ms": round((time.monotonic() - sent) * 1000, 1)}


def pick(values, p):
    """Return the p-th percentile of some values, rounded, or None if there are none."""
    return round(percentile(sorted(values), p), 1) if values else None


def bystander_part(delivered):
    """Sum up what the bystander had: p50 to highest of its latencies, what it missed, its drops."""
    messages = [{name: round(value, 1) if isinstance(value, float) else value
                 for name, value in message.items()} for message in delivered["messages"]]
    had = [message["latency_ms"] for message in messages if message["latency_ms"] is not None]
    return {"bystander": {"delivered": len(had),
                          "posts_failed": sum(1 for message in messages if message["error"]),
                          "p50": pick(had, 50), "p90": pick(had, 90), "p99": pick(had, 99),
                          "max": max(had) if had else None,
                          "post_ms_p50": pick([message["post_ms"] for message in messages], 50),
                          "drops": [{"at_s": round(drop["at_ms"] / 1000, 1),
                                     "reason": drop["reason"]} for drop in delivered["drops"]]},
            "messages": messages}


def flood_summary(logins, seconds):
    """Count the logins' outcomes, those answered within the phase, and the answers' times."""
    outcomes = collections.Counter(login["outcome"] for login in logins)
    answered = [login for login in logins if login["outcome"] not in ("timeout", "error")]
    in_window = [login for login in answered if login["sent_s"] + login["ms"] / 1000 <= seconds]
    times = [login["ms"] for login in answered]
    return {"sent": len(logins), "answered": len(answered),
            "answered_per_second": round(len(in_window) / seconds, 1),
            "outcomes": dict(sorted(outcomes.items())),
            "ms_p50": pick(times, 50), "ms_p95": pick(times, 95)}


def describe(phase):
    """Say in a few words how one phase went, for the progress line."""
    b = phase["bystander"]
    said = (f"bystander p50 {b['p50']} ms, p99 {b['p99']} ms, max {b['max']} ms; "
            f"{b['delivered']} of {phase['messages_sent']} delivered")
    if b["drops"]:
        said += f", dropped ({b['drops'][0]['reason']})"
    if "flood" in phase:
        f = phase["flood"]
        said += f"; logins {f['answered_per_second']}/s answered; {outcomes(f)}"
    return said


def losses(phase):
    """Say what the bystander missed in a phase: messages, failed POSTs, drops; or ""."""
    b = phase["bystander"]
    found = []
    if b["delivered"] < phase["messages_sent"]:
        found.append(f"{b['delivered']} of {phase['messages_sent']} messages delivered")
    if b["posts_failed"]:
        found.append(f"{b['posts_failed']} POST{'' if b['posts_failed'] == 1 else 's'} failed")
    found += [f"dropped after {drop['at_s']:g} s ({drop['reason']})" for drop in b["drops"]]
    return ", ".join(found)


def failures(runs):
    """List the quiet phases where the bystander missed anything.

    A flood's losses are what it measures, written down in the table and the
    reading: at v0.19 a long enough stall drops the bystander's connection. A
    quiet phase has nothing to excuse a loss: the benchmark itself is broken.
    """
    return [f"{run['setting']}, {phase['name']}: {losses(phase)}"
            for run in runs for phase in run["phases"]
            if phase["name"] == "quiet" and losses(phase)]


def outcomes(flood):
    """Say how the logins were answered: "58 answered 401, 2 timed out"."""
    words = {"timeout": "timed out", "error": "failed (connection refused or broken)"}
    return ", ".join(f"{count} {words.get(outcome, f'answered {outcome}')}"
                     for outcome, count in flood["outcomes"].items())


def multiple(value):
    """Format a ratio: whole from 10 on."""
    return f"{value:,.0f}×" if value >= 10 else f"{value:.1f}×"


def phases_of(results):
    """Return (run, phase) for every phase measured, in order."""
    return [(run, phase) for run in results["runs"] for phase in run["phases"]]


def number(value):
    """Format milliseconds, or a dash for none."""
    return "–" if value is None else f"{value:,.0f}"


def table(results):
    """Return a row for each setting and phase: the bystander's latency, and the logins'."""
    rows = ["| Stage, setting | Phase | Bystander p50 (ms) | p90 | p99 | max | Delivered "
            "| Logins answered a second | 401 | 429 | Timeouts, errors, other "
            "| Login answer p50 / p95 (ms) |",
            "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for run, phase in phases_of(results):
        b = phase["bystander"]
        cells = [number(b[p]) for p in ("p50", "p90", "p99", "max")]
        delivered = f"{b['delivered']} of {phase['messages_sent']}"
        if b["drops"]:
            delivered += " (dropped)"
        f = phase.get("flood")
        logins = ["–"] * 5
        if f:
            others = dict(f["outcomes"])
            unauthorized, limited = others.pop("401", 0), others.pop("429", 0)
            logins = [f"{f['answered_per_second']:g}", str(unauthorized), str(limited),
                      str(sum(others.values())),
                      f"{number(f['ms_p50'])} / {number(f['ms_p95'])}"]
        rows.append(f"| {run['setting']} | {phase['name']} | " + " | ".join(cells)
                    + f" | {delivered} | " + " | ".join(logins) + " |")
    return "\n".join(rows) + "\n"


def reading(results):
    """Say how it was measured, and how much each setting's flood slowed the bystander."""
    s = results["settings"]
    lines = [
        f"- Each setting in turn: {s['server']}, on {s['database']}, with "
        f"{s['message_queue']}. Users registered through the API: a bystander, whose "
        "Socket.IO client (the load generator, logged in with its token as the page is) "
        f"listens for `message_changed`, {s['posters']} posters, who post a message every "
        f"{s['message_interval_ms']} ms between them, in turn, each on a connection of its "
        "own, and the target of the flood. A message's latency runs from when it was due to the "
        "bystander's push, on one clock; the percentiles are of the messages it had, so a "
        "dropped bystander's are of those before the drop.",
        f"- Each phase lasts {s['seconds']} s: quiet, with no logins, then the flood: "
        f"{s['logins_per_second']} logins a second with a wrong password for the target's "
        f"nickname, all from 127.0.0.1, each on a new connection and sent on time however "
        f"slow the earlier answers (given up after {LOGIN_TIMEOUT_SECONDS} s). "
        f"Checking one wrong password ({s['password_hash']}, as the production settings hash "
        f"them) took {s['password_check_ms']:g} ms of one core here, so the flood asks for "
        f"{s['password_check_ms'] * s['logins_per_second'] / 1000:.1f} cores' worth of "
        "hashing a second.",
    ]
    for run in results["runs"]:
        lines.append(setting_reading(run))
    return "\n".join(line for line in lines if line) + "\n"


def setting_reading(run):
    """Say how the flood changed one setting's bystander, and what the logins got."""
    by_name = {phase["name"]: phase for phase in run["phases"]}
    flood = by_name.get("flood")
    if flood is None:
        return None
    b, f = flood["bystander"], flood["flood"]
    logins = (f"Of {f['sent']} logins, {f['answered_per_second']:g} a second were answered "
              f"within the phase; {outcomes(f)}.")
    if b["p50"] is None:
        return f"- {run['setting']}: during the flood {losses(flood)}. {logins}"
    said = f"- {run['setting']}: during the flood the bystander's p50 was {number(b['p50'])} ms"
    quiet = by_name.get("quiet")
    if quiet and quiet["bystander"]["p50"]:
        said += (f" against {number(quiet['bystander']['p50'])} ms quiet "
                 f"({multiple(b['p50'] / quiet['bystander']['p50'])})")
    lost = losses(flood)
    return (said + f", p99 {number(b['p99'])} ms, highest {number(b['max'])} ms"
            + (f"; {lost}" if lost else "; every message arrived") + f". {logins}")


def draw(results, path):
    """Chart the bystander's p50 and p99 for each setting and phase."""
    measured = phases_of(results)
    if not measured or any(phase["bystander"]["p50"] is None for _, phase in measured):
        return  # a phase without deliveries: the table says so
    labels = [f"{run['short']} {phase['name']}" for run, phase in measured]

    def panel(p):
        return chart.Panel(f"{p} of the bystander's latency", "milliseconds",
                           [chart.Series(p, [phase["bystander"][p] for _, phase in measured])])

    s = results["settings"]
    chart.bar_chart(path, "A bystander's pushes, quiet and during a flood of wrong logins",
                    labels, [panel("p50"), panel("p99")],
                    note=f"{s['seconds']} s a phase, a message every {s['message_interval_ms']} "
                         f"ms; the flood: {s['logins_per_second']} wrong logins a second for "
                         "one nickname", panel_width=5.5)


SCENARIO = Scenario(
    name="login-flood", number=9,
    title="Logins that cannot stall the pushes",
    question="How long a bystander's Socket.IO client waits for each new message (p50, p90, "
             "p99, highest), quiet and while 20 wrong-password logins a second arrive for one "
             "nickname, on one web process: v0.19, which checks each password with scrypt "
             "on the event loop, against v0.20, which checks it in eventlet's thread pool "
             "(with its rate limits lifted, then as configured); and how the logins were "
             "answered.",
    stages=STAGES, also_needs="PostgreSQL (else SQLite), Redis, Node.js and npm",
    needs_wrk=False, max_minutes=15, measure=measure, chart=draw, table=table,
    reading=reading)
