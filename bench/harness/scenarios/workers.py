"""Scenario 5: one gunicorn process against two, sharing their pushes through Redis (v0.18)."""
import contextlib
import os
import secrets
import shutil
import socket
import sys
import time
from dataclasses import dataclass

from .. import chart, flackapp, node, postgres, processes
from ..numbers import distribution, percentile
from . import Scenario

STAGE = "v0.18"
SERVER = flackapp.Server("gunicorn + eventlet", "procfile-web")
# The poster steps its rate up, so that the table shows where each set stops keeping up,
# whatever the machine: a fixed rate that one process barely manages on one machine is
# nothing to it on a faster one.
FULL = {"clients": 200, "users": 10, "rates": [30, 60, 120], "seconds_per_rate": 5,
        "posters": 4}
SMOKE = {"clients": 10, "users": 2, "rates": [5, 10], "seconds_per_rate": 1, "posters": 2}
PROCESS_COUNTS = (1, 2)
# SQLite is what `make serve` uses unless DATABASE_URL says otherwise; PostgreSQL is what
# several processes get in production. A PostgreSQL schema of its own for each set.
DATABASES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
# A database of Redis's own for the benchmark, unless REDIS_URL says which server to use.
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/13"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SETTLE_SECONDS = 2  # after the clients connect: the servers' first pushes to them are out
ARRIVAL_WAIT_SECONDS = 60  # after the last POST, for every client to have every message
QUIET_WAIT_SECONDS = 60  # after the clients close, for the servers to finish with them
# Run with the stage's python, which has the redis package: delete one set's keys.
FORGET_KEYS = ("import redis, sys\n"
               "client = redis.Redis.from_url(sys.argv[1])\n"
               "for key in client.scan_iter(match=sys.argv[2] + '*'):\n"
               "    client.delete(key)\n")


@dataclass
class ServerSet:
    """Some web processes of one stage, nginx in front, and their database's name."""

    label: str
    database: str  # a key of DATABASES
    webs: list  # flackapp.RunningApp, one per gunicorn
    nginx: object  # its Popen
    proxy_url: str

    def groups(self):
        """Return the process groups of the gunicorns, whose CPU time is read."""
        return [web.process.pid for web in self.webs]


def neighbouring_free_ports(count):
    """Return the first of count free ports in a row, as honcho numbers its web processes."""
    while True:
        first = flackapp.free_port()
        if all(port_is_free(first + n) for n in range(1, count)):
            return first


def port_is_free(port):
    """Say whether nothing listens on a loopback port."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def start_web(stage_copy, env, port, log_path):
    """Start one gunicorn, as honcho starts the Procfile's web, and wait until it answers."""
    env = {**env, "PORT": str(port)}
    process = processes.start(flackapp.server_command(stage_copy, SERVER, port),
                              stage_copy.tree, env, log_path)
    web = flackapp.RunningApp(SERVER, process, f"http://127.0.0.1:{port}", log_path, env)
    flackapp.wait_until_up(web)
    return web


def start_nginx(stage_copy, first_port, count, folder):
    """Write the stage's nginx configuration for count web processes; start nginx on it."""
    port = flackapp.free_port()
    processes.run([sys.executable, "deploy/local_nginx.py", "--web-processes", str(count),
                   "--first-web-port", str(first_port), "--port", str(port),
                   "--folder", folder], stage_copy.tree, None, folder.parent / "nginx.log", 30)
    process = processes.start([NGINX, "-e", "stderr", "-p", folder, "-c", folder / "nginx.conf"],
                              stage_copy.tree, None, folder.parent / "nginx.log")
    node.wait_for_port(process, port, folder.parent / "nginx.log")
    return process, f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def started(run, stage_copy, count, redis_url, database, database_url=None):
    """Start count gunicorns with nginx in front, on a database of their own; yield a set.

    database_url is a PostgreSQL schema's; without it, the set gets a SQLite file.
    """
    label = f"{DATABASES[database]}, {count} process" + ("es" if count > 1 else "")
    work_dir = run.work_dir(f"workers-{database}-{count}")
    prefix = f"bench-workers-{database}-{count}-{secrets.token_hex(4)}:"
    settings = {"REDIS_URL": redis_url, "REDIS_PREFIX": prefix}
    if database_url:
        settings["DATABASE_URL"] = database_url
    env = flackapp.app_env(stage_copy, SERVER, 0, work_dir / "flack.sqlite", settings)
    processes.run(flackapp.setup_command(stage_copy, SERVER), stage_copy.tree, env,
                  work_dir / "release.log", flackapp.SETUP_SECONDS)
    first_port = neighbouring_free_ports(count)
    webs = []
    nginx = None
    try:
        for number in range(count):
            webs.append(start_web(stage_copy, env, first_port + number,
                                  work_dir / f"web{number}.log"))
        nginx, proxy_url = start_nginx(stage_copy, first_port, count, work_dir / "nginx")
        yield ServerSet(label, database, webs, nginx, proxy_url)
    finally:
        for process in [nginx, *(web.process for web in webs)]:
            if process is not None:
                processes.kill(process)
        processes.run([stage_copy.python, "-c", FORGET_KEYS, redis_url, prefix],
                      stage_copy.tree, env, work_dir / "release.log", 30)


def measure(run):
    """Start every set side by side; at each rate, connect the clients to each set in turn."""
    settings = run.settings(FULL, SMOKE)
    redis_url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    postgres_url = postgres.url_from_environment()
    node.install(run.log_dir / "npm-bench-node.log")
    stage_copy = run.checkout(STAGE)
    databases = [{"name": "sqlite", "state": "measured"},
                 {"name": "postgresql", "state": "measured"}]
    reason = postgres.unreachable(stage_copy.python, postgres_url)
    if reason:
        databases[1].update(state="skipped", reason=reason)
        run.progress(f"PostgreSQL skipped: {reason}")
    with contextlib.ExitStack() as stack:
        driver = stack.enter_context(node.driver_running(run.log_dir, run.progress))
        sets = []
        for database in (d["name"] for d in databases if d["state"] == "measured"):
            for count in PROCESS_COUNTS:
                database_url = None
                if database == "postgresql":  # dropped after the set's processes stop
                    database_url = stack.enter_context(postgres.schema(
                        stage_copy.python, postgres_url, f"bench_workers_{count}"))
                sets.append(stack.enter_context(
                    started(run, stage_copy, count, redis_url, database, database_url)))
        runs = measure_sets(run, driver, sets, settings)
    return {"settings": {**settings, "server": "the Procfile's web: gunicorn with eventlet, "
                                               "one worker each, behind deploy/local_nginx.py",
                         "message_queue": f"Redis at {describe_redis(redis_url)}, a "
                                          "REDIS_PREFIX for each set",
                         "database": describe_databases(databases, postgres_url),
                         "clients_connect_to": "the web processes' own ports, in turn",
                         "poster_posts_to": "the web processes' own ports, in turn"},
            "load_generator": node.describe(), "cores": os.cpu_count(),
            "databases": databases, "runs": runs,
            "failures": failures(runs)}


def describe_databases(databases, postgres_url):
    """Say which databases the sets used: a SQLite file each, and a PostgreSQL schema each."""
    if databases[1]["state"] != "measured":
        return "a SQLite file for each set"
    return (f"a SQLite file for each set, and a schema for each in PostgreSQL at "
            f"{postgres.without_password(postgres_url)}")


def describe_redis(redis_url):
    """Name the Redis used, without a password that REDIS_URL may hold."""
    return redis_url if redis_url == DEFAULT_REDIS_URL else "REDIS_URL from the environment"


def login(server_set, settings):
    """Register the readers and the poster; return their tokens and post a first message."""
    base_url = server_set.proxy_url
    tokens = [flackapp.new_token(base_url, f"reader{n + 1}") for n in range(settings["users"])]
    poster = flackapp.new_token(base_url, "poster")
    flackapp.call("POST", f"{base_url}/api/messages", {"source": "Warming up."},
                  {"Authorization": f"Bearer {poster}"})
    return tokens, poster


def measure_sets(run, driver, sets, settings):
    """Measure every set at the first rate, then every set at the next, and so on.

    Rate by rate, so that a change in the machine's speed during the run touches every
    set alike, not only the last ones.
    """
    logins = [login(server_set, settings) for server_set in sets]
    runs = [{"label": server_set.label, "database": server_set.database,
             "processes": len(server_set.webs), "clients": settings["clients"], "steps": []}
            for server_set in sets]
    for rate in settings["rates"]:
        for server_set, (tokens, poster), entry in zip(sets, logins, runs, strict=True):
            entry["steps"].append(measure_step(driver, server_set, tokens, poster, rate,
                                               settings))
            run.progress(f"{server_set.label}, {settings['clients']} clients, {rate} "
                         f"messages/s: {describe(entry['steps'][-1]['summary'])}")
    return runs


def measure_step(driver, server_set, tokens, poster, rate, settings):
    """Connect the clients, half to each process; post at rate; disconnect them."""
    clients = settings["clients"]
    opened = driver.ask({"do": "open", "kind": "socket", "tokens": tokens, "clients": clients,
                         "base_urls": [web.base_url for web in server_set.webs],
                         "compress": True, "heartbeat_ms": 20000}, 60 + clients * 0.2)
    time.sleep(SETTLE_SECONDS)
    step = measure_rate(driver, server_set, poster, rate, settings)
    step["connect_seconds"] = round(opened["seconds"], 2)
    driver.ask({"do": "close"}, 60)
    for group in server_set.groups():  # the next set starts with this one quiet
        processes.wait_until_quiet(group, QUIET_WAIT_SECONDS)
    return step


def measure_rate(driver, server_set, poster, rate, settings):
    """Post for seconds_per_rate at rate messages a second; return what the clients received."""
    messages = rate * settings["seconds_per_rate"]
    cpu_before = cpu_readings(server_set)
    started_at = time.monotonic()
    delivery = driver.ask({
        "do": "deliver", "base_urls": [web.base_url for web in server_set.webs],
        "token": poster,
        "messages": messages, "interval_ms": 1000 / rate, "posters": settings["posters"],
        "wait_ms": ARRIVAL_WAIT_SECONDS * 1000, "source": "A message to everyone"},
        settings["seconds_per_rate"] * 3 + ARRIVAL_WAIT_SECONDS + 60)
    seconds = time.monotonic() - started_at
    used = {name: value - cpu_before[name] for name, value in cpu_readings(server_set).items()}
    return {"rate": rate, "messages": messages,
            "delivery": {key: value for key, value in delivery.items() if key != "messages"},
            "summary": summarize(delivery, seconds, used, rate * settings["clients"])}


def cpu_readings(server_set):
    """Return the CPU seconds used so far by the set's gunicorns, its nginx, and every core."""
    return {"servers": sum(processes.group_cpu_seconds(group) for group in server_set.groups()),
            "nginx": processes.group_cpu_seconds(server_set.nginx.pid),
            "machine": processes.machine_busy_seconds()}


def summarize(delivery, seconds, used, offered):
    """Sum a delivery up: deliveries a second, latency over every (client, message), lost."""
    latencies = [ms for m in delivery["messages"] for ms in m["latencies_ms"]]
    arrived = [ms for ms in latencies if ms is not None]
    delivered = len(arrived) / seconds
    return {"seconds": round(seconds, 2), "deliveries": len(arrived),
            "lost": len(latencies) - len(arrived),
            "offered_per_second": offered,
            "delivered_per_second": round(delivered, 1),
            # Within 5% of what was offered: the set delivered as fast as the poster posted.
            "kept_up": delivered >= 0.95 * offered,
            "posted_per_second": round(len(delivery["messages"]) / seconds, 1),
            "latency_ms": latency_distribution(arrived),
            "post_ms": distribution([m["post_ms"] for m in delivery["messages"]]),
            "server_cores": round(used["servers"] / seconds, 2),
            "nginx_cores": round(used["nginx"] / seconds, 2),
            "machine_cores": round(used["machine"] / seconds, 2),
            "loadgen_cores": round(delivery["loadgen_cpu_seconds"] / seconds, 2),
            "disconnects": delivery["disconnects"], "http_errors": delivery["http_errors"]}


def latency_distribution(arrived):
    """Return the latencies' count, p50, p95, mean and highest, and their p99 (None if none)."""
    found = distribution(arrived)
    if found:
        found["p99"] = round(percentile(sorted(arrived), 99), 1)
    return found


def describe(summary):
    """Say in a few words how a delivery went, for the progress line."""
    latency = summary["latency_ms"]
    arrived = "nothing arrived" if latency is None else \
        f"p50 {latency['p50']:.0f} ms, p99 {latency['p99']:.0f} ms"
    return (f"{summary['delivered_per_second']:,.0f} of {summary['offered_per_second']:,} "
            f"deliveries/s, {arrived}, {summary['lost']} lost, servers "
            f"{summary['server_cores']:.2f} cores, load generator "
            f"{summary['loadgen_cores']:.2f} in {summary['seconds']:.0f} s")


def failures(runs):
    """List the sets and rates that lost a delivery, dropped a client or failed a POST."""
    found = []
    for run in runs:
        for step in run["steps"]:
            summary = step["summary"]
            if summary["lost"] or summary["disconnects"] or summary["http_errors"]:
                found.append(f"{run['label']}, {step['rate']} messages/s: {summary['lost']} "
                             f"deliveries lost, {summary['disconnects']} clients dropped, "
                             f"{summary['http_errors']} POSTs failed "
                             f"({step['delivery']['last_error']})")
    return found


def draw(results, path):
    """Chart deliveries a second, and latency p99, at each rate, the sets side by side."""
    runs = results["runs"]
    if any(step["summary"]["latency_ms"] is None for run in runs for step in run["steps"]):
        return  # nothing arrived somewhere: the table says so
    settings = results["settings"]
    labels = [f"{rate} messages/s" for rate in settings["rates"]]

    def series(pick):
        return [chart.Series(run["label"], [pick(step["summary"]) for step in run["steps"]])
                for run in runs]

    chart.bar_chart(
        path, "One process, or two, as the poster speeds up", labels,
        [chart.Panel("Delivered to the clients", "deliveries a second",
                     series(lambda s: s["delivered_per_second"]),
                     notes=[f"{rate * settings['clients']:,} offered"
                            for rate in settings["rates"]]),
         chart.Panel("Latency p99, POST to a client's copy", "milliseconds",
                     series(lambda s: s["latency_ms"]["p99"]))],
        note=f"{settings['clients']} Socket.IO clients, {settings['seconds_per_rate']} s at "
             f"each rate; v0.18 with Redis, on SQLite and on PostgreSQL",
        panel_width=6.4)


def table(results):
    """Return each set's deliveries a second, latency, losses and CPU, rate by rate."""
    rows = ["| Server | Posted (messages/s) | Deliveries/s: offered / done "
            "| Latency p50 / p99 / max (ms) | Lost | POST p50 (ms) "
            "| CPU (cores): gunicorns / nginx / load generator / whole machine |",
            "|---|--:|--:|--:|--:|--:|--:|"]
    for run in results["runs"]:
        for step in run["steps"]:
            s = step["summary"]
            latency = s["latency_ms"]
            times = "none arrived" if latency is None else \
                f"{latency['p50']:.0f} / {latency['p99']:.0f} / {latency['max']:,.0f}"
            rows.append(f"| {run['label']} | {step['rate']} | {s['offered_per_second']:,} / "
                        f"{s['delivered_per_second']:,.0f} | {times} | {s['lost']} "
                        f"| {s['post_ms']['p50']:.0f} | {s['server_cores']:.2f} / "
                        f"{s['nginx_cores']:.2f} / {s['loadgen_cores']:.2f} / "
                        f"{s['machine_cores']:.2f} |")
    return "\n".join(rows) + "\n"


def reading(results):
    """Say how the sets were run and loaded, and what the numbers show."""
    settings = results["settings"]
    rates = ", ".join(str(rate) for rate in settings["rates"])
    lines = [
        f"- Each set is v0.18 as `make serve` runs it, without its worker and beat (these "
        f"messages have no links): gunicorn processes on neighbouring ports behind the nginx "
        f"that `deploy/local_nginx.py` writes, with {settings['message_queue']}. The "
        f"database is {settings['database']}. Every set runs side by side with the others; "
        f"at each rate, each set is measured in turn.",
        f"- nginx's `ip_hash` sends every client from 127.0.0.1 to the same process, so the "
        f"{settings['clients']} clients connect to the web processes' own ports, taking turns: "
        f"with two processes, half to each, as clients from many addresses would be spread. "
        f"The poster's {settings['posters']} connections take turns in the same way, "
        f"{settings['seconds_per_rate']} s at each rate, {rates} messages a second, each "
        f"message to every client; a message is due on its beat, and a wait for a free "
        f"connection counts in its latency.",
        "- Deliveries a second: the copies the clients received, over the time from the "
        "first POST at that rate until the last client had the last message. A set kept up "
        "when that is within 5% of what the poster offered.",
    ]
    for database in results["databases"]:
        if database["state"] != "measured":
            lines.append(f"- {DATABASES[database['name']]}: not measured. "
                         f"{database['reason'].rstrip('.')}.")
            continue
        runs = {run["processes"]: run for run in results["runs"]
                if run["database"] == database["name"]}
        if all(step["summary"]["latency_ms"] for run in runs.values() for step in run["steps"]):
            lines += [set_reading(runs[count]) for count in PROCESS_COUNTS]
            lines.append(limit_reading(results["cores"], runs[1], runs[2]))
    lines.append("- A second process can only help while a core is free for it: each process "
                 "also reads every message back from Redis and sends its own clients their "
                 "copies, and the clients themselves run on the same cores.")
    return "\n".join(lines)


def set_reading(run):
    """Say up to which rate a set kept up, and the most it delivered a second."""
    kept = [step["rate"] for step in run["steps"] if step["summary"]["kept_up"]]
    most = max(run["steps"], key=lambda step: step["summary"]["delivered_per_second"])
    pace = (f"kept up with the poster up to {max(kept)} messages a second" if kept
            else "fell behind the poster at every rate")
    return (f"- {run['label']}: {pace}; at most "
            f"{most['summary']['delivered_per_second']:,.0f} deliveries a second (at "
            f"{most['rate']} messages a second, p99 "
            f"{most['summary']['latency_ms']['p99']:,.0f} ms).")


def limit_reading(cores, one, two):
    """Say what the second process added at the highest rate, and where the cores went."""
    top_one, top_two = one["steps"][-1]["summary"], two["steps"][-1]["summary"]
    gain = top_two["delivered_per_second"] / top_one["delivered_per_second"]
    return (f"- {DATABASES[one['database']]}, at the highest rate: two processes delivered "
            f"{gain:.2f} times as much as one. The machine's {cores} cores are shared by "
            f"everything: with one process the whole machine was "
            f"{top_one['machine_cores']:.2f} cores busy (gunicorn "
            f"{top_one['server_cores']:.2f}, nginx {top_one['nginx_cores']:.2f}, the load "
            f"generator {top_one['loadgen_cores']:.2f}, the rest Redis, the database server "
            f"if any, and the system); with two, {top_two['machine_cores']:.2f} (gunicorns "
            f"{top_two['server_cores']:.2f}, nginx {top_two['nginx_cores']:.2f}, the load "
            f"generator {top_two['loadgen_cores']:.2f}).")


SCENARIO = Scenario(
    name="workers", number=5,
    title="One process, or several",
    question="Messages delivered a second to 200 Socket.IO clients, and their latency (p50, "
             "p99), with one gunicorn process and with two sharing pushes through Redis, "
             "each behind nginx, at v0.18, on SQLite and on PostgreSQL, while a poster posts "
             "at a rate that steps up.",
    stages=(STAGE,), also_needs="Node.js and npm, Redis and nginx (and PostgreSQL, or half of "
                                "it is skipped)",
    needs_wrk=False, max_minutes=10, measure=measure, chart=draw, table=table, reading=reading)
