"""Scenario 6: one message to N Socket.IO clients, from Flack (v0.17, v0.19) and Node.js.

Each server is measured in turn, several times (repetitions), in the opposite order at
each repetition, so that a slow minute of the machine falls on all of them alike; the
ratio to Node's time is taken in each repetition as well as over all rounds together, and
its lowest and highest say how much one run can be trusted.
"""
import contextlib
import json
import time
from dataclasses import dataclass
from statistics import median

from .. import chart, flackapp, node, processes, profile
from ..numbers import percentile
from . import Scenario
from .presence_writes import heartbeat_ms

STAGES = ("v0.17", "v0.19")
NODE = "Node.js socket.io"
COMPRESSED = ", compressed"


def flack_label(version, compress):
    """Name one Flack server as the table and chart do: "Flack v0.17, compressed"."""
    return f"Flack {version}{COMPRESSED if compress else ''}"


FLACKS = tuple(flack_label(version, compress) for version in STAGES
               for compress in (False, True))
FULL = {"clients": [100, 500, 1000], "repetitions": 4, "rounds": 10, "warmup_rounds": 3,
        "profiled_rounds": 10, "users": 10, "pause_seconds": 0.2}
SMOKE = {"clients": [10], "repetitions": 2, "rounds": 2, "warmup_rounds": 1,
         "profiled_rounds": 2, "users": 2, "pause_seconds": 0.1}
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
    "the presence refreshes (v0.19: a row a process)": "refresh_presence_forever "
                                                       "(flack/sockets.py)",
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
    heartbeat_ms: int = 0  # how often the clients say still_here, as the stage's page does


def measure(run):
    """Start the Flacks and the reference side by side; for each N, connect N clients to each."""
    settings = run.settings(FULL, SMOKE)
    most = max(settings["clients"])
    # The load generator holds every connection, and each server holds its own.
    processes.raise_open_files_limit(most + SPARE_CONNECTIONS + 1024)
    node.install(run.log_dir / "npm-bench-node.log")
    server = flackapp.Server("gunicorn + eventlet", "procfile-web")
    samples = []
    with contextlib.ExitStack() as stack:
        targets = []
        for version in STAGES:
            stage_copy = run.checkout(version)
            work_dir = run.work_dir(f"fan-out-{version}")
            app = stack.enter_context(flackapp.running(
                stage_copy, server, work_dir, {"LOCAL_BROKER_FOLDER": str(work_dir / "broker")}))
            found, first = flack_targets(version, app, settings["users"],
                                         heartbeat_ms(stage_copy.tree))
            targets += found
        reference, reference_url = stack.enter_context(
            node.reference_running(run.work_dir("fan-out")))
        driver = stack.enter_context(node.driver_running(run.log_dir, run.progress))
        targets.append(reference_target(first, reference, reference_url))
        payload_bytes = len(json.dumps(targets[-1].body))
        for clients in settings["clients"]:
            for repetition in range(settings["repetitions"]):
                for target in targets if repetition % 2 == 0 else targets[::-1]:
                    profile_dir = None
                    if target.label in FLACKS and clients == most and repetition == 0:
                        profile_dir = run.work_dir(f"fan-out-profile-{targets.index(target)}")
                    samples.append(measure_target(run, driver, target, clients, repetition,
                                                  settings, profile_dir))
    return {"settings": {**settings, "server": "the Procfile's web: gunicorn with eventlet",
                         "message_queue": "`LOCAL_BROKER_FOLDER` (no Redis)",
                         "stats_push_interval_seconds": "5 (the stages' default)",
                         "heartbeat_seconds": {t.label: t.heartbeat_ms / 1000
                                               for t in targets if t.label in FLACKS},
                         "payload_bytes": payload_bytes},
            "load_generator": f"{node.describe()}; reference: socket.io "
                              f"{node.package_version('socket.io')}",
            "runs": samples, "ratios": ratios(samples), "failures": failures(samples)}


def flack_targets(version, app, users, beat_ms):
    """Log readers and a poster in to one Flack, post a first message; return two Targets and it.

    Its clients say still_here every beat_ms as the stage's page does (v0.17), or
    nothing (v0.19, whose page sends no heartbeat).
    """
    tokens = [flackapp.new_token(app.base_url, f"reader{n + 1}") for n in range(users)]
    bearer = {"Authorization": f"Bearer {flackapp.new_token(app.base_url, 'poster')}"}
    first = flackapp.call("POST", f"{app.base_url}/api/messages", {"source": SOURCE}, bearer)
    workers = processes.descendants(app.process.pid)
    worker = workers[0] if workers else None
    return [Target(flack_label(version, compress), app.process.pid, app.base_url, tokens,
                   {"source": SOURCE}, bearer, compress, worker, beat_ms)
            for compress in (False, True)], first


def reference_target(first, reference, reference_url):
    """Describe the reference, which pushes what it is sent: a message of Flack's, with a new id.

    It declines compression (socket.io's default): one run of it will do, whose clients
    offer it, so that the results show it declined.
    """
    template = {name: value for name, value in first.items() if name != "id"}
    return Target(NODE, reference.pid, reference_url, ["-"], template, {}, True)


def measure_target(run, driver, target, clients, repetition, settings, profile_dir):
    """Connect the clients, time the rounds (and profile more if asked), then disconnect."""
    opened = driver.ask({"do": "open", "kind": "socket", "base_url": target.base_url,
                         "tokens": target.tokens, "clients": clients,
                         "compress": target.compress, "heartbeat_ms": target.heartbeat_ms},
                        60 + clients * 0.2)
    time.sleep(SETTLE_SECONDS)
    rss = processes.group_rss_bytes(target.pgid)
    ask_rounds(driver, target, settings["warmup_rounds"], settings["pause_seconds"])
    cpu_before = processes.group_cpu_seconds(target.pgid)
    started = time.monotonic()
    rounds = ask_rounds(driver, target, settings["rounds"], settings["pause_seconds"])
    wall = time.monotonic() - started
    server_cpu = processes.group_cpu_seconds(target.pgid) - cpu_before
    sample = {"label": target.label, "clients": clients, "repetition": repetition,
              "connect_seconds": opened["seconds"],
              "compression_offered": target.compress,
              "websocket_extensions": opened["websocket_extensions"],
              "rss_mib": round(rss / 1024 / 1024, 1), "rounds": rounds,
              "server_cores": round(server_cpu / wall, 2),
              "summary": summarize(rounds)}
    run.progress(f"{target.label}, {clients} clients, repetition {repetition + 1}: "
                 f"{describe(sample['summary'])}")
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
    """Return {clients: {server's label: its repetitions pooled into one sample}}.

    The pooled sample has every repetition's rounds in one summary, the median of the
    cores busy, the most memory, the first profile, and each repetition's p50 (p50s).
    """
    found = {}
    for sample in samples:
        found.setdefault(sample["clients"], {}).setdefault(sample["label"], []).append(sample)
    return {clients: {label: pooled(runs) for label, runs in group.items()}
            for clients, group in found.items()}


def pooled(runs):
    """Return one sample made of a server's repetitions at one number of clients."""
    runs = sorted(runs, key=lambda run: run.get("repetition", 0))
    rounds = [one for run in runs for one in run["rounds"]]
    return {**runs[0], "rounds": rounds, "summary": summarize(rounds),
            "repetitions": len(runs),
            "p50s": [run["summary"]["all_ms"]["p50"] for run in runs],
            "server_cores": round(median(run["server_cores"] for run in runs), 2),
            "rss_mib": max(run["rss_mib"] for run in runs),
            "profile": next((run["profile"] for run in runs if "profile" in run), None)}


def ratio(numerator, denominator):
    """Return numerator / denominator to two places, or None if either is missing."""
    return round(numerator / denominator, 2) if numerator and denominator else None


def ratios(samples):
    """Return each Flack's time over Node's, for each number of clients.

    p50_each is the ratio of the two p50s within each repetition, where the two ran
    minutes apart at most, and p50 their median; p90 is over every round together.
    """
    found = []
    for clients, group in by_clients(samples).items():
        reference = group[NODE]
        for label in FLACKS:
            flack = group[label]
            each = [ratio(mine, theirs)
                    for mine, theirs in zip(flack["p50s"], reference["p50s"], strict=True)]
            known = [value for value in each if value]
            found.append({"clients": clients, "label": label,
                          "p50": round(median(known), 2) if known else None,
                          "p90": ratio(flack["summary"]["all_ms"]["p90"],
                                       reference["summary"]["all_ms"]["p90"]),
                          "p50_each": each})
    return found


def ratio_of(results, clients, label, p="p50"):
    """Return one Flack's time over Node's at a number of clients, or None."""
    return next((r.get(p) for r in results["ratios"]
                 if r["clients"] == clients and r["label"] == label), None)


def ratio_range(results, clients, label):
    """Return the lowest and highest of a Flack's ratios to Node in single repetitions."""
    each = [value for value in ratio_of(results, clients, label, "p50_each") or [] if value]
    return (min(each), max(each)) if each else (None, None)


def multiple_with_range(results, clients, label):
    """Format a Flack's median p50 ratio with its repetitions' range: "2.9× (2.6–3.1×)"."""
    low, high = ratio_range(results, clients, label)
    spread = f" ({low:.1f}–{high:.1f}×)" if low is not None and high != low else ""
    return multiple(ratio_of(results, clients, label)) + spread


def failures(samples):
    """List the servers and client counts where a message did not reach every client."""
    return [f"{s['label']}, {s['clients']} clients: {s['summary']['missing']} deliveries "
            f"missing in {s['summary']['rounds'] - s['summary']['complete_rounds']} rounds"
            for s in samples if s["summary"]["missing"]]


def flacks_of(results):
    """Return the Flack servers the results have, in the order measured."""
    found = []
    for sample in results["runs"]:
        if sample["label"] != NODE and sample["label"] not in found:
            found.append(sample["label"])
    return found


def draw(results, path):
    """Chart p50 and p90 until every client had the message, for each server side by side."""
    groups = by_clients(results["runs"])
    flacks = flacks_of(results)
    labels = (*flacks, NODE)
    if any(group[label]["summary"]["all_ms"]["p50"] is None
           for group in groups.values() for label in labels):
        return  # some count of clients never got a message to all: the table says so
    counts = sorted(groups)
    plain = [label for label in flacks if not label.endswith(COMPRESSED)]

    def series(label, p):
        """Return one server's bars, with its repetitions' lowest and highest p50 for p50."""
        values = [groups[n][label]["summary"]["all_ms"][p] for n in counts]
        if p != "p50":
            return chart.Series(label, values)
        each = [[v for v in groups[n][label]["p50s"] if v is not None] for n in counts]
        return chart.Series(label, values, [min(v) for v in each], [max(v) for v in each])

    def panel(p):
        notes = ["\n".join(f"{label.removeprefix('Flack ')}: "
                           f"{ratio_of(results, n, label, p):.1f}×" for label in plain)
                 for n in counts]
        return chart.Panel(f"{p}: until every client had it", "milliseconds",
                           [series(label, p) for label in labels], notes)

    settings = results["settings"]
    repetitions = settings.get("repetitions", 1)
    chart.bar_chart(path, "One message to every connected client",
                    [f"{clients:,} clients" for clients in counts],
                    [panel("p50"), panel("p90")],
                    note=f"{repetitions} × {settings['rounds']} rounds per bar, one message at a "
                         "time; whiskers: the lowest and highest repetition's p50; above each "
                         "group: each stage's time over Node's, uncompressed",
                    panel_width=5.5)


def table(results):
    """Return, for each number of clients and server, its times and its ratio to Node's."""
    rows = ["| Clients | Server | Until all had it, p50 / p90 (ms) "
            "| ÷ Node, p50: median (range) of the repetitions / p90 "
            "| First client, p50 (ms) | Load generator CPU a round, p50 (ms) "
            "| Server cores busy | Missing |",
            "|--:|---|--:|--:|--:|--:|--:|--:|"]
    for clients, group in sorted(by_clients(results["runs"]).items()):
        for label in (*flacks_of(results), NODE):
            sample = group.get(label)
            if sample is None:
                continue
            s = sample["summary"]
            ratio = "" if label == NODE else (
                f"{multiple_with_range(results, clients, label)} / "
                f"{multiple(ratio_of(results, clients, label, 'p90'))}")
            rows.append(f"| {clients:,} | {label} | {times(s)} | {ratio} "
                        f"| {number(s['first_ms_p50'])} | {number(s['loadgen_cpu_ms_p50'])} "
                        f"| {sample['server_cores']:.2f} | {s['missing']} |")
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
    flacks = flacks_of(results)
    lines = [clients_reading(results, clients, groups[clients], flacks)
             for clients in sorted(groups)]
    lines.append(goal_reading(results, flacks))
    lines.append(variation_reading(results, flacks))
    most = max(groups)
    group = groups[most]
    cpu = ", ".join(f"{number(group[label]['summary']['loadgen_cpu_ms_p50'])} ({label})"
                    for label in (*flacks, NODE))
    lines.append(
        f"- To take in {most:,} messages, the load generator needed {cpu} ms of CPU a round "
        "(p50). No time shorter than that can be measured here: where "
        "Node's time comes close to it, the servers' own difference is larger than the "
        "ratio says. Compressed messages cost the load generator the most, since it inflates "
        "every copy, where browsers would each inflate their own: that time is in the "
        "compressed rounds too.")
    for label in flacks:
        heartbeat = results["settings"]["heartbeat_seconds"]
        beat = heartbeat.get(label) if isinstance(heartbeat, dict) else heartbeat
        summary = group[label]["summary"]
        beats = (f"each client's heartbeat (every {beat:g} s, as the page sends it) is a "
                 "write to the database" if beat else "the clients send no heartbeat, as "
                 "the page sends none")
        lines.append(f"- {label}: {summary['rounds_with_stats_push']} of {summary['rounds']} "
                     f"rounds at {most:,} clients met a push of the statistics to every "
                     f"client (every 5 s); {beats}.")
    compression = compression_reading(group, flacks)
    if compression:
        lines.append(compression)
    for label in flacks:
        lines.append(profile_reading(label, group[label].get("profile"), most))
    return "\n".join(line for line in lines if line) + "\n"


def clients_reading(results, clients, group, flacks):
    """Say in numbers how each server did at one number of clients."""
    labels = (*flacks, NODE)
    summaries = {label: group[label]["summary"] for label in labels}
    if any(s["all_ms"]["p50"] is None for s in summaries.values()):
        return (f"- {clients:,} clients: no comparison, since a message did not reach every "
                "client.")
    each = "; ".join(
        f"{label} {summaries[label]['all_ms']['p50']:.0f} ms (p90 "
        f"{summaries[label]['all_ms']['p90']:.0f}"
        + ("" if label == NODE
           else f", {multiple_with_range(results, clients, label)} Node's")
        + f"; first client {summaries[label]['first_ms_p50']:.0f} ms; "
          f"{group[label]['server_cores']:.2f} cores busy, {group[label]['rss_mib']:.0f} MiB)"
        for label in labels)
    return f"- {clients:,} clients, until every client had the message (p50): {each}."


def goal_reading(results, flacks):
    """Say whether each Flack is within the goal's ratio of Node at the goal's clients."""
    found = {label: ratio_of(results, TARGET_CLIENTS, label) for label in flacks}
    if not found or None in found.values():
        return None
    each = ", ".join(f"{label} {multiple_with_range(results, TARGET_CLIENTS, label)}"
                     + (" (within)" if value <= TARGET_RATIO else "")
                     for label, value in found.items())
    return (f"- The goal: Flack within {TARGET_RATIO:g}× of Node's time at {TARGET_CLIENTS:,} "
            f"clients (p50): {each}.")


def variation_reading(results, flacks):
    """Say how far one repetition's ratio to Node strays, for the servers uncompressed."""
    repetitions = results["settings"].get("repetitions", 1)
    if repetitions < 2:
        return None
    parts = []
    for label in (label for label in flacks if not label.endswith(COMPRESSED)):
        for clients in sorted(by_clients(results["runs"])):
            low, high = ratio_range(results, clients, label)
            if low is not None:
                parts.append(f"{label} at {clients:,} clients {low:.1f}× to {high:.1f}×")
    return (f"- How much one run varies: each server was measured {repetitions} times, in turn, "
            "the order reversed at each repetition; one repetition's ratio to Node (p50) went "
            f"from {'; '.join(parts)}. A single run of this scenario tells a ratio to within "
            "that range, no better.")


def compression_reading(group, flacks):
    """Say which server compressed its WebSocket messages when the clients offered it."""
    agreed = {label: "permessage-deflate" in (group[label]["websocket_extensions"] or "")
              for label in (*flacks, NODE) if group[label]["compression_offered"]}
    said = ", ".join(f"{label.removesuffix(COMPRESSED)} {'accepted' if accepted else 'declined'}"
                     for label, accepted in agreed.items())
    return (f"- When the clients offered to compress messages (permessage-deflate, as browsers "
            f"do): {said}. Eventlet's WebSocket, when it accepts, compresses each push once "
            "for each client; socket.io declines by default.")


def profile_reading(label, summary, clients):
    """Say where one Flack's worker spent its time during its profiled rounds."""
    if not summary:
        return None
    if "problem" in summary or not summary.get("samples"):
        return (f"- {label} could not be profiled: "
                f"{summary.get('problem', 'py-spy took no samples')}.")
    parts = "; ".join(f"{part['share']:.0%} in {part['name']}" for part in summary["parts"]
                      if part["share"])
    functions = ", ".join(f"`{item['name']}` {item['share']:.0%}"
                          for item in summary["own_by_function"][:3])
    return (f"- Where the time goes, {label}, {clients:,} clients: py-spy sampled the worker "
            f"through {summary['samples']} moments of work in more rounds, back to back and not "
            f"counted above: "
            f"{parts or 'none in the parts named'}. The functions with the most time of their "
            f"own: {functions}.")


SCENARIO = Scenario(
    name="fan-out", number=6,
    title="Fan-out against a Node.js Socket.IO reference",
    question="How long one message takes to reach every one of 100, 500 and 1,000 connected "
             "clients (p50 and p90), from Flack at v0.17 and at v0.19, each in one process, "
             "with and without compressing its WebSocket messages, and from a minimal Node.js "
             "socket.io server, each measured in turn several times; Flack's time over "
             "Node's, with how much it varies from one repetition to the next; and where "
             "Flack's time goes.",
    stages=STAGES, also_needs="Node.js and npm", needs_wrk=False,
    measure=measure, chart=draw, table=table, reading=reading)
