"""Fault injection: run the chat as production does, kill one of its processes, and check.

A FaultRun starts two gunicorns, a Celery worker, beat and nginx in front, on a Redis
of its own (never the machine's shared one, which it may kill) and a database. Browsers
(ChatClient: what static/js/app.js does, in Python) connect through nginx and to each
web process directly; a poster posts messages with a link to a slow page. Then one
process is killed, and, as a supervisor (systemd, Docker, Kubernetes) would, started
again. The run waits until every client has every message, each in its final
version (its previews shown, or given up), and reports what it found.

tests/test_faults.py asserts on it, and bench/ runs it against earlier stages too:
everything here takes the project folder (root) and its Python as arguments.
"""
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from base64 import b64encode
from pathlib import Path

import socketio

PASSWORD = "correct horse"
NGINX = shutil.which("nginx", path=f"{os.environ.get('PATH', '')}{os.pathsep}/usr/sbin")
REDIS_SERVER = shutil.which("redis-server")
# What each fault kills: gunicorn's worker (its master starts another), the Celery pool's
# processes (the worker starts others), or the whole of the worker, Redis or nginx.
FAULTS = ("web-worker", "celery-pool", "celery-main", "redis", "nginx")


# Quicker than in production, so that a run takes seconds, not minutes.
QUICK_SETTINGS = {
    "LINK_PREVIEW_ALLOW_PRIVATE": "1", "LINK_PREVIEW_RETRIES": "1",
    "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1",
    "PRESENCE_TIMEOUT": "10", "PRESENCE_CHECK_INTERVAL": "1",
    "PRESENCE_REFRESH_INTERVAL": "2", "HEARTBEAT_INTERVAL": "2",  # v0.18's name
    "LAST_SEEN_INTERVAL": "2",
    "LINK_PREVIEW_RESEND_AFTER": "5", "LINK_PREVIEW_GIVE_UP_AFTER": "40",
    "LINK_PREVIEW_REPAIR_INTERVAL": "1",
    # The poster posts five messages a second, as one user (v0.20's limits).
    "MESSAGE_LIMIT_PER_USER": "100 per second",
}


def free_port():
    """Return a loopback TCP port that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def neighbouring_ports():
    """Return a free port whose next port is free too, as honcho numbers its processes."""
    while True:
        port = free_port()
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port


def children(pid):
    """Return the ids of a process's child processes."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def wait_until(condition, seconds, what):
    """Wait until condition() is true; raise TimeoutError naming what did not happen."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {seconds} seconds")
        time.sleep(0.05)  # processes on their own clocks, not one a test could control


class Http:
    """JSON requests to one base URL, errors included, never raising for a status."""

    def __init__(self, base):
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def call(self, method, path, body=None, headers=(), timeout=10):
        """Send a request; return (status, JSON body), or (None, error) if none came."""
        headers = dict(headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.base + path, data=data, headers=headers,
                                         method=method)
        try:
            with self.opener.open(request, timeout=timeout) as response:
                text = response.read()
                return response.status, json.loads(text) if text else None
        except urllib.error.HTTPError as error:
            with error:
                return error.code, json.loads(error.read() or b"null")
        except (OSError, ValueError) as error:  # refused, reset, or cut short
            return None, str(error)

    def login(self, nickname):
        """Register a user and return a token."""
        status, _ = self.call("POST", "/api/users", {"nickname": nickname, "password": PASSWORD})
        assert status == 201, status
        basic = b64encode(f"{nickname}:{PASSWORD}".encode()).decode()
        status, body = self.call("POST", "/api/tokens", headers={"Authorization": f"Basic {basic}"})
        assert status == 200, status
        return body["token"]


class Service:
    """One process of the stack, started in a session of its own, its output in a file."""

    def __init__(self, name, command, env, root, folder):
        self.name, self.command, self.env, self.root = name, command, env, root
        self.log = folder / f"{name}.log"
        self.process = None
        self.start()

    def start(self):
        """Start the process (again)."""
        with self.log.open("a") as log:
            self.process = subprocess.Popen(self.command, cwd=self.root, env=self.env,
                                            stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def kill(self):
        """Kill the process and everything it started, at once (SIGKILL)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def alive(self):
        """Tell whether the process is still running."""
        return self.process.poll() is None

    def text(self):
        """Return what the process has logged so far."""
        return self.log.read_text(errors="replace")


class ChatClient:
    """A browser tab, as static/js/app.js behaves: connect, catch up, merge the pushes."""

    def __init__(self, base, token):
        self.http, self.token = Http(base), token
        self.messages = {}        # id -> the newest version seen
        self.cursor = None        # the largest change fetched through the API
        self.fetched_up_to = 0    # every change up to it is here...
        self.pushed_since = set() # ...and these, pushed after it
        self.lock = threading.Lock()
        self.refused = []         # the server's refusals: a session that ended
        self.server_closed = 0    # connections that the server closed
        self.catching_up = threading.Lock()
        self.client = socketio.Client(reconnection_delay=0.5, reconnection_delay_max=2)
        self.client.on("connect", lambda: self.catch_up_soon())
        self.client.on("connect_error", self.on_connect_error)
        self.client.on("disconnect", self.on_disconnect)
        self.client.on("message_changed", self.on_message_changed)
        self.client.on("user_changed", lambda user: self.note_pushed(user["change"]))
        self.client.on("latest_change", self.on_latest_change)
        self.client.connect(base, auth={"token": token}, transports=["websocket"],
                            wait_timeout=10)

    def on_connect_error(self, data):
        """Remember a refusal of the token; a server that does not answer is no refusal."""
        if isinstance(data, dict):  # the server's own answer, as the page reads it
            self.refused.append(data.get("message"))

    def on_disconnect(self, reason=None):
        """Count the connections that the server closed: only an ended session should."""
        if reason == self.client.reason.SERVER_DISCONNECT:
            self.server_closed += 1

    def on_message_changed(self, message):
        """Keep a pushed message, and its change number."""
        self.note_pushed(message["change"])
        self.merge([message])

    def note_pushed(self, change):
        """Remember the change number of a pushed row."""
        with self.lock:
            if change > self.fetched_up_to:
                self.pushed_since.add(change)

    def have_up_to(self, change):
        """Count every change up to this one as here."""
        with self.lock:
            self.fetched_up_to = max(self.fetched_up_to, change)
            self.pushed_since = {number for number in self.pushed_since
                                 if number > self.fetched_up_to}

    def on_latest_change(self, data):
        """Fetch what changed if a change up to the server's latest is missing here."""
        change = data["change"]
        with self.lock:
            if change <= self.fetched_up_to:
                return
            missing = set(range(self.fetched_up_to + 1, change + 1)) - self.pushed_since
        if missing:
            threading.Thread(target=self.catch_up, args=(change,), daemon=True).start()
        else:
            self.have_up_to(change)

    def merge(self, messages):
        """Keep the newer version of each message."""
        with self.lock:
            for message in messages:
                known = self.messages.get(message["id"])
                if known is None or message["change"] > known["change"]:
                    self.messages[message["id"]] = message

    def catch_up_soon(self):
        """Fetch what changed since the cursor, in a thread of its own."""
        threading.Thread(target=self.catch_up, daemon=True).start()

    def catch_up(self, seen=0):
        """Fetch every page of messages changed after the cursor; try again if none came.

        seen is a change number that counts as seen once the fetch worked.
        """
        with self.catching_up:
            for _ in range(200):  # 20 s at most of a server that does not answer
                after = "" if self.cursor is None else f"&after={self.cursor}"
                status, body = self.http.call("GET", f"/api/messages?limit=100{after}",
                                              headers={"Authorization": f"Bearer {self.token}"})
                if status == 401:
                    self.refused.append("401 from the API")
                    return
                if status != 200:
                    time.sleep(0.1)
                    continue
                self.merge(body["messages"])
                if body["messages"]:
                    self.cursor = max(message["change"] for message in body["messages"])
                if len(body["messages"]) < 100:
                    self.have_up_to(seen)
                    return

    def has_final(self, messages):
        """Tell whether this client shows each of these messages in its final version."""
        with self.lock:
            return all(self.messages.get(message["id"], {}).get("change") == message["change"]
                       for message in messages)

    def close(self):
        """Close the tab."""
        self.client.disconnect()


class Poster:
    """Post a message with a link every interval, to the web processes in turn."""

    def __init__(self, bases, token, link, interval=0.2, label="post"):
        self.webs = [Http(base) for base in bases]
        self.token, self.link, self.interval, self.label = token, link, interval, label
        self.created = []  # the messages whose POST answered 201
        self.failed = 0    # the POSTs that got no answer, or another status
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        """Post until stopped."""
        number = 0
        while not self.stopping.wait(self.interval):
            web = self.webs[number % len(self.webs)]
            status, body = web.call("POST", "/api/messages",
                                    {"source": f"{self.label} {number}: see {self.link}"},
                                    headers={"Authorization": f"Bearer {self.token}"}, timeout=5)
            if status == 201:
                self.created.append(body)
            else:
                self.failed += 1
            number += 1

    def stop(self):
        """Stop posting, and wait for the POST under way."""
        self.stopping.set()
        self.thread.join(timeout=10)


class SlowPage:
    """A page on this machine whose preview takes about a second to fetch."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}/slow"
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        """Answer every request, slowly."""
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:  # closed
                return
            threading.Thread(target=self.answer, args=(connection,), daemon=True).start()

    def answer(self, connection):
        """Send a page in pieces, over a second."""
        body = b"<html><head><title>A slow page</title></head><body>" + b" " * 64 + b"</body>"
        with contextlib.suppress(OSError), connection:
            connection.recv(4096)
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                               b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body))
            for start in range(0, len(body), len(body) // 10):
                time.sleep(0.1)
                connection.sendall(body[start:start + len(body) // 10])

    def close(self):
        self.server.close()


class FaultRun:
    """The chat as production runs it, on a Redis of its own, ready to have a part killed."""

    def __init__(self, root, python, folder, database_url=None):
        self.root, self.folder = Path(root), Path(folder)
        self.redis_port, self.nginx_port = free_port(), free_port()
        self.services = {}
        bin_folder = str(Path(python).parent)
        database_url = database_url or f"sqlite:///{self.folder}/chat.sqlite"
        self.env = {
            **os.environ, "PATH": f"{bin_folder}{os.pathsep}{os.environ['PATH']}",
            "FLACK_CONFIG": "production", "SECRET_KEY": "not secret",
            "DATABASE_URL": database_url, "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "BEAT_SCHEDULE_FILE": str(self.folder / "celerybeat-schedule"), **QUICK_SETTINGS,
        }
        self.env.pop("FLACK_TEST_REDIS_URL", None)
        self.start_redis()
        release = subprocess.run([python, "manage.py", "db", "upgrade"], cwd=self.root,
                                 env=self.env, capture_output=True, text=True, timeout=120)
        assert release.returncode == 0, release.stderr
        first = neighbouring_ports()
        self.web_ports = [first, first + 1]
        for number, port in enumerate(self.web_ports):
            self.add(f"web{number}", ["gunicorn", "-c", "gunicorn.conf.py", "flack.wsgi:app"],
                     PORT=str(port))
        self.add("worker", ["celery", "-A", "flack.worker", "worker", "--loglevel", "INFO"])
        self.add("beat", ["celery", "-A", "flack.worker", "beat", "--loglevel", "INFO"])
        self.start_nginx()
        self.webs = [Http(f"http://127.0.0.1:{port}") for port in self.web_ports]
        self.proxy = Http(f"http://127.0.0.1:{self.nginx_port}")
        for http in [*self.webs, self.proxy]:
            wait_until(lambda http=http: http.call("GET", "/api/stats")[0] == 200, 60,
                       f"{http.base} answering")
        wait_until(lambda: " ready." in self.services["worker"].text(), 60, "the worker ready")

    def add(self, name, command, **env):
        """Start a service of the stack."""
        self.services[name] = Service(name, command, {**self.env, **env}, self.root, self.folder)

    def start_redis(self):
        """Start (or start again) this run's own Redis, which keeps nothing on disk."""
        command = [REDIS_SERVER, "--port", str(self.redis_port), "--bind", "127.0.0.1",
                   "--save", "", "--appendonly", "no", "--dir", str(self.folder)]
        if "redis" in self.services:
            self.services["redis"].start()
        else:
            self.services["redis"] = Service("redis", command, self.env, self.root, self.folder)
        wait_until(self.redis_answers, 10, "Redis answering")

    def redis_answers(self):
        """Tell whether this run's Redis answers a PING."""
        with contextlib.suppress(OSError), socket.create_connection(
                ("127.0.0.1", self.redis_port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
        return False

    def start_nginx(self):
        """Start (or start again) nginx, as `make serve` configures it."""
        nginx_folder = self.folder / "nginx"
        if "nginx" not in self.services:
            subprocess.run([sys.executable, self.root / "deploy" / "local_nginx.py",
                            "--folder", nginx_folder, "--port", str(self.nginx_port),
                            "--web-processes", "2", "--first-web-port", str(self.web_ports[0])],
                           check=True)
            self.add("nginx", [NGINX, "-e", "stderr", "-p", nginx_folder, "-c", "nginx.conf"])
        else:
            self.services["nginx"].start()
        wait_until(lambda: self.proxy_answers(), 10, "nginx answering")

    def proxy_answers(self):
        """Tell whether nginx accepts connections."""
        with contextlib.suppress(OSError), socket.create_connection(
                ("127.0.0.1", self.nginx_port), timeout=1):
            return True
        return False

    def inject(self, fault):
        """Kill one part of the stack; return the function that starts it again, or None."""
        if fault == "web-worker":  # gunicorn's master starts a new worker by itself
            for pid in children(self.services["web0"].process.pid):
                os.kill(pid, signal.SIGKILL)
            return None
        if fault == "celery-pool":  # the worker's main process starts new ones by itself
            for pid in children(self.services["worker"].process.pid):
                os.kill(pid, signal.SIGKILL)
            return None
        service = {"celery-main": "worker", "redis": "redis", "nginx": "nginx"}[fault]
        self.services[service].kill()
        return {"worker": lambda: self.services["worker"].start(), "redis": self.start_redis,
                "nginx": self.start_nginx}[service]

    def messages(self):
        """Return every message, as the database has it now."""
        return messages_after(self.webs[1], 0)

    def stop(self):
        """Kill every process of the stack."""
        for service in self.services.values():
            service.kill()


def messages_after(http, after):
    """Return every message changed after a change number, as the database has it now."""
    messages = []
    while True:
        status, body = http.call("GET", f"/api/messages?limit=500&after={after}")
        assert status == 200, body
        messages += body["messages"]
        if len(body["messages"]) < 500:
            return messages
        after = body["messages"][-1]["change"]


def run_fault(stack, fault, link, clients_per_way=2, before=2.0, after=4.0, restart_after=1.0,
              settle=60.0):
    """Post, kill one part of the stack, restart it, and wait until everything settles.

    Return what happened: the messages posted (201) and stored, the clients' view, how
    long after the kill every client had every message in its final version (None if
    not within settle seconds), and which processes were still alive.
    """
    tokens = [stack.proxy.login(f"{fault}-{number}") for number in range(3)]
    bases = [stack.proxy.base] + [web.base for web in stack.webs]
    clients = [ChatClient(base, tokens[number % 3]) for number, base in
               enumerate(bases * clients_per_way)]
    # Its fault in each message: runs on one stack (tests/containers.py) post apart.
    poster = Poster([web.base for web in stack.webs], tokens[0], link, label=fault)
    try:
        time.sleep(before)  # the stack at work before the fault
        killed_at = time.monotonic()
        restart = stack.inject(fault)
        if restart:
            time.sleep(restart_after)  # as a supervisor waits before a restart
            restart()
        time.sleep(after)
        poster.stop()
        recovered = None
        deadline = time.monotonic() + settle
        while time.monotonic() < deadline:
            stored = stack.messages()
            final = all(not message["previews_pending"] for message in stored)
            if final and all(client.has_final(stored) for client in clients):
                recovered = time.monotonic() - killed_at
                break
            time.sleep(0.2)
        stored = stack.messages()
        return {
            "fault": fault,
            "posted": [message["id"] for message in poster.created],
            "posts_failed": poster.failed,
            "stored": stored,
            "pending": [message["id"] for message in stored if message["previews_pending"]],
            "clients_missing": [len({message["id"] for message in stored} - set(client.messages))
                                for client in clients],
            "refused": [client.refused for client in clients],
            "server_closed": [client.server_closed for client in clients],
            "tokens_valid": [stack.proxy.call("GET", "/api/users", headers={
                "Authorization": f"Bearer {token}"})[0] == 200 for token in tokens],
            "recovered_after": recovered,
            "alive": {name: service.alive() for name, service in stack.services.items()},
        }
    finally:
        poster.stop()
        for client in clients:
            with contextlib.suppress(Exception):
                client.close()


def check_nothing_lost(result):
    """Assert that a run_fault() result lost, stuck and logged out nothing."""
    stored_ids = [message["id"] for message in result["stored"]]
    sources = [message["source"] for message in result["stored"]]
    assert result["posted"], "nothing was posted"
    assert set(result["posted"]) <= set(stored_ids)  # every 201 is stored...
    assert len(sources) == len(set(sources))  # ...once
    assert result["pending"] == []  # every preview reached its final version
    assert result["recovered_after"] is not None, (
        "the clients did not all catch up: " + json.dumps({key: result[key] for key in (
            "clients_missing", "refused", "server_closed", "tokens_valid", "alive")}))
    assert result["clients_missing"] == [0] * len(result["clients_missing"])
    assert result["refused"] == [[]] * len(result["refused"])  # nobody logged out
    assert result["server_closed"] == [0] * len(result["server_closed"])
    assert all(result["tokens_valid"])
    # What was killed is back; nothing else stopped.
    assert all(result["alive"].values()), result["alive"]
