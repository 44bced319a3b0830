"""The chat in containers, as compose.yaml runs it, ready to have a container killed.

A ContainerStack runs compose.yaml as a project of its own (its own name, volumes and
ports: a developer's `make containers` is left alone), with tests/faults.py's quick
settings and each web process on a loopback port of its own, as FaultRun has them, so
that tests.faults.run_fault() drives it as it drives the processes of `make serve`.
The difference is what starts a killed part again: here the container engine does,
by the restart policy in compose.yaml, and nothing in the test.

COMPOSE is the command: `docker compose`, or `podman-compose` (podman 4.3 runs no
health checks by itself: it leaves them to systemd's timers, which these machines do
not run, so the stack runs them when it waits for health).
"""
import json
import os
import secrets
import shlex
import signal
import subprocess
import threading
import time
from pathlib import Path

from tests.faults import QUICK_SETTINGS, Http, free_port, messages_after, wait_until

# Every service of compose.yaml that keeps running, and what kills it (FAULTS).
SERVICES = ("web1", "web2", "worker", "beat", "nginx", "redis", "postgres")
FAULTS = ("web1", "worker", "beat", "redis", "nginx", "postgres")
START_SECONDS = 300  # a first start builds the image and creates the database
BACK_SECONDS = 60


class Container:
    """One service's container, looked at through the engine."""

    def __init__(self, stack, service):
        self.stack, self.service = stack, service

    def inspect(self):
        """Return the engine's description of the container."""
        ids = self.stack.engine_output("ps", "--all", "--quiet",
                                       "--filter", f"label=com.docker.compose.project="
                                                   f"{self.stack.project}",
                                       "--filter", f"label=com.docker.compose.service="
                                                   f"{self.service}").split()
        assert len(ids) == 1, f"{self.service}: {len(ids)} containers"
        return json.loads(self.stack.engine_output("inspect", ids[0]))[0]

    def pid(self):
        """Return the host's id of the container's main process, or 0 if it is not running."""
        state = self.inspect()["State"]
        return state["Pid"] if state["Running"] else 0

    def alive(self):
        """Tell whether the container is running."""
        return self.pid() != 0

    def healthy(self):
        """Tell whether the container runs and passes its health check (if it has one)."""
        description = self.inspect()
        if not description["State"]["Running"]:
            return False
        test = (description["Config"].get("Healthcheck") or {}).get("Test") or ["NONE"]
        if test[0] == "NONE":  # none, or turned off in compose.yaml
            return True
        if self.stack.engine[0] == "podman":  # no timer ran it: run it now
            return self.stack.engine_run("healthcheck", "run", description["Id"]) == 0
        return description["State"]["Health"]["Status"] == "healthy"


class ContainerStack:
    """compose.yaml's services, started for a test and removed after it."""

    def __init__(self, root, compose, folder, settings=None):
        self.root, self.folder = Path(root), Path(folder)
        self.compose = shlex.split(compose)
        self.engine = ["podman"] if "podman" in self.compose[0] else ["docker"]
        self.project = f"flack-test-{secrets.token_hex(4)}"
        self.proxy_port = free_port()
        self.web_ports = [free_port(), free_port()]
        self.env_file = self.folder / "compose.env"
        password = secrets.token_hex(16)
        variables = {
            "SECRET_KEY": secrets.token_hex(32), "POSTGRES_USER": "flack",
            "POSTGRES_DB": "flack", "POSTGRES_PASSWORD": password,
            "DATABASE_URL": f"postgresql://flack:{password}@postgres:5432/flack",
            **QUICK_SETTINGS,
            # Every run on this one stack signs three users up, from the same address.
            "REGISTER_LIMIT_PER_ADDRESS": "1000 per hour", **(settings or {})}
        self.env_file.write_text("".join(f"{name}={value}\n" for name, value in variables.items()))
        # The web processes on loopback ports of their own too, as in tests/faults.py.
        self.ports_file = self.folder / "ports.yaml"
        self.ports_file.write_text("services:\n" + "".join(
            f"  web{number}:\n    ports: [\"127.0.0.1:{port}:5000\"]\n"
            for number, port in enumerate(self.web_ports, start=1)))
        self.env = {**os.environ, "FLACK_ENV_FILE": str(self.env_file),
                    "FLACK_PORT": str(self.proxy_port)}
        self.services = {service: Container(self, service) for service in SERVICES}
        self.proxy = Http(f"http://127.0.0.1:{self.proxy_port}")
        self.webs = [Http(f"http://127.0.0.1:{port}") for port in self.web_ports]
        self.came_back, self.returning = {}, {}
        self.after = 0  # the last change before this run (new_run())

    def run_compose(self, *arguments, timeout=START_SECONDS):
        """Run a compose command on this project; fail with its output if it fails."""
        command = [*self.compose, "--project-name", self.project,
                   "--file", str(self.root / "compose.yaml"), "--file", str(self.ports_file),
                   *arguments]
        done = subprocess.run(command, cwd=self.root, env=self.env, capture_output=True,
                              text=True, timeout=timeout)
        assert done.returncode == 0, f"{shlex.join(command)}:\n{done.stdout}\n{done.stderr}"

    def engine_output(self, *arguments):
        """Return what a command of the container engine printed."""
        return subprocess.run([*self.engine, *arguments], capture_output=True, text=True,
                              check=True, timeout=60).stdout

    def engine_run(self, *arguments):
        """Return the exit status of a command of the container engine."""
        return subprocess.run([*self.engine, *arguments], capture_output=True,
                              timeout=60).returncode

    def up(self):
        """Build the image, start every service, and wait until each is healthy."""
        self.run_compose("build")
        # podman-compose adds each dependency to the container as one that podman must
        # start with it, and podman 4.3 then refuses to start a web process because the
        # migrations job has exited: --no-deps leaves that out (docker compose does not).
        self.run_compose("up", "--detach", *(["--no-deps"] if self.engine[0] == "podman" else []))
        self.wait_healthy(SERVICES, START_SECONDS)

    def wait_healthy(self, services, seconds):
        """Wait until services are healthy, and the app answers through nginx."""
        for service in services:
            wait_until(self.services[service].healthy, seconds, f"{service} healthy")
        wait_until(lambda: self.proxy.call("GET", "/readyz")[0] == 200, seconds,
                   "ready through nginx")

    def pids(self):
        """Return the main process of each service's container, 0 for one that is not running."""
        return {service: container.pid() for service, container in self.services.items()}

    def inject(self, fault):
        """Kill a service's container (SIGKILL to its main process) and time its return."""
        pid = self.services[fault].pid()
        killed_at = time.monotonic()
        os.kill(pid, signal.SIGKILL)

        def time_return():
            """Note how long the container took to run again and pass its health check."""
            container = self.services[fault]
            deadline = killed_at + BACK_SECONDS
            while time.monotonic() < deadline:
                if container.pid() not in (0, pid) and container.healthy():
                    self.came_back[fault] = time.monotonic() - killed_at
                    return
                time.sleep(0.1)
        self.returning[fault] = threading.Thread(target=time_return, daemon=True)
        self.returning[fault].start()
        return None  # the engine starts it again, not the test

    def came_back_after(self, fault):
        """Return the seconds a killed container took to be back and healthy, or None."""
        self.returning[fault].join()
        return self.came_back.get(fault)

    def new_run(self):
        """Count only what changes from now on as this run's messages (messages())."""
        # The runs share the stack, and a browser fetches the latest 100 messages only:
        # the checks are about what this run posted.
        status, body = self.webs[0].call("GET", "/api/messages?limit=1")
        assert status == 200, body
        self.after = max((message["change"] for message in body["messages"]), default=0)

    def messages(self):
        """Return every message changed in this run, as the database has it now."""
        return messages_after(self.webs[1], self.after)

    def logs(self, service):
        """Return what a service's container has logged."""
        done = subprocess.run([*self.engine, "logs", self.services[service].inspect()["Id"]],
                              capture_output=True, text=True, timeout=60)
        return done.stdout + done.stderr

    def down(self):
        """Keep each container's log in the folder, then remove containers, network, volumes."""
        for service in self.services:
            try:
                (self.folder / f"{service}.log").write_text(self.logs(service))
            except (AssertionError, subprocess.SubprocessError):  # never created, say
                pass
        self.run_compose("down", "--volumes", timeout=120)
