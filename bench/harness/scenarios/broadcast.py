"""Scenario 11: one message to N clients from Flack (v0.21, v0.22), bare Flask-SocketIO and Node.

What Flack's broadcast costs beyond the library's own, and what compressing it costs:
Flack and a Flask-SocketIO app that only re-broadcasts (bench/bare/bare_socketio.py)
run on the same gunicorn 27 gevent worker, from the same venv, with the same
gunicorn.conf.py, each pushing through its own channel of the same Redis message
queue, as `make serve` runs Flack. Node's socket.io is the reference. The clients
offer to compress messages, as browsers do, except those of the uncompressed bare
series: v0.21 accepts (as the library does), v0.22 declines. The servers take turns,
in the opposite order at each repetition, and the spread of the repetitions is shown.

Three experiments follow at the most clients, in the benchmark only: v0.22 in two web
processes (the v0.18 set, the clients shared between them), v0.22 on gunicorn's
threaded worker (a thread for each client), and the bare app with each broadcast
framed once (bench/bare/framed_once.py), as Node's socket.io does.
"""
import contextlib
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from statistics import median

from .. import chart, checkout, flackapp, node, processes, profile
from ..numbers import percentile
from . import Scenario, fan_out, leaving_eventlet, login_flood
from .presence_writes import DEFAULT_REDIS_URL, FORGET_KEYS

STAGES = ("v0.21", "v0.22")
OLD, NEW = "Flack v0.21, compressed", "Flack v0.22"
BARE, BARE_COMPRESSED = "bare Flask-SocketIO", "bare Flask-SocketIO, compressed"
NODE = fan_out.NODE
TWO_PROCESSES, FRAMED_ONCE = "Flack v0.22, 2 web processes", "bare, each broadcast framed once"
THREADS = 1100  # a thread for each open WebSocket, and some to spare for the requests
THREADED_NAME = f"Flack v0.22, gunicorn's threads ({THREADS:,})"
MAIN = (OLD, NEW, BARE, BARE_COMPRESSED, NODE)
EXPERIMENTS = (TWO_PROCESSES, THREADED_NAME, FRAMED_ONCE)
# Each series against the one that does the same work without Flack: the ratio of the goal.
LIKE_FOR_LIKE = {OLD: BARE_COMPRESSED, NEW: BARE, TWO_PROCESSES: BARE, THREADED_NAME: BARE,
                 FRAMED_ONCE: BARE}
PROFILED = (OLD, NEW, BARE, BARE_COMPRESSED)
SERVER = flackapp.Server("gunicorn 27 + gevent", "procfile-web")
# gunicorn's threaded worker, which gunicorn.conf.py refuses, with a thread and a
# connection for each client.
THREADED = leaving_eventlet.threaded(THREADS, connections=THREADS)
BARE_DIR = Path(__file__).resolve().parents[2] / "bare"
FULL = {"clients": [100, 500, 1000], "repetitions": 2, "rounds": 15, "warmup_rounds": 3,
        "profiled_rounds": 10, "users": 10, "pause_seconds": 0.2}
SMOKE = {"clients": [10], "repetitions": 2, "rounds": 2, "warmup_rounds": 1,
         "profiled_rounds": 2, "users": 2, "pause_seconds": 0.1}
GOAL_RATIO = 1.15  # the goal: Flack's p50 within 1.15x of the bare app's
LOOPBACK_BYTES = Path("/sys/class/net/lo/statistics/tx_bytes")
# Flack counts every message against its limits, as in production, but never refuses one.
LIMITS_RAISED = {"MESSAGE_LIMIT_PER_USER": "1000000 per 10 seconds",
                 "REGISTER_LIMIT_PER_ADDRESS": "1000 per hour"}
# What the profiles' reading names: the share of the worker's work in each.
PROFILE_PARTS = {
    "engine.io's writer tasks, one per client (framing, compressing, writing)":
        "Socket._websocket_handler.<locals>.writer (engineio/socket.py)",
    "compressing (wsproto's permessage-deflate)":
        "PerMessageDeflate.frame_outbound (wsproto/extensions.py)",
    "writing to the sockets (gevent's send)": "SocketMixin.send (gevent/_socketcommon.py)",
    "handing a copy to each client (python-socketio's emit, from the message queue)":
        "PubSubManager._handle_emit (socketio/pubsub_manager.py)",
    "the POST that saved the message": "new_message (flack/api/messages.py)",
    "the statistics pushed every 5 s": "push_stats_forever (flack/sockets.py)",
}


@dataclass
class Target:
    """A server (or two) that broadcasts, its clients' tokens, and what makes it send."""

    label: str
    pgids: list  # the process groups whose CPU time and memory are read
    base_urls: list  # the clients take turns among these; the message goes to the first
    tokens: list
    body: dict  # what the poster POSTs to /api/messages
    headers: dict
    compress: bool  # whether the clients offer to compress messages, as browsers do
    worker_pid: int | None = None  # the Python process to profile

    @property
    def base_url(self):
        """Where the poster posts."""
        return self.base_urls[0]


def loopback_bytes():
    """Return the bytes sent over loopback since boot (every server's and client's)."""
    return int(LOOPBACK_BYTES.read_text())


@contextlib.contextmanager
def flack_running(run, stage_copy, redis_url, name, shared=None, server=SERVER):
    """Start a stage's Procfile web with Redis as its message queue, as `make serve` does.

    shared, another running Flack: this one uses its database and Redis prefix, as a
    second web process of the same deployment.
    """
    work_dir = run.work_dir(f"broadcast-{name}")
    prefix = shared.env["REDIS_PREFIX"] if shared else f"bench-broadcast-{secrets.token_hex(4)}:"
    env = {"REDIS_URL": redis_url, "REDIS_PREFIX": prefix, **login_flood.unset_settings(),
           **LIMITS_RAISED}
    if shared:
        env["DATABASE_URL"] = shared.env["DATABASE_URL"]
    try:
        with flackapp.running(stage_copy, server, work_dir, env) as app:
            yield app
    finally:
        if not shared:
            processes.run([stage_copy.python, "-c", FORGET_KEYS, redis_url, prefix],
                          stage_copy.tree, checkout.make_env(), work_dir / "redis.log", 30)


@contextlib.contextmanager
def bare_running(run, stage_copy, redis_url, name, **settings):
    """Start the bare app under the stage's gunicorn and gunicorn.conf.py; yield a RunningApp."""
    work_dir = run.work_dir(f"broadcast-{name}")
    port = flackapp.free_port()
    env = {**checkout.make_env(), "HOST": "127.0.0.1", "PORT": str(port),
           "BARE_MESSAGE_QUEUE": redis_url, "BARE_CHANNEL": f"bench-bare-{secrets.token_hex(4)}",
           **settings}
    command = [stage_copy.venv / "bin" / "gunicorn", "-c", stage_copy.tree / "gunicorn.conf.py",
               "bare_socketio:app"]
    log_path = work_dir / "server.log"
    process = processes.start(command, BARE_DIR, env, log_path)
    app = flackapp.RunningApp(flackapp.Server(name, "bare"), process,
                              f"http://127.0.0.1:{port}", log_path, env)
    try:
        flackapp.wait_until_up(app)
        yield app
    finally:
        processes.kill(process)


def worker_of(app):
    """Return the pid of the gunicorn worker of a running app, or None."""
    workers = processes.descendants(app.process.pid)
    return workers[0] if workers else None


def flack_target(name, apps, users, compress):
    """Log readers and a poster in to a Flack; return its Target, and the message it posted."""
    base_urls = [app.base_url for app in apps]
    tokens = [flackapp.new_token(base_urls[0], f"reader{n + 1}") for n in range(users)]
    bearer = {"Authorization": f"Bearer {flackapp.new_token(base_urls[0], 'poster')}"}
    first = flackapp.call("POST", f"{base_urls[0]}/api/messages", {"source": fan_out.SOURCE},
                          bearer)
    return Target(name, [app.process.pid for app in apps], base_urls, tokens,
                  {"source": fan_out.SOURCE}, bearer, compress, worker_of(apps[0])), first


def bare_target(name, app, template, compress):
    """Return the Target of a bare app, which pushes what it is sent: Flack's message."""
    return Target(name, [app.process.pid], [app.base_url], ["-"], template, {}, compress,
                  worker_of(app))


def measure(run):
    """Start every server side by side; for each N, take turns connecting N clients to each."""
    settings = run.settings(FULL, SMOKE)
    redis_url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    most = max(settings["clients"])
    processes.raise_open_files_limit(most + fan_out.SPARE_CONNECTIONS + 1024)
    node.install(run.log_dir / "npm-bench-node.log")
    copies = {version: run.checkout(version) for version in STAGES}
    new = copies[STAGES[-1]]
    users = settings["users"]
    with contextlib.ExitStack() as stack:
        def start(manager):
            return stack.enter_context(manager)

        old_app = start(flack_running(run, copies[STAGES[0]], redis_url, "v0.21"))
        new_app = start(flack_running(run, new, redis_url, "v0.22"))
        second = start(flack_running(run, new, redis_url, "v0.22-second", shared=new_app))
        threaded = start(flack_running(run, new, redis_url, "v0.22-threads", server=THREADED))
        bare = start(bare_running(run, new, redis_url, "bare"))
        framed = start(bare_running(run, new, redis_url, "framed-once", BARE_FRAME_ONCE="1"))
        reference, reference_url = start(node.reference_running(run.work_dir("broadcast")))
        driver = start(node.driver_running(run.log_dir, run.progress))
        old, first = flack_target(OLD, [old_app], users, True)
        template = {name: value for name, value in first.items() if name != "id"}
        new_target = flack_target(NEW, [new_app], users, True)[0]
        targets = [old, new_target,
                   bare_target(BARE, bare, template, False),
                   bare_target(BARE_COMPRESSED, bare, template, True),
                   Target(NODE, [reference.pid], [reference_url], ["-"], template, {}, True)]
        # The same users, now connecting to either process in turn.
        experiments = [Target(TWO_PROCESSES, [new_app.process.pid, second.process.pid],
                              [new_app.base_url, second.base_url], new_target.tokens,
                              new_target.body, new_target.headers, True),
                       flack_target(THREADED_NAME, [threaded], users, True)[0],
                       bare_target(FRAMED_ONCE, framed, template, False)]
        samples = []
        for clients in settings["clients"]:
            for repetition in range(settings["repetitions"]):
                # The other way round each time: no server always follows the same one.
                for target in targets if repetition % 2 == 0 else targets[::-1]:
                    profiled = clients == most and repetition == 0 and target.label in PROFILED
                    samples.append(measure_target(run, driver, target, clients, repetition,
                                                  settings, profiled))
        for repetition in range(settings["repetitions"]):
            for target in experiments if repetition % 2 == 0 else experiments[::-1]:
                samples.append(measure_target(run, driver, target, most, repetition, settings,
                                              False))
    return {"settings": {**settings, "server": "gunicorn 27 with gevent, one worker, the "
                                               "stage's gunicorn.conf.py, for Flack and bare",
                         "message_queue": "Redis, a channel each",
                         "stats_push_interval_seconds": "5 (Flack's default)",
                         "payload_bytes": len(json.dumps(template))},
            "load_generator": f"{node.describe()}; reference: socket.io "
                              f"{node.package_version('socket.io')}",
            "runs": samples, "ratios": ratios(samples), "failures": fan_out.failures(samples)}


def measure_target(run, driver, target, clients, repetition, settings, profiled):
    """Connect the clients, time the rounds (profile more if asked), then disconnect."""
    opened = driver.ask({"do": "open", "kind": "socket", "base_urls": target.base_urls,
                         "tokens": target.tokens, "clients": clients,
                         "compress": target.compress, "heartbeat_ms": 0}, 60 + clients * 0.2)
    time.sleep(fan_out.SETTLE_SECONDS)
    rss = sum(processes.group_rss_bytes(pgid) for pgid in target.pgids)
    fan_out.ask_rounds(driver, target, settings["warmup_rounds"], settings["pause_seconds"])

    def cpu_seconds():
        return sum(processes.group_cpu_seconds(pgid) for pgid in target.pgids)

    cpu_before, bytes_before = cpu_seconds(), loopback_bytes()
    rounds = fan_out.ask_rounds(driver, target, settings["rounds"], settings["pause_seconds"])
    cpu = cpu_seconds() - cpu_before
    copies = len(rounds) * clients
    sample = {"label": target.label, "clients": clients, "repetition": repetition,
              "connect_seconds": round(opened["seconds"], 2),
              "compression_offered": target.compress,
              "websocket_extensions": opened["websocket_extensions"],
              "rss_mib": round(rss / 1024 / 1024, 1), "rounds": rounds,
              "server_cpu_ms_per_round": round(cpu * 1000 / len(rounds), 1),
              # Everything on loopback meanwhile: the copies, with their TCP/IP headers and
              # the acknowledgements, the POSTs, and the trips through Redis.
              "loopback_bytes_per_copy": round((loopback_bytes() - bytes_before) / copies),
              "summary": fan_out.summarize(rounds)}
    run.progress(f"{target.label}, {clients} clients, repetition {repetition + 1}: "
                 f"{fan_out.describe(sample['summary'])}")
    if profiled:
        sample["profile"] = profile_of(run, driver, target, settings)
    driver.ask({"do": "close"}, 60)
    for pgid in target.pgids:
        processes.wait_until_quiet(pgid, fan_out.QUIET_WAIT_SECONDS)
    return sample


def profile_of(run, driver, target, settings):
    """Run more rounds, not counted, while py-spy samples the worker; return its summary."""
    if target.worker_pid is None:
        return {"problem": "gunicorn's worker was not found"}
    folder = run.work_dir("broadcast-profile-" + "".join(
        c if c.isalnum() else "-" for c in target.label.lower()))
    with profile.recording(target.worker_pid, folder, PROFILE_PARTS) as summary:
        fan_out.ask_rounds(driver, target, settings["profiled_rounds"], 0)
    return summary


def pooled(samples):
    """Return {(clients, label): every repetition's rounds together, and each one's p50}."""
    found = {}
    for sample in samples:
        entry = found.setdefault((sample["clients"], sample["label"]),
                                 {"rounds": [], "p50s": [], "samples": []})
        entry["rounds"] += sample["rounds"]
        entry["p50s"].append(sample["summary"]["all_ms"]["p50"])
        entry["samples"].append(sample)
    for entry in found.values():
        entry["summary"] = fan_out.summarize(entry["rounds"])
        # From the first client's copy to the last one's: the broadcast alone, without
        # the POST that came before it.
        spreads = sorted(r["all_ms"] - r["first_ms"] for r in entry["rounds"]
                         if r["all_ms"] is not None and r["first_ms"] is not None)
        entry["spread_ms_p50"] = round(percentile(spreads, 50), 1) if spreads else None
    return found


def ratio(numerator, denominator):
    """Return numerator / denominator to two places, or None if either is missing."""
    return round(numerator / denominator, 2) if numerator and denominator else None


def ratios(samples):
    """Return each series' p50 over its like-for-like bare series', over Node's and v0.21's.

    The ratio to the bare app is taken in each repetition too (the two ran a few
    minutes apart there): its lowest and highest show how far one run can be trusted.
    """
    groups = pooled(samples)

    def p50(clients, name):
        entry = groups.get((clients, name))
        return entry["summary"]["all_ms"]["p50"] if entry else None

    found = []
    for clients, name in sorted(groups):
        if name == NODE:
            continue
        like = LIKE_FOR_LIKE.get(name)
        each = []
        if like:
            each = [ratio(mine, theirs) for mine, theirs
                    in zip(groups[(clients, name)]["p50s"], groups[(clients, like)]["p50s"],
                           strict=True)]
        found.append({"clients": clients, "label": name, "like_for_like": like,
                      "over_like": ratio(p50(clients, name), p50(clients, like)),
                      "over_like_each_repetition": [value for value in each if value],
                      "over_node": ratio(p50(clients, name), p50(clients, NODE)),
                      "over_v0_21": ratio(p50(clients, name), p50(clients, OLD))})
    return found


def ratio_of(results, clients, name, key):
    """Return one of the ratios of a series at a number of clients, or None."""
    return next((r[key] for r in results["ratios"]
                 if r["clients"] == clients and r["label"] == name), None)


def draw(results, path):
    """Chart each series' p50 until every client had the message, with its repetitions' range."""
    groups = pooled(results["runs"])
    counts = sorted({clients for clients, name in groups if name in MAIN})
    if any(entry["summary"]["all_ms"]["p50"] is None for entry in groups.values()):
        return  # some count of clients never got a message to all: the table says so

    def series(name):
        values = [groups[(n, name)]["summary"]["all_ms"]["p50"] for n in counts]
        each = [groups[(n, name)]["p50s"] for n in counts]
        return chart.Series(name, values, [min(v) for v in each], [max(v) for v in each])

    notes = [f"v0.22 ÷ bare {fan_out.multiple(ratio_of(results, n, NEW, 'over_like'))}"
             for n in counts]
    settings = results["settings"]
    chart.bar_chart(path, "One message to every client: Flack, Flask-SocketIO alone, Node",
                    [f"{clients:,} clients" for clients in counts],
                    [chart.Panel("p50 until every client had it", "milliseconds",
                                 [series(name) for name in MAIN], notes)],
                    note=f"{settings['repetitions']} × {settings['rounds']} rounds per bar, one "
                         "message at a time; whiskers: the lowest and highest repetition's p50",
                    panel_width=9)


def table(results):
    """Return, for each N and series, its times, its ratios, its CPU, bytes and memory."""
    groups = pooled(results["runs"])
    rows = ["| Clients | Server | Until all had it, p50 / p90 (ms) "
            "| ÷ like for like, p50 (each repetition) | ÷ Node, p50 | POST answered, p50 (ms) "
            "| First to last client, p50 (ms) "
            "| Server CPU a round (ms) | Loopback bytes a copy | Memory (MiB) | Missing |",
            "|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for clients, name in sorted(groups, key=lambda key: (key[0], order(key[1]))):
        entry = groups[(clients, name)]
        summary, runs = entry["summary"], entry["samples"]
        like = ""
        if ratio_of(results, clients, name, "like_for_like"):
            each = ratio_of(results, clients, name, "over_like_each_repetition")
            like = (f"{fan_out.multiple(ratio_of(results, clients, name, 'over_like'))} of "
                    f"{ratio_of(results, clients, name, 'like_for_like')} "
                    f"({', '.join(fan_out.multiple(v) for v in each)})")
        over_node = "" if name == NODE else fan_out.multiple(
            ratio_of(results, clients, name, "over_node"))
        rows.append(f"| {clients:,} | {name} | {fan_out.times(summary)} | {like} | {over_node} "
                    f"| {fan_out.number(summary['post_ms_p50'])} "
                    f"| {fan_out.number(entry['spread_ms_p50'])} "
                    f"| {median(s['server_cpu_ms_per_round'] for s in runs):.0f} "
                    f"| {median(s['loopback_bytes_per_copy'] for s in runs):,.0f} "
                    f"| {max(s['rss_mib'] for s in runs):.0f} | {summary['missing']} |")
    return "\n".join(rows) + "\n"


def order(name):
    """Return a series' place in the table: the main series, then the experiments."""
    every = (*MAIN, *EXPERIMENTS)
    return every.index(name) if name in every else len(every)


def reading(results):
    """Say in numbers: the goal, what v0.22 gained, what compression costs, the experiments."""
    groups = pooled(results["runs"])
    counts = sorted({clients for clients, name in groups if name in MAIN})
    most = counts[-1]
    lines = [goal_reading(results, counts), stage_reading(results, groups, counts),
             compression_reading(groups, most), request_reading(groups, most),
             experiments_reading(results, groups, most)]
    for name in PROFILED:
        entry = groups.get((most, name))
        summary = next((s["profile"] for s in entry["samples"] if "profile" in s), None)
        lines.append(fan_out.profile_reading(name, summary, most) if entry else None)
    return "\n".join(line for line in lines if line) + "\n"


def within_goal(results, clients, name):
    """Say whether a series is within the goal in every repetition, not only taken together."""
    each = ratio_of(results, clients, name, "over_like_each_repetition") or [None]
    return None not in each and max(each) <= GOAL_RATIO


def goal_reading(results, counts):
    """Say whether Flack's p50 is within the goal's ratio of the bare app's, at each N."""
    parts = []
    for name in (OLD, NEW):
        each = ", ".join(
            f"{n:,} clients {fan_out.multiple(ratio_of(results, n, name, 'over_like'))} ("
            + ", ".join(fan_out.multiple(v) for v in
                        ratio_of(results, n, name, "over_like_each_repetition") or [])
            + (", within" if within_goal(results, n, name) else "") + ")"
            for n in counts)
        parts.append(f"{name} over {LIKE_FOR_LIKE[name]}: {each}")
    return (f"- The goal: Flack's p50 within {GOAL_RATIO:g}× of the bare Flask-SocketIO app's, "
            f"each doing the same to its messages, in every repetition. Measured, all rounds "
            f"together (each repetition): {'; '.join(parts)}.")


def stage_reading(results, groups, counts):
    """Say how much sooner v0.22's clients had each message than v0.21's, which compressed."""
    each = "; ".join(
        f"{n:,} clients {groups[(n, NEW)]['summary']['all_ms']['p50']:.0f} ms instead of "
        f"{groups[(n, OLD)]['summary']['all_ms']['p50']:.0f} "
        f"({fan_out.multiple(ratio_of(results, n, NEW, 'over_v0_21'))})" for n in counts)
    return (f"- With clients that offer to compress, as browsers do, v0.22 (which declines) "
            f"against v0.21 (which accepts), p50 until every client had the message: {each}.")


def compression_reading(groups, clients):
    """Say what compressing cost and saved at the most clients, for Flack and the bare app."""
    parts = []
    for name, plain, packed in (("Flack", NEW, OLD), ("the bare app", BARE, BARE_COMPRESSED)):
        plain, packed = groups[(clients, plain)]["samples"], groups[(clients, packed)]["samples"]

        def value(samples, key, pick=median):
            return pick(s[key] for s in samples)

        # The bare app serves both of its series from one process: only Flack's two
        # stages, each a process of its own, can show what compressing costs in memory.
        memory = (f", and {value(packed, 'rss_mib', max):.0f} MiB of memory instead of "
                  f"{value(plain, 'rss_mib', max):.0f}" if name == "Flack" else "")
        parts.append(
            f"{name}: {value(packed, 'loopback_bytes_per_copy'):,.0f} bytes a copy on loopback "
            f"instead of {value(plain, 'loopback_bytes_per_copy'):,.0f}, "
            f"{value(packed, 'server_cpu_ms_per_round'):.0f} ms of the server's CPU a message "
            f"instead of {value(plain, 'server_cpu_ms_per_round'):.0f}{memory}")
    agreed = groups[(clients, OLD)]["samples"][0]["websocket_extensions"] or "nothing"
    declined = groups[(clients, NEW)]["samples"][0]["websocket_extensions"] or "nothing"
    return (f"- Compression at {clients:,} clients, compressed against not: {'; '.join(parts)}. "
            f"v0.21 agreed to `{agreed}`, v0.22 to {declined}.")


def request_reading(groups, clients):
    """Say how long the POST took to answer, Flack's against the bare app's."""
    flack = groups[(clients, NEW)]["summary"]["post_ms_p50"]
    bare = groups[(clients, BARE)]["summary"]["post_ms_p50"]
    return (f"- The POST itself, at {clients:,} clients, p50: {fan_out.number(flack)} ms for "
            f"Flack v0.22 (it checks the token and the limits, renders and saves the message, "
            f"then publishes it), {fan_out.number(bare)} ms for the bare app (it publishes it). "
            "The broadcast starts once the message is published; from the first client's copy "
            f"to the last one's it took {fan_out.number(groups[(clients, NEW)]['spread_ms_p50'])}"
            f" ms for Flack and {fan_out.number(groups[(clients, BARE)]['spread_ms_p50'])} ms "
            "for the bare app (p50).")


def experiments_reading(results, groups, clients):
    """Say what the experiments gave at the most clients."""
    if (clients, TWO_PROCESSES) not in groups:
        return None
    parts = [f"{name} {groups[(clients, name)]['summary']['all_ms']['p50']:.0f} ms "
             f"({fan_out.multiple(ratio_of(results, clients, name, 'over_like'))} the bare "
             f"app's, {fan_out.multiple(ratio_of(results, clients, name, 'over_node'))} Node's)"
             for name in EXPERIMENTS]
    return (f"- Experiments at {clients:,} clients, uncompressed, p50: {'; '.join(parts)}; "
            f"against {groups[(clients, NEW)]['summary']['all_ms']['p50']:.0f} ms for Flack "
            f"v0.22 in one process and {groups[(clients, BARE)]['summary']['all_ms']['p50']:.0f}"
            f" ms for the bare app.")


SCENARIO = Scenario(
    name="broadcast", number=11,
    title="What Flack's broadcast costs beyond the library's",
    question="How long one message takes to reach every one of 100, 500 and 1,000 clients "
             "(p50), from Flack v0.21 (which compresses each push when browsers offer) and "
             "v0.22 (which declines), from a Flask-SocketIO app that only re-broadcasts, on "
             "the same gunicorn 27 gevent worker and Redis message queue, compressing and "
             "not, and from Node.js socket.io; Flack's time over the bare app's and Node's, "
             "what compression costs, where the time goes, and three experiments.",
    stages=STAGES, also_needs="Node.js and npm, Redis", needs_wrk=False, max_minutes=30,
    measure=measure, chart=draw, table=table, reading=reading)
