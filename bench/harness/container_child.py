"""Build and start a stage's containers, then kill each in turn; write what happened as JSON.

The containers scenario runs this file with the stage's venv python, in the stage's
checkout, whose tests/containers.py starts compose.yaml's stack and whose
tests/faults.py drives the chat (v0.23 and later):

    python container_child.py '<json: root, compose, folder, settle, faults,
                                build_uncached, out>'

It times a build of the image without the engine's cache (unless build_uncached is
false), then one with it, then
`up` until the first page answers through nginx and until every container is
healthy, and then kills each container named in faults while the chat works.
"""
import contextlib
import json
import sys
import time
from pathlib import Path


def timed(action):
    """Run action(); return the seconds it took."""
    started = time.monotonic()
    action()
    return round(time.monotonic() - started, 1)


def first_page(stack, seconds=300):
    """Wait until the chat's page answers through nginx."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if stack.proxy.opener.open(stack.proxy.base + "/", timeout=2).status == 200:
                return
        time.sleep(0.1)
    raise TimeoutError("no page within 300 s")


def kill_one(stack, faults_module, fault, settle):
    """Kill one container while the chat works; return what the fault tests check."""
    stack.wait_healthy(stack.services, settle)
    stack.new_run()
    before = stack.pids()
    result = faults_module.run_fault(stack, fault, "http://nginx/", settle=settle)
    came_back_after = stack.came_back_after(fault)
    after = stack.pids()
    stored_ids = {message["id"] for message in result["stored"]}
    return {
        "fault": fault, "came_back_after": came_back_after,
        "recovered_after": result["recovered_after"],
        "others_stopped": [service for service, pid in before.items()
                           if service != fault and after[service] != pid],
        "posted": len(result["posted"]), "posts_failed": result["posts_failed"],
        "lost": len(set(result["posted"]) - stored_ids), "pending": len(result["pending"]),
        "clients_missing": sum(result["clients_missing"]),
        "logged_out": sum(1 for refusals in result["refused"] if refusals)
                      + result["tokens_valid"].count(False),
    }


def main():
    """Measure, and write the JSON file that the scenario reads."""
    args = json.loads(sys.argv[1])
    root = Path(args["root"])
    sys.path.insert(0, str(root))
    from tests import faults
    from tests.containers import ContainerStack
    stack = ContainerStack(root, args["compose"], Path(args["folder"]))
    found = {}
    try:
        if args["build_uncached"]:
            found["build_seconds_uncached"] = timed(
                lambda: stack.run_compose("build", "--no-cache"))
        found["build_seconds_cached"] = timed(lambda: stack.run_compose("build"))
        found["image_bytes"] = json.loads(stack.engine_output(
            "image", "inspect", "localhost/flack:latest"))[0]["Size"]
        started = time.monotonic()
        stack.run_compose("up", "--detach", *(["--no-deps"] if stack.engine[0] == "podman"
                                              else []))
        found["up_seconds"] = round(time.monotonic() - started, 1)
        first_page(stack)
        found["first_page_seconds"] = round(time.monotonic() - started, 1)
        stack.wait_healthy(stack.services, 300)
        found["all_healthy_seconds"] = round(time.monotonic() - started, 1)
        found["kills"] = [kill_one(stack, faults, fault, args["settle"])
                          for fault in args["faults"]]
    finally:
        stack.down()
        Path(args["out"]).write_text(json.dumps(found, indent=1) + "\n")


if __name__ == "__main__":
    main()
