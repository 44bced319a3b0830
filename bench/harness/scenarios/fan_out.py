"""Scenario 6: one message to N Socket.IO clients, from Flack (v0.17) and from Node.js socket.io."""
import contextlib
import json
import time
from dataclasses import dataclass

from .. import chart, flackapp, node, processes, profile
from ..numbers import percentile
from . import Scenario

STAGE = "v0.17"
FLACK, FLACK_DEFLATE, NODE = "Flack v0.17", "Flack v0.17, compressed", "Node.js socket.io"
FLACKS = (FLACK, FLACK_DEFLATE)
FULL = {"clients": [100, 500, 1000], "rounds": 20, "warmup_rounds": 3, "profiled_rounds": 10,
        "users": 10, "pause_seconds": 0.2}
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
    "compressing when agreed, and writing it)":
        "Socket._websocket_handler.<locals>.writer (engineio/socket.py)",
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
    compress: bool  # whether the clients offer to compress messages, as browsers do
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
    server = flackapp.Server("gunicorn + eventlet", "procfile-web")
    samples = []
    with contextlib.ExitStack() as stack:
        app = stack.enter_context(flackapp.running(
            stage_copy, server, work_dir, {"LOCAL_BROKER_FOLDER": str(work_dir / "broker")}))
        reference, reference_url = stack.enter_context(node.reference_running(work_dir))
        driver = stack.enter_context(node.driver_running(run.log_dir, run.progress))
        targets = make_targets(app, reference, reference_url, settings["users"])
        payload_bytes = len(json.dumps(targets[-1].body))
        for clients in settings["clients"]:
            for number, target in enumerate(targets):
                profile_dir = None
                if target.label in FLACKS and clients == most:
                    profile_dir = run.work_dir(f"fan-out-profile-{number}")
                samples.append(measure_target(run, driver, target, clients, settings,
                                              profile_dir))
    return {"settings": {**settings, "server": "the Procfile's web: gunicorn with eventlet",
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
    workers = processes.descendants(app.process.pid)
    worker = workers[0] if workers else None
    # The reference declines compression (socket.io's default): one run of it will do, whose
    # clients offer it, so that the results show it declined.
    return [Target(FLACK, app.process.pid, app.base_url, tokens, {"source": SOURCE}, bearer,
                   False, worker),
            Target(FLACK_DEFLATE, app.process.pid, app.base_url, tokens, {"source": SOURCE},
                   bearer, True, worker),
            Target(NODE, reference.pid, reference_url, ["-"], template, {}, True)]


def measure_target(run, driver, target, clients, settings, profile_dir):
    """Connect the clients, time the rounds (and profile more if asked), then disconnect."""
    opened = driver.ask({"do": "open", "kind": "socket", "base_url": target.base_url,
                         "tokens": target.tokens, "clients": clients,
                         "compress": target.compress, "heartbeat_ms": 20000},
                        60 + clients * 0.2)
    time.sleep(SETTLE_SECONDS)
    rss = processes.group_rss_bytes(target.pgid)
    ask_rounds(driver, target, settings["warmup_rounds"], settings["pause_seconds"])
    cpu_before = processes.group_cpu_seconds(target.pgid)
    started = time.monotonic()
    rounds = ask_rounds(driver, target, settings["rounds"], settings["pause_seconds"])
    wall = time.monotonic() - started
    server_cpu = processes.group_cpu_seconds(target.pgid) - cpu_before
    sample = {"label": target.label, "clients": clients, "connect_seconds": opened["seconds"],
              "compression_offered": target.compress,
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


def ask_rounds(driver, target, count, pause_seconds):
    """Have the driver post count messages, one at a time; return each round's timings."""
    answer = driver.ask({"do": "rounds", "base_url": target.base_url, "path": "/api/messages",
                         "body": target.body, "headers": target.headers, "rounds": count,
                         "pause_ms": pause_seconds * 1000,
                         "wait_ms": ARRIVAL_WAIT_SECONDS * 1000},
                        count * (ARRIVAL_WAIT_SECONDS + pause_seconds + 10) + 30)
    return [{name: round(value, 2) if isinstance(value, float) else value
             for name, value in one.items()} for one in answer["rounds"]]


def profiled(driver, target, settings, profile_dir):
    """Run more rounds, not counted, while py-spy samples Flack's worker; return its summary."""
    if target.worker_pid is None:
        return {"problem": "gunicorn's worker was not found"}
    with profile.recording(target.worker_pid, profile_dir, PROFILE_PARTS) as summary:
        # Back to back, so that the samples are of broadcasts, and of what else runs meanwhile.
        ask_rounds(driver, target, settings["profiled_rounds"], 0)
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
    """Return {clients: {server's label: sample}}."""
    found = {}
    for sample in samples:
        found.setdefault(sample["clients"], {})[sample["label"]] = sample
    return found


def ratios(samples):
    """Return each Flack's time over Node's, at p50 and p90, for each number of clients."""
    found = []
    for clients, group in by_clients(samples).items():
        reference = group[NODE]["summary"]["all_ms"]
        for label in FLACKS:
            flack = group[label]["summary"]["all_ms"]
            found.append({"clients": clients, "label": label, **{
                p: round(flack[p] / reference[p], 2) if flack[p] and reference[p] else None
                for p in ("p50", "p90")}})
    return found


def ratio_of(results, clients, label, p="p50"):
    """Return one Flack's time over Node's at a number of clients, or None."""
    return next((r[p] for r in results["ratios"]
                 if r["clients"] == clients and r["label"] == label), None)


def failures(samples):
    """List the servers and client counts where a message did not reach every client."""
    return [f"{s['label']}, {s['clients']} clients: {s['summary']['missing']} deliveries "
            f"missing in {s['summary']['rounds'] - s['summary']['complete_rounds']} rounds"
            for s in samples if s["summary"]["missing"]]


def draw(results, path):
    """Chart p50 and p90 until every client had the message, for each server side by side."""
    groups = by_clients(results["runs"])
    labels = (*FLACKS, NODE)
    if any(group[label]["summary"]["all_ms"]["p50"] is None
           for group in groups.values() for label in labels):
        return  # some count of clients never got a message to all: the table says so
    counts = sorted(groups)

    def panel(p):
        notes = [" / ".join(f"{ratio_of(results, n, label, p):.1f}×" for label in FLACKS)
                 for n in counts]
        return chart.Panel(
            f"{p}: until every client had it", "milliseconds",
            [chart.Series(label, [groups[n][label]["summary"]["all_ms"][p] for n in counts])
             for label in labels], notes)

    settings = results["settings"]
    chart.bar_chart(path, "One message to every connected client",
                    [f"{clients:,} clients" for clients in counts],
                    [panel("p50"), panel("p90")],
                    note=f"{settings['rounds']} rounds per bar, one message at a time; above "
                         "each group: Flack's time over Node's, uncompressed / compressed")


def table(results):
    """Return, for each number of clients, each server's times and Flack's ratios to Node's."""
    rows = ["| Clients | Flack p50 / p90 (ms) | Flack, compressed p50 / p90 (ms) "
            "| Node p50 / p90 (ms) | ÷ Node, p50: Flack / compressed "
            "| First client, p50 (ms): Flack / compressed / Node "
            "| Load generator CPU a round, p50 (ms): Flack / compressed / Node | Missing |",
            "|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for clients, group in sorted(by_clients(results["runs"]).items()):
        summaries = [group[label]["summary"] for label in (*FLACKS, NODE)]
        ratio = " / ".join(multiple(ratio_of(results, clients, label)) for label in FLACKS)
        rows.append(f"| {clients:,} | {' | '.join(times(s) for s in summaries)} | {ratio} "
                    f"| {' / '.join(number(s['first_ms_p50']) for s in summaries)} "
                    f"| {' / '.join(number(s['loadgen_cpu_ms_p50']) for s in summaries)} "
                    f"| {sum(s['missing'] for s in summaries)} |")
    return "\n".join(rows) + "\n"


def number(value):
    """Format milliseconds, or a dash for none."""
    return "–" if value is None else f"{value:.0f}"


def multiple(value):
    """Format a ratio, or a dash for none."""
    return "–" if value is None else f"{value:.1f}×"


def times(summary):
    """Format the p50 and p90 until all had it."""
    return f"{number(summary['all_ms']['p50'])} / {number(summary['all_ms']['p90'])}"


def reading(results):
    """Say in numbers how far Flack is from Node at each N, and what limits Flack, from py-spy."""
    groups = by_clients(results["runs"])
    lines = [clients_reading(results, clients, groups[clients]) for clients in sorted(groups)]
    lines.append(goal_reading(results))
    most = max(groups)
    group = groups[most]
    lines.append(
        f"- To take in {most:,} messages, the load generator needed "
        f"{number(group[FLACK]['summary']['loadgen_cpu_ms_p50'])}, "
        f"{number(group[FLACK_DEFLATE]['summary']['loadgen_cpu_ms_p50'])} and "
        f"{number(group[NODE]['summary']['loadgen_cpu_ms_p50'])} ms of CPU a round (p50; "
        "Flack, compressed, Node). No time shorter than that can be measured here: where "
        "Node's time comes close to it, the servers' own difference is larger than the "
        "ratio says. Compressed messages cost the load generator the most, since it inflates "
        "every copy, where browsers would each inflate their own: that time is in the "
        "compressed rounds too.")
    stats = sum(group[label]["summary"]["rounds_with_stats_push"] for label in FLACKS)
    rounds = sum(group[label]["summary"]["rounds"] for label in FLACKS)
    lines.append(f"- {stats} of Flack's {rounds} rounds at {most:,} clients met a push of the "
                 "statistics to every client (every 5 s), and each client's heartbeat (every "
                 "20 s) is a write to the database.")
    compression = compression_reading(group)
    if compression:
        lines.append(compression)
    for label in FLACKS:
        lines.append(profile_reading(label, group[label].get("profile"), most))
    return "\n".join(line for line in lines if line) + "\n"


def clients_reading(results, clients, group):
    """Say in numbers how each server did at one number of clients."""
    summaries = {label: group[label]["summary"] for label in (*FLACKS, NODE)}
    if any(s["all_ms"]["p50"] is None for s in summaries.values()):
        return (f"- {clients:,} clients: no comparison, since a message did not reach every "
                "client.")
    every = {label: s["all_ms"] for label, s in summaries.items()}
    return (
        f"- {clients:,} clients: every client had the message after {every[FLACK]['p50']:.0f} "
        f"ms from Flack (p50; p90 {every[FLACK]['p90']:.0f} ms), "
        f"{every[FLACK_DEFLATE]['p50']:.0f} ms from Flack compressing it (p90 "
        f"{every[FLACK_DEFLATE]['p90']:.0f} ms) and {every[NODE]['p50']:.0f} ms from Node (p90 "
        f"{every[NODE]['p90']:.0f} ms): {multiple(ratio_of(results, clients, FLACK))} and "
        f"{multiple(ratio_of(results, clients, FLACK_DEFLATE))} Node's time. The first client "
        f"had it after {summaries[FLACK]['first_ms_p50']:.0f}, "
        f"{summaries[FLACK_DEFLATE]['first_ms_p50']:.0f} and "
        f"{summaries[NODE]['first_ms_p50']:.0f} ms. During the rounds the servers kept "
        f"{group[FLACK]['server_cores']:.2f}, {group[FLACK_DEFLATE]['server_cores']:.2f} and "
        f"{group[NODE]['server_cores']:.2f} cores busy, and held {group[FLACK]['rss_mib']:.0f}, "
        f"{group[FLACK_DEFLATE]['rss_mib']:.0f} and {group[NODE]['rss_mib']:.0f} MiB of "
        "memory with the clients connected.")


def goal_reading(results):
    """Say whether Flack is within the goal's ratio of Node at the goal's number of clients."""
    found = {label: ratio_of(results, TARGET_CLIENTS, label) for label in FLACKS}
    if None in found.values():
        return None
    within = [label for label, value in found.items() if value <= TARGET_RATIO]
    verdict = "both within it" if len(within) == 2 else \
        f"only {within[0]} within it" if within else "neither within it"
    return (f"- The goal: Flack within {TARGET_RATIO:g}× of Node's time at {TARGET_CLIENTS:,} "
            f"clients. It took {multiple(found[FLACK])} uncompressed and "
            f"{multiple(found[FLACK_DEFLATE])} compressed (p50): {verdict}.")


def compression_reading(group):
    """Say which server compressed its WebSocket messages when the clients offered it."""
    agreed = {label: "permessage-deflate" in (group[label]["websocket_extensions"] or "")
              for label in (FLACK_DEFLATE, NODE)}
    return (f"- When the clients offered to compress messages (permessage-deflate, as browsers "
            f"do), Flack {'accepted' if agreed[FLACK_DEFLATE] else 'declined'}: eventlet's "
            f"WebSocket then compresses each push once for each client. Node "
            f"{'accepted' if agreed[NODE] else 'declined'}, as socket.io does by default.")


def profile_reading(label, summary, clients):
    """Say where one Flack's worker spent its time during its profiled rounds."""
    if not summary:
        return None
    if "problem" in summary or not summary.get("samples"):
        return (f"- {label} could not be profiled: "
                f"{summary.get('problem', 'py-spy took no samples')}.")
    parts = "; ".join(f"{part['share']:.0%} in {part['name']}" for part in summary["parts"])
    functions = ", ".join(f"`{item['name']}` {item['share']:.0%}"
                          for item in summary["own_by_function"][:3])
    return (f"- Where the time goes, {label}, {clients:,} clients: py-spy sampled the worker "
            f"through {summary['samples']} moments of work in more rounds, back to back and not "
            f"counted above: "
            f"{parts}. The functions with the most time of their own: {functions}.")


SCENARIO = Scenario(
    name="fan-out", number=6,
    title="Fan-out against a Node.js Socket.IO reference",
    question="How long one message takes to reach every one of 100, 500 and 1,000 connected "
             "clients (p50 and p90), from Flack at v0.17 in one process, with and without "
             "compressing its WebSocket messages, and from a minimal Node.js socket.io "
             "server; Flack's time over Node's; and where Flack's time goes.",
    stages=(STAGE,), also_needs="Node.js and npm", needs_wrk=False,
    measure=measure, chart=draw, table=table, reading=reading)
