"""The Node.js side of the benchmark: its npm packages, the load generator, the reference server.

bench/node/driver.mjs simulates every client of a Socket.IO scenario in one
process and answers the commands written to it, one JSON line each;
bench/node/reference-server.mjs is the plain socket.io server that fan-out
compares Flack with. `npm ci` installs their packages from the lock file.
"""
import contextlib
import json
import queue
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

from . import checkout, flackapp, processes

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
STAMP = NODE_DIR / "node_modules" / ".installed"
MIN_NODE_MAJOR = 18  # socket.io 4.8 needs less; the driver uses structuredClone
NPM_SECONDS = 300
START_SECONDS = 30
EXIT_SECONDS = 10


def require():
    """Raise RuntimeError unless node and npm are here, node recent enough."""
    for program in ("node", "npm"):
        if shutil.which(program) is None:
            raise RuntimeError(f"{program} is missing: install Node.js {MIN_NODE_MAJOR} or later, "
                               "with npm")
    major = int(node_version().lstrip("v").split(".")[0])
    if major < MIN_NODE_MAJOR:
        raise RuntimeError(f"Node.js {node_version()} is too old: {MIN_NODE_MAJOR} or later")


def node_version():
    """Return node's version, such as v20.20.2."""
    return subprocess.run(["node", "--version"], capture_output=True, text=True, check=True,
                          timeout=10).stdout.strip()


def install(log_path):
    """Install bench/node's packages with `npm ci`, unless the lock file has not changed since."""
    require()
    manifests = [NODE_DIR / "package.json", NODE_DIR / "package-lock.json"]
    if STAMP.exists() and all(STAMP.stat().st_mtime >= m.stat().st_mtime for m in manifests):
        return
    processes.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel", "error"], NODE_DIR,
                  checkout.make_env(), log_path, NPM_SECONDS)
    STAMP.touch()


def package_version(name):
    """Return the version of an installed npm package of bench/node."""
    manifest = NODE_DIR / "node_modules" / name / "package.json"
    return json.loads(manifest.read_text())["version"]


def describe():
    """Say what the load generator is, for the results: Node.js and socket.io-client versions."""
    return (f"Node.js {node_version()} with socket.io-client "
            f"{package_version('socket.io-client')} (bench/node/driver.mjs)")


class Driver:
    """The load generator, bench/node/driver.mjs: one command at a time, one answer each."""

    def __init__(self, process, log_path, progress):
        self.process = process
        self.log_path = log_path
        self.progress = progress
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        """Hand every line the driver prints to the queue, then None when it stops."""
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def ask(self, command, timeout):
        """Send a command (a dict with "do"); return its answer, or raise RuntimeError."""
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError(f"the load generator did not finish {command['do']!r} "
                                   f"within {timeout:.0f} s (log: {self.log_path})") from None
            if line is None:
                raise RuntimeError(f"the load generator stopped during {command['do']!r}:\n"
                                   f"{self.log_path.read_text(errors='replace')[-2000:]}")
            answer = json.loads(line)
            if "progress" in answer:
                self.progress(answer["progress"])
            elif "error" in answer:
                raise RuntimeError(f"the load generator failed: {answer['error']}")
            else:
                answer.pop("done")
                return answer


@contextlib.contextmanager
def driver_running(log_dir, progress):
    """Start the load generator; yield a Driver; stop it on the way out."""
    log_path = log_dir / "node-driver.log"
    process = processes.start_piped(["node", "driver.mjs"], NODE_DIR, checkout.make_env(),
                                    log_path)
    try:
        yield Driver(process, log_path, progress)
        process.stdin.write(json.dumps({"do": "exit"}) + "\n")
        process.stdin.flush()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=EXIT_SECONDS)
    finally:
        processes.kill(process)


@contextlib.contextmanager
def reference_running(work_dir):
    """Start the Node.js reference server on a free port; yield (process, base URL)."""
    port = flackapp.free_port()
    log_path = work_dir / "reference-server.log"
    process = processes.start(["node", "reference-server.mjs", port], NODE_DIR,
                              checkout.make_env(), log_path)
    try:
        wait_for_port(process, port, log_path)
        yield process, f"http://127.0.0.1:{port}"
    finally:
        processes.kill(process)


def wait_for_port(process, port, log_path):
    """Wait until something accepts connections on the port, or raise RuntimeError."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the reference server exited with {process.returncode}:\n"
                               f"{log_path.read_text(errors='replace')[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.2)
    raise RuntimeError(f"the reference server did not listen within {START_SECONDS} s "
                       f"(log: {log_path})")
