"""Scenario 4: tabs that poll every 2 s (v0.13) against tabs that get pushes (v0.17)."""
import contextlib
import re
import time
from dataclasses import dataclass

from .. import chart, flackapp, node, processes
from ..numbers import distribution
from . import Scenario

STAGES = POLLING, PUSH = ("v0.13", "v0.17")
HOW = {POLLING: "polling", PUSH: "Socket.IO pushes"}
SERVER = flackapp.Server("gunicorn + eventlet", "procfile-web")
FULL = {"tabs": 100, "users": 10, "idle_seconds": 60, "messages": 12,
        "message_interval_seconds": 1.0}
SMOKE = {"tabs": 5, "users": 2, "idle_seconds": 2, "messages": 3,
         "message_interval_seconds": 0.5}
SETTLE_SECONDS = 2  # after the tabs open, before the idle window: their first polls are done
ARRIVAL_WAIT_SECONDS = 30  # after the last POST, for every tab to have every message
QUIET_WAIT_SECONDS = 30  # after the tabs close, for the server to finish with them
ACCESS_LOG_LINE = re.compile(r'"(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) \S+ HTTP/[\d.]+" \d{3} ')
MIB = 1024 * 1024


@dataclass
class Stage:
    """One stage's running server, the tokens its tabs share, and how its page behaves."""

    version: str
    app: object  # a flackapp.RunningApp
    tokens: list
    poster_token: str
    tab: dict  # the driver's open command, less the tab count


def stage_constant(path, name):
    """Return the number a stage's file assigns to name (app.js or config.py)."""
    found = re.search(rf"\b{name}\s*=\s*([\d.]+)", path.read_text())
    if found is None:
        raise RuntimeError(f"{path} no longer sets {name}: the scenario cannot mimic the page")
    return float(found.group(1))


def tab_settings(version, tree, base_url, tokens):
    """Return how a tab of the stage behaves, read from the stage's own files."""
    if version == POLLING:
        app_js = tree / "flack" / "static" / "js" / "app.js"
        return {"kind": "polling", "base_url": base_url, "tokens": tokens,
                "poll_ms": stage_constant(app_js, "POLL_INTERVAL_MS"),
                "page_size": int(stage_constant(app_js, "PAGE_SIZE")),
                "max_pages": int(stage_constant(app_js, "MAX_PAGES_PER_POLL"))}
    heartbeat = stage_constant(tree / "config.py", "HEARTBEAT_INTERVAL")
    return {"kind": "socket", "base_url": base_url, "tokens": tokens,
            "heartbeat_ms": heartbeat * 1000}


@contextlib.contextmanager
def started(run, version, settings):
    """Start a stage's Procfile web process; register its users; yield a Stage."""
    stage_copy = run.checkout(version)
    work_dir = run.work_dir(f"polling-vs-push-{version}")
    # v0.17 needs a message queue: a folder, as link-previews gives v0.15. v0.13 ignores it.
    app_settings = {"LOCAL_BROKER_FOLDER": str(work_dir / "broker")}
    with flackapp.running(stage_copy, SERVER, work_dir, app_settings) as app:
        tokens = [flackapp.new_token(app.base_url, f"reader{n + 1}")
                  for n in range(settings["users"])]
        poster_token = flackapp.new_token(app.base_url, "poster")
        flackapp.call("POST", f"{app.base_url}/api/messages", {"source": "Warming up."},
                      {"Authorization": f"Bearer {poster_token}"})
        yield Stage(version, app, tokens, poster_token,
                    tab_settings(version, stage_copy.tree, app.base_url, tokens))


def measure(run):
    """Start both stages side by side; open the tabs of each in turn, idle, then post."""
    settings = run.settings(FULL, SMOKE)
    node.install(run.log_dir / "npm-bench-node.log")
    with contextlib.ExitStack() as stack:
        driver = stack.enter_context(node.driver_running(run.log_dir, run.progress))
        stages = [stack.enter_context(started(run, version, settings)) for version in STAGES]
        runs = [measure_stage(run, driver, stage, settings) for stage in stages]
    return {"settings": {**settings, "server": "the Procfile's web: gunicorn with eventlet",
                         "message_queue": "`LOCAL_BROKER_FOLDER` (v0.17; no Redis)",
                         "stats_push_interval_seconds": "5 (v0.17's default)",
                         "poll_interval_ms": round(stages[0].tab["poll_ms"]),
                         "heartbeat_ms": round(stages[1].tab["heartbeat_ms"])},
            "load_generator": node.describe(), "runs": runs, "failures": failures(runs)}


def measure_stage(run, driver, stage, settings):
    """Open the tabs, measure an idle window, deliver messages, close the tabs."""
    pgid = stage.app.process.pid
    tabs = settings["tabs"]
    rss_before = processes.group_rss_bytes(pgid)
    opened = driver.ask({"do": "open", "clients": tabs, **stage.tab}, 60 + tabs * 0.2)
    run.progress(f"{stage.version}: {tabs} tabs open in {opened['seconds']:.1f} s")
    time.sleep(SETTLE_SECONDS)
    idle = measure_idle(driver, stage, settings["idle_seconds"])
    idle["rss_open_bytes"] = processes.group_rss_bytes(pgid)
    run.progress(f"{stage.version}, idle for {idle['seconds']:.0f} s: {idle['requests']} HTTP "
                 f"requests, server CPU {idle['server_cpu_seconds']:.2f} s, load generator "
                 f"{idle['loadgen_cpu_seconds']:.2f} s")
    delivery = measure_delivery(driver, stage, settings)
    summary = summarize_delivery(delivery)
    run.progress(f"{stage.version}, {settings['messages']} messages: {describe(summary)}")
    driver.ask({"do": "close"}, 60)
    processes.wait_until_quiet(pgid, QUIET_WAIT_SECONDS)
    return {"stage": stage.version, "label": f"{stage.version}: {HOW[stage.version]}",
            "tabs": tabs, "websocket_extensions": opened["websocket_extensions"],
            "rss_before_bytes": rss_before, "idle": idle,
            "delivery": {key: value for key, value in delivery.items() if key != "messages"},
            "messages": [{"id": m["id"], "post_ms": round(m["post_ms"], 2),
                          "latencies_ms": [None if ms is None else round(ms, 1)
                                           for ms in m["latencies_ms"]]}
                         for m in delivery["messages"]],
            "summary": {**summary, **summarize_idle(idle, tabs, rss_before)}}


def measure_idle(driver, stage, seconds):
    """Let the tabs be; return what they sent and received, and the CPU each side used."""
    pgid = stage.app.process.pid
    log_start = stage.app.log_path.stat().st_size
    cpu_before = processes.group_cpu_seconds(pgid)
    busy_before = processes.machine_busy_seconds()
    idle = driver.ask({"do": "idle", "seconds": seconds}, seconds + 30)
    idle["server_cpu_seconds"] = round(processes.group_cpu_seconds(pgid) - cpu_before, 3)
    idle["machine_busy_cpu_seconds"] = round(processes.machine_busy_seconds() - busy_before, 3)
    idle["requests_logged"] = access_log_lines(stage.app.log_path, log_start)
    return idle


def access_log_lines(log_path, start):
    """Count the requests gunicorn's access log recorded after byte offset start."""
    with open(log_path, "rb") as log:
        log.seek(start)
        text = log.read().decode(errors="replace")
    return sum(1 for line in text.splitlines() if ACCESS_LOG_LINE.search(line))


def measure_delivery(driver, stage, settings):
    """Post the messages one every interval; return when each tab had each, and CPU used."""
    pgid = stage.app.process.pid
    cpu_before = processes.group_cpu_seconds(pgid)
    interval = settings["message_interval_seconds"]
    delivery = driver.ask({
        "do": "deliver", "base_url": stage.app.base_url, "token": stage.poster_token,
        "messages": settings["messages"], "interval_ms": interval * 1000,
        "wait_ms": ARRIVAL_WAIT_SECONDS * 1000, "source": "Is anybody there?",
    }, settings["messages"] * interval + ARRIVAL_WAIT_SECONDS + 120)
    delivery["server_cpu_seconds"] = round(processes.group_cpu_seconds(pgid) - cpu_before, 3)
    return delivery


def summarize_delivery(delivery):
    """Sum the delivery up: latency over every (tab, message) pair, and the pairs lost."""
    latencies = [ms for m in delivery["messages"] for ms in m["latencies_ms"]]
    arrived = [ms for ms in latencies if ms is not None]
    return {"pairs": len(latencies), "lost": len(latencies) - len(arrived),
            "latency_ms": distribution(arrived),
            "post_ms": distribution([m["post_ms"] for m in delivery["messages"]])}


def summarize_idle(idle, tabs, rss_before):
    """Sum the idle window up per minute, and the server's memory per open tab."""
    per_minute = 60 / idle["seconds"]
    other = idle["machine_busy_cpu_seconds"] - idle["server_cpu_seconds"] - \
        idle["loadgen_cpu_seconds"]
    return {
        "server_cpu_seconds_per_minute": round(idle["server_cpu_seconds"] * per_minute, 2),
        "requests_per_minute": round(idle["requests"] * per_minute),
        "requests_logged_per_minute": round(idle["requests_logged"] * per_minute),
        "events_per_minute": round(sum(idle["events"].values()) * per_minute),
        "stats_pushes_per_minute": round(idle["events"].get("stats", 0) * per_minute),
        "heartbeats_per_minute": round(idle["heartbeats"] * per_minute),
        "loadgen_cpu_seconds_per_minute": round(idle["loadgen_cpu_seconds"] * per_minute, 2),
        "other_cpu_seconds_per_minute": round(max(0.0, other) * per_minute, 2),
        "rss_before_mib": round(rss_before / MIB, 1),
        "rss_open_mib": round(idle["rss_open_bytes"] / MIB, 1),
        "rss_per_tab_kib": round((idle["rss_open_bytes"] - rss_before) / tabs / 1024, 1),
    }


def describe(summary):
    """Say in a few words how a delivery went, for the progress line."""
    latency = summary["latency_ms"]
    text = "nothing arrived" if latency is None else \
        f"p50 {latency['p50']:.0f} ms, p95 {latency['p95']:.0f} ms, max {latency['max']:.0f} ms"
    return f"{text}; {summary['lost']} of {summary['pairs']} lost"


def failures(runs):
    """List what went wrong at each stage: lost messages, failed requests, dropped connections."""
    found = []
    for run in runs:
        lost, idle, delivery = run["summary"]["lost"], run["idle"], run["delivery"]
        if lost:
            found.append(f"{run['stage']}: {lost} of {run['summary']['pairs']} (tab, message) "
                         f"pairs never arrived within {ARRIVAL_WAIT_SECONDS} s")
        errors = idle["http_errors"] + delivery["http_errors"]
        if errors:
            found.append(f"{run['stage']}: {errors} of the tabs' requests failed, the last with: "
                         f"{delivery['last_error'] or idle['last_error']}")
        dropped = idle["disconnects"] + delivery["disconnects"]
        if dropped:
            found.append(f"{run['stage']}: {dropped} connections dropped")
    return found


def draw(results, path):
    """Chart the idle cost (CPU and requests per minute) and the delivery latency."""
    runs = results["runs"]
    labels = [run["label"] for run in runs]
    if any(run["summary"]["latency_ms"] is None for run in runs):
        return  # nothing arrived somewhere: the table says so

    def series(name, pick):
        return chart.Series(name, [pick(run["summary"]) for run in runs])

    settings = results["settings"]
    chart.bar_chart(path, f"{settings['tabs']} open tabs: polling (v0.13) or pushes (v0.17)",
                    labels, [
        chart.Panel("Idle: server CPU", "CPU seconds per minute",
                    [series("server", lambda s: s["server_cpu_seconds_per_minute"])]),
        chart.Panel("Idle: HTTP requests", "requests per minute",
                    [series("requests", lambda s: s["requests_per_minute"])]),
        chart.Panel("A new message reaches a tab", "milliseconds",
                    [series("p50", lambda s: s["latency_ms"]["p50"]),
                     series("p95", lambda s: s["latency_ms"]["p95"])]),
    ], note=f"idle: {settings['idle_seconds']} s with nothing posted; then "
            f"{settings['messages']} messages, one every {settings['message_interval_seconds']:g} s"
            f"; latency over every (tab, message) pair")


def table(results):
    """Return each stage's idle cost and delivery latency as a markdown table."""
    rows = ["| Stage | Idle: server CPU (s/min) | Idle: HTTP requests (/min) "
            "| Idle: events pushed (/min) | Load generator CPU (s/min) "
            "| Delivery p50 / p95 / max (ms) | Lost | Server memory per tab (KiB) |",
            "|---|--:|--:|--:|--:|--:|--:|--:|"]
    for run in results["runs"]:
        s = run["summary"]
        latency = s["latency_ms"]
        delivered = "none arrived" if latency is None else \
            f"{latency['p50']:.0f} / {latency['p95']:.0f} / {latency['max']:.0f}"
        rows.append(f"| {run['label']} | {s['server_cpu_seconds_per_minute']:.2f} "
                    f"| {s['requests_per_minute']} | {s['events_per_minute']} "
                    f"| {s['loadgen_cpu_seconds_per_minute']:.2f} | {delivered} "
                    f"| {s['lost']} of {s['pairs']} | {s['rss_per_tab_kib']:.0f} |")
    return "\n".join(rows) + "\n"


def reading(results):
    """Say in numbers what the open tabs cost each stage, how fast messages came, and losses."""
    settings = results["settings"]
    runs = {run["stage"]: run for run in results["runs"]}
    polled, pushed = runs[POLLING]["summary"], runs[PUSH]["summary"]
    tabs = settings["tabs"]
    lines = [
        f"- Idle, {POLLING}: {tabs} tabs polling every {settings['poll_interval_ms'] / 1000:g} s "
        f"made {polled['requests_per_minute']} requests a minute (gunicorn's access log counted "
        f"{polled['requests_logged_per_minute']}), and the server spent "
        f"{polled['server_cpu_seconds_per_minute']:.2f} CPU seconds a minute answering them, "
        f"{polled['server_cpu_seconds_per_minute'] / 60:.0%} of a core, with nothing to say.",
        f"- Idle, {PUSH}: the same tabs made {pushed['requests_per_minute']} requests; the server "
        f"spent {pushed['server_cpu_seconds_per_minute']:.2f} CPU seconds a minute on "
        f"{pushed['heartbeats_per_minute']} heartbeats (each tab's `still_here` every "
        f"{settings['heartbeat_ms'] / 1000:g} s, a database write each), "
        f"{pushed['stats_pushes_per_minute']} pushes of the statistics (every 5 s to every "
        f"tab: `STATS_PUSH_INTERVAL`'s default), and its folder message queue, which it looks "
        f"at every 50 ms.",
    ]
    if pushed["server_cpu_seconds_per_minute"] > 0:
        ratio = polled["server_cpu_seconds_per_minute"] / pushed["server_cpu_seconds_per_minute"]
        lines.append(f"- Idle, polling cost the server {ratio:.1f}× the CPU time of pushing.")
    lines.append(f"- The load generator used {polled['loadgen_cpu_seconds_per_minute']:.2f} "
                 f"({POLLING}) and {pushed['loadgen_cpu_seconds_per_minute']:.2f} ({PUSH}) CPU "
                 f"seconds a minute while idle, and everything else on the machine "
                 f"{polled['other_cpu_seconds_per_minute']:.2f} and "
                 f"{pushed['other_cpu_seconds_per_minute']:.2f}.")
    for version in STAGES:
        s = runs[version]["summary"]
        latency = s["latency_ms"]
        if latency is None:
            lines.append(f"- Delivery, {version}: no message reached any tab.")
            continue
        lines.append(f"- Delivery, {version}: half of the {s['pairs']} (tab, message) pairs "
                     f"arrived within {latency['p50']:.0f} ms of the POST, 95% within "
                     f"{latency['p95']:.0f} ms, the slowest after {latency['max']:.0f} ms; "
                     f"{s['lost']} lost.")
    retried = sum(run["idle"]["retries"] + run["delivery"]["retries"] for run in runs.values())
    if retried:
        lines.append(f"- {retried} of the tabs' requests met a kept-alive connection that the "
                     "server had just closed, and were sent again on a new one, as a browser "
                     "does.")
    lines.append(
        f"- What pushing costs instead: {tabs} connections held open. The server's memory grew "
        f"from {pushed['rss_before_mib']:.0f} MiB to {pushed['rss_open_mib']:.0f} MiB with the "
        f"tabs connected, about {pushed['rss_per_tab_kib']:.0f} KiB a tab ({POLLING}: "
        f"{polled['rss_per_tab_kib']:.0f} KiB a tab, for its keep-alive connections), and every "
        f"heartbeat is a write to the database.")
    if "permessage-deflate" in (runs[PUSH]["websocket_extensions"] or ""):
        lines.append("- The tabs offered to compress their WebSocket messages, as browsers do, and "
                     f"{PUSH} accepted (permessage-deflate): each connection keeps a compressor "
                     "of its own, and every push is compressed once for each tab.")
    return "\n".join(lines) + "\n"


SCENARIO = Scenario(
    name="polling-vs-push", number=4,
    title="Polling, or pushing messages with Socket.IO",
    question="What open tabs cost the server when nothing happens (CPU time and HTTP "
             "requests a minute), and how soon a new message reaches every tab (p50, p95, "
             "lost): the polling page of v0.13 against the Socket.IO page of v0.17, 100 "
             "tabs each.",
    stages=STAGES, needs_wrk=False,
    measure=measure, chart=draw, table=table, reading=reading)
