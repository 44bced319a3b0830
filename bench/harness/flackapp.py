"""Start a checked-out stage of Flack the way it documents, and give it messages to serve."""
import base64
import contextlib
import json
import os
import secrets
import shlex
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from . import checkout, processes

START_SECONDS = 60
SETUP_SECONDS = 120
NICKNAME = "bench"
PASSWORD = "a benchmark password"
# Settings that must come from us alone, never from the shell that runs the benchmark.
FOREIGN_NAMES = {"DATABASE_URL", "SECRET_KEY", "PORT", "HOST", "REDIS_URL", "LOCAL_BROKER_FOLDER"}
FOREIGN_PREFIXES = ("FLACK_", "FLASK_", "GUNICORN_", "LINK_PREVIEW", "CELERY_")
# No proxy from the environment may see requests to 127.0.0.1.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

MESSAGE_TEMPLATES = [
    "Good morning! Has anyone tried the **new build** yet? It is message {n}.",
    "The deploy script now runs `make test` first, then `make serve`. ({n})",
    "Three things for today ({n}):\n\n1. review the migrations\n2. check the logs\n"
    "3. lunch",
    "> Is the chat up?\n\nIt is, and it answers in *milliseconds* on my laptop. ({n})",
    "Message {n}: a longer one, to look like real conversation. We talked about how the "
    "server handles many clients at once, and whether green threads help when every "
    "request needs the database and a little Python to turn rows into JSON.",
]


@dataclass(frozen=True)
class Server:
    """A way to serve a stage: the development server, or the Procfile's web process."""

    label: str
    kind: str  # "runserver", "procfile-web", or "gunicorn" (gunicorn_args alone, no config)
    gunicorn_args: str = ""  # GUNICORN_CMD_ARGS for the Procfile's gunicorn
    settings: tuple = ()  # (name, value) pairs of the environment this way of serving needs


@dataclass
class RunningApp:
    """A started app: its process group, address, and the environment it runs with."""

    server: Server
    process: object
    base_url: str
    log_path: Path
    env: dict


@dataclass
class RunningWorker:
    """A started Celery worker: its process group and its log."""

    process: object
    log_path: Path

    def problem(self):
        """Say why the worker stopped working, or return "" while it works."""
        log = self.log_path.read_text(errors="replace")
        critical = [line for line in log.splitlines() if "CRITICAL/" in line]
        if critical:  # Celery may log an unrecoverable error and then hang, not exit
            return critical[-1].split("] ", 1)[-1]
        if self.process.poll() is not None:
            return f"it exited with {self.process.returncode}"
        return ""


def free_port():
    """Return a loopback TCP port that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def app_env(stage_copy, server, port, database, settings=None):
    """Return the environment the app runs with: only the settings chosen here."""
    env = {name: value for name, value in checkout.make_env().items()
           if name not in FOREIGN_NAMES and not name.startswith(FOREIGN_PREFIXES)}
    venv_bin = stage_copy.venv / "bin"
    env.update(PATH=f"{venv_bin}{os.pathsep}{env.get('PATH', '')}",
               VIRTUAL_ENV=str(stage_copy.venv), DATABASE_URL=f"sqlite:///{database}",
               PORT=str(port), HOST="127.0.0.1")
    if server.kind == "runserver":
        env["FLACK_CONFIG"] = "development"
    else:  # the production settings, which need a secret key
        env.update(FLACK_CONFIG="production", SECRET_KEY=secrets.token_hex(32))
        if server.gunicorn_args and server.kind == "procfile-web":
            env["GUNICORN_CMD_ARGS"] = server.gunicorn_args
    env.update(server.settings)
    env.update(settings or {})
    return env


def procfile_processes(tree):
    """Return the stage's Procfile as {process type: command as a list}."""
    processes_found = {}
    for line in (tree / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if command.strip():
            processes_found[name.strip()] = shlex.split(command)
    return processes_found


def procfile_command(stage_copy, process_type):
    """Return the command of one process type in the stage's Procfile, resolved in its venv."""
    command = procfile_processes(stage_copy.tree).get(process_type)
    if command is None:
        raise RuntimeError(f"{stage_copy.tree / 'Procfile'} has no {process_type!r} process")
    program = stage_copy.venv / "bin" / command[0]
    return [program if program.exists() else command[0], *command[1:]]


def server_command(stage_copy, server, port):
    """Return the command that starts the server."""
    if server.kind == "runserver":
        return [stage_copy.python, "manage.py", "runserver", "--port", str(port)]
    if server.kind == "gunicorn":  # a worker that the stage's gunicorn.conf.py would refuse
        return [stage_copy.venv / "bin" / "gunicorn", "--bind", f"127.0.0.1:{port}",
                *shlex.split(server.gunicorn_args), "flack.wsgi:app"]
    return procfile_command(stage_copy, "web")


def setup_command(stage_copy, server):
    """Return the command that creates the tables: the Procfile's release, for its web."""
    if server.kind == "runserver":
        return [stage_copy.python, "manage.py", "db", "upgrade"]
    return procfile_command(stage_copy, "release")


def wait_until_up(app):
    """Wait until the app answers GET /api/stats, or raise RuntimeError."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if app.process.poll() is not None:
            raise RuntimeError(f"{app.server.label} exited with {app.process.returncode}:\n"
                               f"{app.log_path.read_text(errors='replace')[-3000:]}")
        try:
            with OPENER.open(f"{app.base_url}/api/stats", timeout=2):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise RuntimeError(f"{app.server.label} did not answer within {START_SECONDS} s "
                       f"(log: {app.log_path})")


@contextlib.contextmanager
def running(stage_copy, server, work_dir, settings=None):
    """Set up a fresh SQLite database, start the server, and stop it on the way out.

    settings are more environment variables for the app, such as LINK_PREVIEWS.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = app_env(stage_copy, server, port, work_dir / "flack.sqlite", settings)
    log_path = work_dir / "server.log"
    processes.run(setup_command(stage_copy, server), stage_copy.tree, env, log_path,
                  SETUP_SECONDS)
    process = processes.start(server_command(stage_copy, server, port), stage_copy.tree, env,
                              log_path)
    app = RunningApp(server, process, f"http://127.0.0.1:{port}", log_path, env)
    try:
        wait_until_up(app)
        yield app
    finally:
        processes.kill(process)


@contextlib.contextmanager
def worker_running(stage_copy, app, work_dir):
    """Start the Procfile's worker with the app's environment; stop it on the way out."""
    log_path = work_dir / "worker.log"
    process = processes.start(procfile_command(stage_copy, "worker"), stage_copy.tree,
                              app.env, log_path)
    worker = RunningWorker(process, log_path)
    try:
        wait_until_ready(worker)
        yield worker
    finally:
        processes.kill(process)


def wait_until_ready(worker):
    """Wait until the Celery worker logs that it is ready, or raise RuntimeError."""
    deadline = time.monotonic() + START_SECONDS
    while " ready." not in worker.log_path.read_text(errors="replace"):
        if worker.process.poll() is not None:
            raise RuntimeError(f"the worker exited with {worker.process.returncode}:\n"
                               f"{worker.log_path.read_text(errors='replace')[-3000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the worker was not ready within {START_SECONDS} s "
                               f"(log: {worker.log_path})")
        time.sleep(0.2)


def call(method, url, body=None, headers=None):
    """Send one JSON request and return the decoded answer."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Content-Type": "application/json", **(headers or {})})
    with OPENER.open(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def new_token(base_url, nickname=NICKNAME):
    """Register a user, get a token with its password, and return the token."""
    call("POST", f"{base_url}/api/users", {"nickname": nickname, "password": PASSWORD})
    basic = base64.b64encode(f"{nickname}:{PASSWORD}".encode()).decode()
    answer = call("POST", f"{base_url}/api/tokens", headers={"Authorization": f"Basic {basic}"})
    return answer["token"]


def login(base_url):
    """Register a user, get a token with its password, and return the Authorization header."""
    return {"Authorization": f"Bearer {new_token(base_url)}"}


def seed(base_url, messages=50):
    """Register a user, log in for a token, and post some Markdown messages as that user."""
    bearer = login(base_url)
    for n in range(messages):
        source = MESSAGE_TEMPLATES[n % len(MESSAGE_TEMPLATES)].format(n=n + 1)
        call("POST", f"{base_url}/api/messages", {"source": source}, headers=bearer)
