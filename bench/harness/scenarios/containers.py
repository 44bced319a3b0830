"""Scenario 13: v0.23's containers: build, start, and kill each container while people chat.

The stage's own tests/containers.py runs compose.yaml with podman and podman-compose,
on the stand-in images that tutorial/containers/ builds from Debian's packages (these
machines reach no image registry). A child process with the stage's venv times a build
of the image without the engine's cache and one with it, then `up` until the first
page answers through nginx and until every container is healthy, then kills each
container's main process (SIGKILL) while browsers chat and a poster posts: the engine
must start it again by itself, and nothing else may stop.
"""
import json
import subprocess
from pathlib import Path

from .. import processes
from . import Scenario
from .faults import child_env

STAGES = ("v0.23",)
ROOT = Path(__file__).resolve().parents[3]
CHILD = Path(__file__).resolve().parents[1] / "container_child.py"
CONTAINERS = ROOT / "tutorial" / "containers"
COMPOSE = ROOT / ".venv-compose" / "bin" / "podman-compose"
FULL = {"faults": ["web1", "worker", "beat", "redis", "nginx", "postgres"],
        "settle_seconds": 90, "build_uncached": True}
SMOKE = {"faults": ["web1"], "settle_seconds": 60, "build_uncached": False}
CHILD_SECONDS = 1200
WHAT = {
    "web1": "one of the two web processes (gunicorn)",
    "worker": "the Celery worker",
    "beat": "Celery beat",
    "redis": "Redis (its data on a volume)",
    "nginx": "nginx",
    "postgres": "PostgreSQL (its data on a volume)",
}


def podman_env():
    """Return the environment that podman and compose need here: settings and stand-ins."""
    env = {**child_env(), "CONTAINERS_CONF": str(CONTAINERS / "containers.conf"),
           "BUILDAH_FORMAT": "docker"}
    for line in (CONTAINERS / "stand-ins.env").read_text().splitlines():
        if line and not line.startswith("#"):
            name, value = line.split("=", 1)
            env[name] = value
    return env


def measure(run):
    """Build the stand-ins if missing, then let the child build, start and kill."""
    settings = run.settings(FULL, SMOKE)
    env = podman_env()
    if not COMPOSE.exists():
        raise RuntimeError(f"{COMPOSE} is missing: run `make stand-ins` first")
    subprocess.run([CONTAINERS / "build-stand-ins"], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    copy = run.checkout(STAGES[0])
    folder = run.work_dir("containers")
    out = folder / "result.json"
    args = {"root": str(copy.tree), "compose": str(COMPOSE), "folder": str(folder),
            "settle": settings["settle_seconds"], "faults": settings["faults"],
            "build_uncached": settings["build_uncached"], "out": str(out)}
    process = processes.start([copy.python, CHILD, json.dumps(args)], copy.tree, env,
                              folder / "child.log")
    process.wait(timeout=CHILD_SECONDS)
    found = json.loads(out.read_text()) if out.exists() else {}
    failures = []
    if process.returncode != 0:
        failures.append("the child failed: " + (folder / "child.log").read_text()[-2000:])
    for kill in found.get("kills", []):
        run.progress(f"{kill['fault']}: back after {kill['came_back_after']} s, others "
                     f"stopped: {', '.join(kill['others_stopped']) or 'none'}")
        if kill["came_back_after"] is None or kill["others_stopped"] or kill["lost"] \
                or kill["pending"] or kill["clients_missing"] or kill["logged_out"]:
            failures.append(f"{kill['fault']}: {kill}")
    engine = subprocess.run(["podman", "--version"], capture_output=True, text=True).stdout
    return {"settings": {**settings, "engine": engine.strip(),
                         "compose": "podman-compose 1.6.0 (tutorial/requirements-compose.txt)",
                         "images": "stand-ins from Debian 13's packages "
                                   "(tutorial/containers/stand-ins.env)"},
            "found": found, "failures": failures}


def seconds(value):
    """Say a time in seconds, or that it did not happen."""
    return "not within the time" if value is None else f"{value:.1f} s"


def table(results):
    """Return the kills as rows: what was killed, when it was back, what else stopped."""
    rows = ["| Container killed | Back, healthy, after | All browsers caught up after | "
            "Other containers stopped | POSTs that failed | Lost, pending, missing, logged out |",
            "|---|--:|--:|---|--:|---|"]
    for kill in results["found"].get("kills", []):
        wrong = [kill["lost"], kill["pending"], kill["clients_missing"], kill["logged_out"]]
        rows.append(f"| `{kill['fault']}`: {WHAT[kill['fault']]} | "
                    f"{seconds(kill['came_back_after'])} | {seconds(kill['recovered_after'])} | "
                    f"{', '.join(kill['others_stopped']) or 'none'} | "
                    f"{kill['posts_failed']} of {kill['posts_failed'] + kill['posted']} | "
                    f"{'none' if not any(wrong) else ', '.join(map(str, wrong))} |")
    return "\n".join(rows) + "\n"


def reading(results):
    """Say how long the image took to build, how large it is, and how long `up` took."""
    found = results["found"]
    if "image_bytes" not in found:
        return "The stack did not start: no figures.\n"
    uncached = found.get("build_seconds_uncached")
    return (f"- The image: {found['image_bytes'] / 1e6:.0f} MB; built in "
            + (f"{uncached:.0f} s without the engine's cache (the stand-in base images "
               "already built), " if uncached is not None else "")
            + f"{found['build_seconds_cached']:.1f} s with it.\n"
            f"- From `up` to the first page through nginx: {found['first_page_seconds']:.1f} s "
            f"(`up` itself returned after {found['up_seconds']:.1f} s); every container "
            f"healthy after {found['all_healthy_seconds']:.1f} s.\n")


def draw(results, path):
    """Draw nothing: the table says it all."""


SCENARIO = Scenario(
    name="containers", number=13,
    title="Containers: build, start, and kill each one while people chat",
    question="How long v0.23's image takes to build, from scratch and cached, how large it is, "
             "how long compose.yaml's stack takes to serve its first page, and, with each "
             "container killed in turn while browsers chat, how long it takes to come back "
             "by itself, and whether anything else stops or anything is lost.",
    stages=STAGES, also_needs="podman and runc (Debian), `make stand-ins`", needs_wrk=False,
    max_minutes=25, measure=measure, chart=draw, table=table, reading=reading)
