"""Scenario 6: one message to N Socket.IO clients, from Flack (v0.17) and from Node.js socket.io."""
import contextlib
import json
import time
from dataclasses import dataclass

from .. import chart, flackapp, node, processes, profile
from ..numbers import percentile
from . import Scenario

STAGE = "v0.17"
FLACK, NODE = "Flack v0.17", "Node.js socket.io"
FULL = {"clients": [100, 500, 1000], "rounds": 30, "warmup_rounds": 5, "profiled_rounds": 15,
        "users": 10, "pause_seconds": 0.25}
SMOKE = {"clients": [10], "rounds": 2, "warmup_rounds": 1, "profiled_rounds": 2,
         "users": 2, "pause_seconds": 0.1}
SOURCE = ("Has anyone tried the **new build** yet? The deploy script runs `make test` first "
          "now, and it takes half the time it used to.")
SPARE_CONNECTIONS = 100  # besides the clients: the poster's, and a few to spare
SETTLE_SECONDS = 1  # after the clients connect: the server's last pushes to them go out
QUIET_WAIT_SECONDS = 90  # after they close: Flack forgets each connection in the database
ARRIVAL_WAIT_SECONDS = 10  # for every client to have a round's message
TARGET_RATIO, TARGET_CLIENTS = 1.5, 1000  # the goal: within 1.5x of Node at 1,000
# What the profile's reading names: the share of Flack's work in each, with what it called.
PROFILE_PARTS = {
    "sending each client its copy (engine.io's writer, and eventlet's WebSocket framing, "
    "compressing and writing it)": "Socket._websocket_handler.<locals>.writer (engineio/socket.py)",
    "the heartbeats (`still_here`, a database write each)": "still_here (flack/sockets.py)",
    "the POSTs that saved the messages": "new_message (flack/api/messages.py)",
    "the statistics pushed every 5 s": "push_stats_forever (flack/sockets.py)",
}


@dataclass
class Target:
    """A server that broadcasts: how to reach it, log in to it, and make it send a message."""

    label: str
    pgid: int  # its process group, whose CPU time and memory are read
    base_url: str
    tokens: list
    body: dict  # what the poster POSTs to /api/messages
    headers: dict
    worker_pid: int | None = None  # the Python process to profile, for Flack


def measure(run):
    """Start Flack and the reference side by side; for each N, connect N clients to each in turn."""
    settings = run.settings(FULL, SMOKE)
    most = max(settings["clients"])
    # The load generator holds every connection, and each server holds its own.
    processes.raise_open_files_limit(most + SPARE_CONNECTIONS + 1024)
    node.install(run.log_dir / "npm-bench-node.log")
    stage_copy = run.checkout(STAGE)
    work_dir = run.work_dir("fan-out")
    # gunicorn.conf.py's worker takes 1,000 connections at most: 1,000 clients would leave
    # none for the poster, whose POST would wait forever.
    server = flackapp.Server("gunicorn + eventlet", "procfile-web",
                             f"--worker-connections {most + SPARE_CONNECTIONS}")
    samples = []
    with contextlib.ExitStack() as stack:
        app = stack.enter_context(flackapp.running(
            stage_copy, server, work_dir, {"LOCAL_BROKER_FOLDER": str(work_dir / "broker")}))
        reference, reference_url = stack.enter_context(node.reference_running(work_dir))
        driver = stack.enter_context(node.driver_running(run.log_dir, run.progress))
        targets = make_targets(app, reference, reference_url, settings["users"])
        payload_bytes = len(json.dumps(targets[1].body))
        for clients in settings["clients"]:
            for target in targets:
                profiled = target.label == FLACK and clients == most
                samples.append(measure_target(run, driver, target, clients, settings,
                                              work_dir if profiled else None))
    return {"settings": {**settings, "server": "the Procfile's web: gunicorn with eventlet, "
                                              f"`--worker-connections {most + SPARE_CONNECTIONS}`",
                         "message_queue": "`LOCAL_BROKER_FOLDER` (no Redis)",
                         "stats_push_interval_seconds": "5 (v0.17's default)",
                         "heartbeat_seconds": 20, "payload_bytes": payload_bytes},
            "load_generator": f"{node.describe()}; reference: socket.io "
                              f"{node.package_version('socket.io')}",
            "runs": samples, "ratios": ratios(samples), "failures": failures(samples)}


def make_targets(app, reference, reference_url, users):
    """Log readers and a poster in to Flack, post a first message; describe both servers."""
    tokens = [flackapp.new_token(app.base_url, f"reader{n + 1}") for n in range(users)]
    bearer = {"Authorization": f"Bearer {flackapp.new_token(app.base_url, 'poster')}"}
    first = flackapp.call("POST", f"{app.base_url}/api/messages", {"source": SOURCE}, bearer)
    # The reference pushes what it is sent with a new id: Flack's message, as large as Flack's.
    template = {name: value for name, value in first.items() if name != "id"}
    worker = processes.descendants(app.process.pid)
    return [Target(FLACK, app.process.pid, app.base_url, tokens, {"source": SOURCE}, bearer,
                   worker[0] if worker else None),
            Target(NODE, reference.pid, reference_url, ["-"], template, {})]


def measure_target(run, driver, target, clients, settings, profile_dir):
    """Connect the clients, time the rounds (and profile more if asked), then disconnect."""
    opened = driver.ask({"do": "open", "kind": "socket", "base_url": target.base_url,
                         "tokens": target.tokens, "clients": clients,
                         "heartbeat_ms": 20000}, 60 + clients * 0.2)
    time.sleep(SETTLE_SECONDS)
    rss = processes.group_rss_bytes(target.pgid)
    ask_rounds(driver, target, settings["warmup_rounds"], settings)
    cpu_before = processes.group_cpu_seconds(target.pgid)
    started = time.monotonic()
    rounds = ask_rounds(driver, target, settings["rounds"], settings)
    wall = time.monotonic() - started
    server_cpu = processes.group_cpu_seconds(target.pgid) - cpu_before
    sample = {"label": target.label, "clients": clients, "connect_seconds": opened["seconds"],
              "websocket_extensions": opened["websocket_extensions"],
              "rss_mib": round(rss / 1024 / 1024, 1), "rounds": rounds,
              "server_cores": round(server_cpu / wall, 2),
              "summary": summarize(rounds)}
    run.progress(f"{target.label}, {clients} clients: {describe(sample['summary'])}")
    if profile_dir is not None:
        sample["profile"] = profiled(driver, target, settings, profile_dir)
    driver.ask({"do": "close"}, 60)
    processes.wait_until_quiet(target.pgid, QUIET_WAIT_SECONDS)
    return sample


def ask_rounds(driver, target, count, settings):
    """Have the driver post count messages, one at a time; return each round's timings."""
    answer = driver.ask({"do": "rounds", "base_url": target.base_url, "path": "/api/messages",
                         "body": target.body, "headers": target.headers, "rounds": count,
                         "pause_ms": settings["pause_seconds"] * 1000,
                         "wait_ms": ARRIVAL_WAIT_SECONDS * 1000},
                        count * (ARRIVAL_WAIT_SECONDS + settings["pause_seconds"] + 10) + 30)
    return [{name: round(value, 2) if isinstance(value, float) else value
             for name, value in one.items()} for one in answer["rounds"]]


def profiled(driver, target, settings, profile_dir):
    """Run more rounds, not counted, while py-spy samples Flack's worker; return its summary."""
    if target.worker_pid is None:
        return {"problem": "gunicorn's worker was not found"}
    with profile.recording(target.worker_pid, profile_dir, PROFILE_PARTS) as summary:
        ask_rounds(driver, target, settings["profiled_rounds"], settings)
    return summary


def summarize(rounds):
    """Sum the rounds up: p50 and p90 until all clients had the message, and what was missing."""
    complete = sorted(r["all_ms"] for r in rounds if r["all_ms"] is not None)
    first = sorted(r["first_ms"] for r in rounds if r["first_ms"] is not None)

    def pick(values, p):
        return round(percentile(values, p), 1) if values else None

    return {"rounds": len(rounds), "complete_rounds": len(complete),
            "missing": sum(r["missing"] for r in rounds),
            "all_ms": {"p50": pick(complete, 50), "p90": pick(complete, 90),
                       "max": complete[-1] if complete else None},
            "first_ms_p50": pick(first, 50),
            "post_ms_p50": pick(sorted(r["post_ms"] for r in rounds), 50),
            "loadgen_cpu_ms_p50": pick(sorted(r["loadgen_cpu_ms"] for r in rounds), 50),
            "rounds_with_stats_push": sum(1 for r in rounds if r["stats_pushes"])}


def describe(summary):
    """Say in a few words how the rounds went, for the progress line."""
    every = summary["all_ms"]
    if every["p50"] is None:
        return f"no round reached every client; {summary['missing']} deliveries missing"
    return (f"all had it after p50 {every['p50']:.0f} ms, p90 {every['p90']:.0f} ms; "
            f"{summary['missing']} missing")


def by_clients(samples):
    """Return {clients: {label: sample}}."""
    found = {}
    for sample in samples:
        found.setdefault(sample["clients"], {})[sample["label"]] = sample
    return found


def ratios(samples):
    """Return Flack's time over Node's, at p50 and p90, for each number of clients."""
    found = []
    for clients, pair in by_clients(samples).items():
        flack, reference = pair[FLACK]["summary"]["all_ms"], pair[NODE]["summary"]["all_ms"]
        found.append({"clients": clients, **{
            p: round(flack[p] / reference[p], 2) if flack[p] and reference[p] else None
            for p in ("p50", "p90")}})
    return found


def failures(samples):
    """List the servers and client counts where a message did not reach every client."""
    return [f"{s['label']}, {s['clients']} clients: {s['summary']['missing']} deliveries "
            f"missing in {s['summary']['rounds'] - s['summary']['complete_rounds']} rounds"
            for s in samples if s["summary"]["missing"]]


def draw(results, path):
    """Chart p50 and p90 until every client had the message, Flack and Node side by side."""
    pairs = by_clients(results["runs"])
    if any(pair[label]["summary"]["all_ms"]["p50"] is None
           for pair in pairs.values() for label in (FLACK, NODE)):
        return  # some count of clients never got a message to all: the table says so
    counts = sorted(pairs)
    labels = [f"{clients:,} clients" for clients in counts]
    ratio = {r["clients"]: r for r in results["ratios"]}

    def panel(p):
        return chart.Panel(
            f"{p}: until every client had it", "milliseconds",
            [chart.Series(label, [pairs[n][label]["summary"]["all_ms"][p] for n in counts])
             for label in (FLACK, NODE)],
            [f"{ratio[n][p]:.1f}×" for n in counts])

    settings = results["settings"]
    chart.bar_chart(path, "One message to every connected client", labels,
                    [panel("p50"), panel("p90")],
                    note=f"{settings['rounds']} rounds per bar, one message at a time; "
                         "above each pair: Flack's time over Node's")


def table(results):
    """Return, for each number of clients, both servers' times and Flack's ratio to Node's."""
    rows = ["| Clients | Flack p50 / p90 (ms) | Node p50 / p90 (ms) | Flack ÷ Node p50 / p90 "
            "| Flack: first client p50 (ms) | Load generator CPU per round, p50 (ms) "
            "| Missing |",
            "|--:|--:|--:|--:|--:|--:|--:|"]
    ratio = {r["clients"]: r for r in results["ratios"]}
    for clients, pair in sorted(by_clients(results["runs"]).items()):
        flack, reference = pair[FLACK]["summary"], pair[NODE]["summary"]
        rows.append(f"| {clients:,} | {times(flack)} | {times(reference)} "
                    f"| {ratio_text(ratio[clients])} | {number(flack['first_ms_p50'])} "
                    f"| {number(flack['loadgen_cpu_ms_p50'])} / "
                    f"{number(reference['loadgen_cpu_ms_p50'])} "
                    f"| {flack['missing']} / {reference['missing']} |")
    return "\n".join(rows) + "\n"


def number(value):
    """Format milliseconds, or a dash for none."""
    return "–" if value is None else f"{value:.0f}"


def times(summary):
    """Format the p50 and p90 until all had it."""
    return f"{number(summary['all_ms']['p50'])} / {number(summary['all_ms']['p90'])}"


def ratio_text(ratio):
    """Format the ratios at p50 and p90."""
    return " / ".join("–" if ratio[p] is None else f"{ratio[p]:.1f}×" for p in ("p50", "p90"))


def reading(results):
    """Say in numbers how far Flack is from Node at each N, and what limits Flack, from py-spy."""
    pairs = by_clients(results["runs"])
    ratio = {r["clients"]: r for r in results["ratios"]}
    lines = []
    for clients in sorted(pairs):
        flack, reference = pairs[clients][FLACK], pairs[clients][NODE]
        f_all, n_all = flack["summary"]["all_ms"], reference["summary"]["all_ms"]
        if f_all["p50"] is None or n_all["p50"] is None:
            lines.append(f"- {clients:,} clients: no comparison, since a message did not reach "
                         "every client.")
            continue
        lines.append(
            f"- {clients:,} clients: every client had the message after {f_all['p50']:.0f} ms "
            f"from Flack (p50; p90 {f_all['p90']:.0f} ms) and {n_all['p50']:.0f} ms from Node "
            f"(p90 {n_all['p90']:.0f} ms): Flack took {ratio[clients]['p50']:.1f}× as long. "
            f"Flack's first client had it after {flack['summary']['first_ms_p50']:.0f} ms; "
            f"Flack's process group kept {flack['server_cores']:.2f} cores busy during the "
            f"rounds, and Node's {reference['server_cores']:.2f}. Flack held "
            f"{flack['rss_mib']:.0f} MiB with the clients connected, Node "
            f"{reference['rss_mib']:.0f} MiB.")
    most = max(pairs)
    goal = ratio.get(TARGET_CLIENTS, {}).get("p50")
    if goal is not None:
        verdict = "meets" if goal <= TARGET_RATIO else "misses"
        lines.append(f"- At {TARGET_CLIENTS:,} clients Flack {verdict} the goal of being within "
                     f"{TARGET_RATIO:g}× of Node's time (p50: {goal:.1f}×).")
    lines.append(
        f"- The load generator itself needed "
        f"{pairs[most][NODE]['summary']['loadgen_cpu_ms_p50']:.0f} ms of CPU a round to take "
        f"in {most:,} messages: no time below that can be measured here, so Node's times, and "
        f"the ratios, are bounded by it.")
    stats = pairs[most][FLACK]["summary"]["rounds_with_stats_push"]
    lines.append(f"- {stats} of Flack's {pairs[most][FLACK]['summary']['rounds']} rounds at "
                 f"{most:,} clients overlapped a push of the statistics to every client "
                 "(every 5 s), and each client's heartbeat (every 20 s) is a database write.")
    compression = compression_reading(pairs[most])
    if compression:
        lines.append(compression)
    lines.append(profile_reading(pairs[most][FLACK].get("profile"), most))
    return "\n".join(lines) + "\n"


def profile_reading(summary, clients):
    """Say where Flack's worker spent its time during the profiled rounds."""
    if not summary:
        return "- Flack was not profiled."
    if "problem" in summary or not summary.get("samples"):
        return f"- Flack could not be profiled: {summary.get('problem', 'py-spy took no samples')}."
    parts = "; ".join(f"{part['share']:.0%} in {part['name']}" for part in summary["parts"])
    functions = ", ".join(f"`{item['name']}` {item['share']:.0%}"
                          for item in summary["own_by_function"][:3])
    return (f"- Where Flack's time goes at {clients:,} clients: py-spy sampled its worker through "
            f"more rounds, not counted above. Of {summary['samples']} samples of work, "
            f"{parts}. The functions with the most time of their own: {functions}.")


def compression_reading(pair):
    """Say which server compressed its WebSocket messages, as the clients had offered."""
    agreed = {label: bool(sample["websocket_extensions"]) and
              "permessage-deflate" in sample["websocket_extensions"]
              for label, sample in pair.items()}
    if agreed[FLACK] == agreed[NODE]:
        return None
    which, other = (FLACK, NODE) if agreed[FLACK] else (NODE, FLACK)
    return (f"- The clients offered to compress their WebSocket messages (permessage-deflate, as "
            f"browsers do): {which} accepted, so it compressed each push once for each client; "
            f"{other} declined.")


SCENARIO = Scenario(
    name="fan-out", number=6,
    title="Fan-out against a Node.js Socket.IO reference",
    question="How long one message takes to reach every one of 100, 500 and 1,000 connected "
             "clients (p50 and p90), from Flack at v0.17 in one process and from a minimal "
             "Node.js socket.io server, and Flack's time over Node's.",
    stages=(STAGE,), also_needs="Node.js and npm", needs_wrk=False,
    measure=measure, chart=draw, table=table, reading=reading)
