"""Run one fault of v0.19's tests/faults.py against one stage; write what happened as JSON.

The faults scenario runs this file with v0.19's venv python (whose python-socketio
and websocket-client the driver's browsers need), once per stage and fault:

    python fault_child.py '<json: driver, root, python, folder, database_url, fault,
                            settle, out>'

The driver takes the project folder and its python as arguments, so the stack it
starts (two gunicorns, a Celery worker, beat, nginx, a Redis of its own) is the
stage's, with the stage's venv. A stage whose page says `still_here` every
HEARTBEAT_INTERVAL (v0.17, v0.18) gets browsers that do so too, every
HEARTBEAT_INTERVAL of the driver's settings, as that page's app.js would; from v0.19
the page sends nothing, and neither do the driver's browsers.

SIGTERM and SIGINT stop the stack before this process ends: the driver starts each
service in a session of its own, which a signal to this process's group would miss.
"""
import contextlib
import importlib.util
import json
import os
import re
import signal
import sys
import threading
import time
import traceback
from pathlib import Path

LOG_LINES = 15  # the last lines of each service's log that say something went wrong
WRONG = re.compile(r"ERROR|CRITICAL|Traceback|Unrecoverable")
LINE_CHARS = 400


def load_driver(path):
    """Import the driver from a file, not as tests.faults: nothing else of tests/ is needed."""
    spec = importlib.util.spec_from_file_location("flack_faults_driver", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def page_heartbeats(root):
    """Say whether the stage's page emits still_here on a timer."""
    app_js = Path(root) / "flack" / "static" / "js" / "app.js"
    return app_js.exists() and "still_here" in app_js.read_text()


def with_heartbeats(driver, interval):
    """Make the driver's browsers say still_here every interval seconds, as v0.18's page."""
    class HeartbeatClient(driver.ChatClient):
        heartbeats = 0

        def __init__(self, base, token):
            super().__init__(base, token)
            self.beating = threading.Event()
            threading.Thread(target=self.beat, daemon=True).start()

        def beat(self):
            while not self.beating.wait(interval):
                with contextlib.suppress(Exception):
                    if self.client.connected:
                        self.client.emit("still_here")
                        HeartbeatClient.heartbeats += 1

        def close(self):
            self.beating.set()
            super().close()

    driver.ChatClient = HeartbeatClient
    return HeartbeatClient


def wrong_lines(services):
    """Return, for each service, the last lines of its log that say something went wrong."""
    found = {}
    for name, service in services.items():
        with contextlib.suppress(OSError):
            lines = service.text().splitlines()
            kept = [with_exception(lines, number)[:LINE_CHARS]
                    for number, line in enumerate(lines) if WRONG.search(line)]
            if kept:
                found[name] = kept[-LOG_LINES:]
    return found


def with_exception(lines, number):
    """Return a log line; a traceback's first line with its exception's line after it."""
    line = lines[number]
    if not line.startswith("Traceback"):
        return line
    for following in lines[number + 1:]:
        if following and not following[0].isspace():
            return f"{line} ... {following}"
    return line


def kill_children():
    """Kill the process groups of this process's children: each service leads its own."""
    path = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children")
    for pid in (int(child) for child in path.read_text().split()):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


def main():
    """Start the stage's stack, run the fault, stop the stack; write the result."""
    args = json.loads(sys.argv[1])

    def leave(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, leave)
    signal.signal(signal.SIGINT, leave)
    driver = load_driver(args["driver"])
    result = {"fault": args["fault"], "error": None}
    stack = page = None
    heartbeat = None
    started = time.monotonic()
    try:
        stack = driver.FaultRun(args["root"], args["python"], Path(args["folder"]),
                                args["database_url"])
        result["start_seconds"] = round(time.monotonic() - started, 1)
        if page_heartbeats(args["root"]):
            heartbeat = with_heartbeats(driver, float(stack.env["HEARTBEAT_INTERVAL"]))
        page = driver.SlowPage()
        found = driver.run_fault(stack, args["fault"], page.url, settle=args["settle"])
        stored = found.pop("stored")
        result.update(found, stored=len(stored),
                      stored_with_preview=sum(1 for m in stored if m.get("previews")))
    except BaseException as error:  # written down; the scenario says so
        result["error"] = f"{type(error).__name__}: {error}"
        result["traceback"] = traceback.format_exc()[-3000:]
    finally:
        if stack is not None:
            result["log_lines"] = wrong_lines(stack.services)
            result.setdefault("alive", {name: service.alive()
                                        for name, service in stack.services.items()})
            stack.stop()
        else:  # the stack failed to start: stop what it had started
            kill_children()
        if page is not None:
            page.close()
        result["heartbeats"] = heartbeat.heartbeats if heartbeat else None
        result["seconds"] = round(time.monotonic() - started, 1)
        Path(args["out"]).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
