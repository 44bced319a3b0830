"""Production servers: the Procfile's gunicorn, with gevent, and nginx in front.

Everything here is a real process: gunicorn runs the Procfile's web command, and
nginx runs deploy/nginx.conf. gevent is only ever imported inside gunicorn's worker,
never in the test process, whose Socket.IO clients use threads.
"""
import base64
import contextlib
import http.client
import json
import os
import queue
import shlex
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import socketio
import websocket

from tests.helpers import (
    PACKAGE,
    PASSWORD,
    REDIS_URL,
    ROOT,
    LocalWeb,
    free_port,
    html_page,
    needs_redis,
    redis_url,
    wait_for_server,
)

pytestmark = pytest.mark.servers  # slow: `make test-all` runs them, `make test` does not

# The worker classes, and the GUNICORN_CMD_ARGS that choose them: gevent is the Procfile's.
WORKERS = {"gevent": ""}
# Debian installs nginx in /usr/sbin, which is not on every user's PATH.
NGINX = shutil.which("nginx", path=f"{os.environ.get('PATH', '')}{os.pathsep}/usr/sbin")
OPENSSL = shutil.which("openssl")
needs_nginx = pytest.mark.skipif(
    NGINX is None or OPENSSL is None,
    reason="needs the nginx and openssl commands (Debian: apt-get install nginx openssl)")


def procfile_command(process_type, procfile="Procfile"):
    """Return the command of a process type in a Procfile, split into arguments."""
    for line in (ROOT / procfile).read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == process_type:
            return shlex.split(command)
    pytest.fail(f"{procfile} has no {process_type} process")


def prepare_database(env):
    """Run the Procfile's release process, which creates the tables of env's database."""
    result = subprocess.run(procfile_command("release"), cwd=ROOT, env=env,
                            text=True, capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr


class Client:
    """Send JSON requests to a server and read its JSON answers, errors included."""

    def __init__(self, base, opener):
        self.base = base
        self.opener = opener

    def call(self, method, path, body=None, headers=()):
        """Send a request; body is JSON unless it is bytes. Return the status and JSON."""
        headers = dict(headers)
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.base + path, data=body, headers=headers,
                                         method=method)
        try:
            with self.opener.open(request, timeout=10) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            with error:
                assert error.headers.get_content_type() == "application/json"
                return error.code, json.load(error)

    def login(self, nickname="susan"):
        """Register a user, get a token, and return the Authorization header."""
        status, _ = self.call("POST", "/api/users", {"nickname": nickname, "password": PASSWORD})
        assert status == 201
        basic = base64.b64encode(f"{nickname}:{PASSWORD}".encode()).decode()
        status, body = self.call("POST", "/api/tokens", headers={"Authorization": f"Basic {basic}"})
        assert status == 200
        return {"Authorization": f"Bearer {body['token']}"}


class Browser:
    """A Socket.IO connection, as a browser holds one, and the events it receives."""

    def __init__(self, base, auth, **options):
        self.events = queue.Queue()
        self.client = socketio.Client(reconnection=False, **options)
        for name in ("message_changed", "user_changed", "stats"):
            self.client.on(name, lambda data, name=name: self.events.put((name, data)))
        token = auth["Authorization"].removeprefix("Bearer ")
        self.client.connect(base, auth={"token": token}, transports=["websocket"],
                            wait_timeout=10)

    def next(self, event_name, seconds=20):
        """Wait for the next event of that name, and return its data."""
        deadline = time.monotonic() + seconds
        while True:
            name, data = self.events.get(timeout=max(0, deadline - time.monotonic()))
            if name == event_name:
                return data

    def drain(self):
        """Return the events received and not read yet, without waiting for more."""
        events = []
        while not self.events.empty():
            events.append(self.events.get())
        return events

    def close(self):
        """Close the connection, as a browser tab closes."""
        self.client.disconnect()


def production_env(tmp_path, **settings):
    """Return the environment of a production process with its database in tmp_path."""
    return {**os.environ, "FLACK_CONFIG": "production", "SECRET_KEY": "not secret",
            "DATABASE_URL": f"sqlite:///{tmp_path}/chat.sqlite",
            "BEAT_SCHEDULE_FILE": str(tmp_path / "celerybeat-schedule"),
            # Without Redis, a folder as the broker: these processes share one machine.
            "LOCAL_BROKER_FOLDER": str(tmp_path / "broker"),
            # The Procfile's commands are looked up on the PATH: this virtualenv first.
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            # Load tests register and log in hundreds of users from one address;
            # tests/test_limits.py tests the limits.
            "RATELIMIT_ENABLED": "0",
            **settings}


class Process:
    """A process of a Procfile, started with its output in tmp_path."""

    def __init__(self, tmp_path, process_type, env, procfile="Procfile", name=None):
        self.log = tmp_path / f"{name or process_type}.out"
        self.errors = tmp_path / f"{name or process_type}.err"
        command = procfile_command(process_type, procfile)
        with self.log.open("w") as out, self.errors.open("w") as err:
            # A session of its own, so that the test can find every process it starts.
            self.process = subprocess.Popen(command, cwd=ROOT, env=env,
                                            stdout=out, stderr=err, start_new_session=True)

    def kill(self):
        """Kill whatever is left of the process and its children."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()


class Gunicorn(Process):
    """The Procfile's web process, on a free port and with a new database."""

    def __init__(self, tmp_path, worker_args, **settings):
        self.port = free_port()
        env = production_env(tmp_path, HOST="127.0.0.1", PORT=str(self.port),
                             GUNICORN_CMD_ARGS=worker_args, **settings)
        prepare_database(env)
        super().__init__(tmp_path, "web", env)
        base = f"http://127.0.0.1:{self.port}"
        self.client = Client(base, wait_for_server(f"{base}/api/stats", self.process))


@pytest.fixture(scope="module", params=WORKERS)
def gunicorn(request, tmp_path_factory):
    """A running gunicorn with each worker class in turn, shared by this module's tests."""
    server = Gunicorn(tmp_path_factory.mktemp(request.param), WORKERS[request.param])
    yield server
    server.kill()


@pytest.fixture(params=WORKERS)
def own_gunicorn(request, tmp_path):
    """A running gunicorn with each worker class in turn, for one test that stops it."""
    server = Gunicorn(tmp_path, WORKERS[request.param])
    yield server
    server.kill()


def test_gunicorn_serves_the_api(gunicorn):
    client = gunicorn.client
    auth = client.login("serves")
    status, message = client.call("POST", "/api/messages", {"source": "hello"}, auth)
    assert status == 201
    status, body = client.call("GET", "/api/messages")
    assert status == 200
    assert {"id": message["id"], "source": "hello"}.items() <= body["messages"][-1].items()


def test_gunicorn_answers_bad_requests_with_json_errors(gunicorn):
    client = gunicorn.client
    auth = client.login("errors")
    json_header = {"Content-Type": "application/json"}
    too_large = json.dumps({"source": "x" * 70_000}).encode()
    assert client.call("POST", "/api/messages", b"hello", auth)[0] == 415
    assert client.call("POST", "/api/messages", b"{", {**auth, **json_header})[0] == 400
    assert client.call("POST", "/api/messages", {}, auth)[0] == 400
    assert client.call("POST", "/api/messages", too_large, {**auth, **json_header})[0] == 413
    assert client.call("POST", "/api/messages", {"source": "hi"})[0] == 401
    bad_token = {"Authorization": "Bearer not-a-token"}
    assert client.call("POST", "/api/messages", {"source": "hi"}, bad_token)[0] == 401
    assert client.call("GET", "/api/users/999")[0] == 404
    assert "Traceback" not in gunicorn.errors.read_text()


def test_a_websocket_message_larger_than_a_token_closes_the_connection(gunicorn):
    client = gunicorn.client
    token = client.login("sends-too-much")["Authorization"].removeprefix("Bearer ")
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{gunicorn.port}/socket.io/?EIO=4&transport=websocket", timeout=10,
        origin=client.base)
    try:
        assert ws.recv().startswith("0{")  # Engine.IO's handshake
        ws.send("40" + json.dumps({"token": token}))  # Socket.IO's connect, with the token
        while not ws.recv().startswith("40{"):  # connected; the statistics may come first
            pass
        with contextlib.suppress(OSError, websocket.WebSocketConnectionClosedException):
            ws.send("42" + json.dumps(["still_here", "x" * 5000]))  # over 4,096 bytes
            while ws.recv():  # what the server sent before it closed, such as statistics
                pass
    finally:
        ws.close()
        ws.shutdown()  # close() leaves the socket open once the server has closed first

    def online():
        users = client.call("GET", "/api/users")[1]["users"]
        return next(user for user in users if user["nickname"] == "sends-too-much")["online"]

    deadline = time.monotonic() + 10
    while online():  # the server closed the connection: its only one, so its user left
        assert time.monotonic() < deadline, "the connection is still open"
        time.sleep(0.1)  # another process's clock
    assert "Traceback" not in gunicorn.errors.read_text()


def test_gunicorn_pushes_over_websockets(gunicorn):
    client = gunicorn.client
    susan, david = client.login("pushed-to"), client.login("pushing")
    browser = Browser(client.base, susan)
    try:
        assert browser.client.transport() == "websocket"
        assert browser.next("stats")["requests_per_second"] > 0
        status, message = client.call("POST", "/api/messages", {"source": "pushed"}, david)
        assert status == 201
        assert browser.next("message_changed") == message
    finally:
        browser.close()
    assert "Traceback" not in gunicorn.errors.read_text()


def open_websocket(port, origin):
    """Open a WebSocket to Socket.IO, offering to compress its messages as browsers do."""
    return websocket.create_connection(
        f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket", timeout=10,
        origin=origin, header=["Sec-WebSocket-Extensions: permessage-deflate; "
                               "client_max_window_bits"])


def test_gunicorn_declines_to_compress_websocket_messages(gunicorn):
    ws = open_websocket(gunicorn.port, gunicorn.client.base)
    try:
        assert "sec-websocket-extensions" not in ws.getheaders()
        assert ws.recv().startswith("0{")  # Engine.IO's handshake, uncompressed
    finally:
        ws.close()


def test_websocket_compression_can_be_turned_on(tmp_path):
    server = Gunicorn(tmp_path, WORKERS["gevent"], WEBSOCKET_COMPRESSION="true")
    try:
        ws = open_websocket(server.port, server.client.base)
        # Agreed: every message would now come compressed, which this client cannot read.
        assert ws.getheaders()["sec-websocket-extensions"].startswith("permessage-deflate")
        ws.shutdown()
    finally:
        server.kill()


@pytest.mark.parametrize("arguments, refusal", [
    ("--worker-class sync", "not 'sync'"),
    ("--worker-class gthread", "not 'gthread'"),
    ("--workers 2", "run more gunicorns instead"),
])
def test_gunicorn_refuses_what_socketio_cannot_use(tmp_path, arguments, refusal):
    env = production_env(tmp_path, PORT=str(free_port()), GUNICORN_CMD_ARGS=arguments)
    result = subprocess.run(procfile_command("web"), cwd=ROOT, env=env, text=True,
                            capture_output=True, timeout=60)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith("Error: Flack runs")
    assert refusal in result.stderr


def test_todays_gunicorn_has_no_eventlet_worker(tmp_path):
    # Flack ran on it up to v0.20; gunicorn 26 removed it, and refuses it by name.
    env = production_env(tmp_path, PORT=str(free_port()),
                         GUNICORN_CMD_ARGS="--worker-class eventlet")
    result = subprocess.run(procfile_command("web"), cwd=ROOT, env=env, text=True,
                            capture_output=True, timeout=60)
    assert result.returncode != 0
    assert "class uri 'eventlet' invalid or not found" in result.stderr


def test_gunicorn_stops_cleanly_on_sigterm(own_gunicorn):
    own_gunicorn.client.login()
    os.kill(own_gunicorn.process.pid, signal.SIGTERM)
    assert own_gunicorn.process.wait(timeout=5) == 0
    with pytest.raises(ProcessLookupError):  # its workers are gone too
        os.killpg(own_gunicorn.process.pid, 0)
    assert "Traceback" not in own_gunicorn.errors.read_text()


def replace(text, old, new):
    """Replace a piece of text that must be there."""
    assert old in text, f"deploy/nginx.conf no longer has {old!r}"
    return text.replace(old, new)


def nginx_config(tmp_path, upstream_port):
    """Write deploy/nginx.conf for this machine into tmp_path, and return the addresses.

    The site gets a self-signed certificate, the package's static folder, free
    ports on the loopback address and its upstream's port, and a main nginx.conf
    that keeps all of nginx's files in tmp_path.
    """
    subprocess.run([OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                    "-subj", "/CN=flack.example.com", "-keyout", tmp_path / "privkey.pem",
                    "-out", tmp_path / "fullchain.pem"], check=True, capture_output=True)
    http_port, https_port = free_port(), free_port()
    site = (ROOT / "deploy" / "nginx.conf").read_text()
    site = replace(site, "/etc/letsencrypt/live/flack.example.com/", f"{tmp_path}/")
    site = replace(site, "/srv/flack/flack/static/", f"{PACKAGE}/static/")
    site = replace(site, "server 127.0.0.1:5000;", f"server 127.0.0.1:{upstream_port};")
    site = replace(site, "server 127.0.0.1:5001;", "")  # one gunicorn is enough here
    site = replace(site, "listen 80;", f"listen 127.0.0.1:{http_port};")
    site = replace(site, "listen 443 ", f"listen 127.0.0.1:{https_port} ")
    # Only the loopback address, and this machine may have no IPv6.
    site = "\n".join(line for line in site.splitlines() if "listen [::]" not in line)
    (tmp_path / "site.conf").write_text(site)
    temp_paths = "\n".join(f"    {kind}_temp_path {tmp_path}/{kind};"
                           for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    # One process in the foreground, running as this user, with Flack's top-level
    # settings included as Debian's nginx.conf includes them.
    (tmp_path / "nginx.conf").write_text(f"""\
daemon off;
master_process off;
pid {tmp_path}/nginx.pid;
error_log stderr;
include {ROOT}/deploy/nginx-main.conf;
events {{}}
http {{
    access_log off;
{temp_paths}
    include {tmp_path}/site.conf;
}}
""")
    return http_port, https_port


def nginx_command(tmp_path, *args):
    """Return the command that runs nginx with the configuration in tmp_path."""
    return [NGINX, "-e", "stderr", "-p", tmp_path, "-c", tmp_path / "nginx.conf", *args]


@needs_nginx
def test_nginx_accepts_the_site_config(tmp_path):
    nginx_config(tmp_path, free_port())
    result = subprocess.run(nginx_command(tmp_path, "-t"), text=True, capture_output=True,
                            timeout=30)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr
    assert "[warn]" not in result.stderr and "[emerg]" not in result.stderr


@needs_nginx
@pytest.mark.parametrize("gunicorn", ["gevent"], indirect=True)
def test_nginx_serves_the_chat_over_https(gunicorn, tmp_path):
    http_port, https_port = nginx_config(tmp_path, gunicorn.port)
    server = subprocess.Popen(nginx_command(tmp_path), stderr=subprocess.PIPE, text=True)
    browser = None
    try:
        unverified = ssl.create_default_context()  # the certificate is self-signed
        unverified.check_hostname = False
        unverified.verify_mode = ssl.CERT_NONE
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                             urllib.request.HTTPSHandler(context=unverified))
        base = f"https://127.0.0.1:{https_port}"
        client = Client(base, wait_for_server(f"{base}/api/stats", server, opener=opener))
        auth = client.login("through-nginx")
        status, body = client.call("GET", "/api/users", headers=auth)
        assert status == 200 and "through-nginx" in [user["nickname"] for user in body["users"]]
        with opener.open(f"{base}/api/stats", timeout=10) as response:
            assert response.headers["Strict-Transport-Security"]
        # The static files come from the disk: gunicorn never sees them.
        with opener.open(f"{base}/static/css/flack.css", timeout=10) as response:
            assert response.read() == (PACKAGE / "static" / "css" / "flack.css").read_bytes()
        requests_seen = gunicorn.errors.read_text()  # the app's line for each request
        assert "/api/users" in requests_seen and "/static/" not in requests_seen
        # A body too large for Flask, but not for nginx: the app's JSON 413.
        too_large = json.dumps({"source": "x" * 70_000}).encode()
        headers = {**auth, "Content-Type": "application/json"}
        assert client.call("POST", "/api/messages", too_large, headers)[0] == 413
        # Socket.IO through nginx: upgraded to a WebSocket, and from a page of this
        # site, as gunicorn learns from X-Forwarded-Proto and Host.
        # The browser stays connected until nginx has stopped: python-engineio's
        # disconnect() sends the WebSocket close frame before its writer thread sends
        # the Socket.IO and Engine.IO goodbyes, which gunicorn then never reads, so it
        # resets the connection as it closes it; and websocket-client's reader thread
        # may answer gunicorn's close frame with a second one, which nginx then writes
        # into that reset connection: "send() failed (32: Broken pipe)" in its log.
        browser = Browser(base, auth, ssl_verify=False)
        assert browser.client.transport() == "websocket"
        status, message = client.call("POST", "/api/messages", {"source": "tls"}, auth)
        assert browser.next("message_changed") == message
        own_page = {"Origin": base}
        with opener.open(urllib.request.Request(f"{base}/socket.io/?EIO=4&transport=polling",
                                                headers=own_page)) as response:
            assert response.status == 200
        with pytest.raises(urllib.error.HTTPError) as refused:
            opener.open(urllib.request.Request(f"{base}/socket.io/?EIO=4&transport=polling",
                                               headers={"Origin": "https://evil.example"}))
        assert refused.value.code == 400
        refused.value.close()
        plain = http.client.HTTPConnection("127.0.0.1", http_port, timeout=10)
        plain.request("GET", "/api/users")
        response = plain.getresponse()
        plain.close()
        assert response.status == 301
        assert response.headers["Location"] == "https://127.0.0.1/api/users"
    finally:
        server.terminate()
        _, errors = server.communicate(timeout=10)
        if browser is not None:
            browser.close()
    assert "[error]" not in errors and "[emerg]" not in errors


class Worker(Process):
    """A Procfile's Celery worker, for the same database and broker as a web process."""

    def __init__(self, tmp_path, env, procfile):
        super().__init__(tmp_path, "worker", env, procfile)
        deadline = time.monotonic() + 30
        while " ready." not in self.errors.read_text():  # Celery logs to stderr
            assert self.process.poll() is None, self.errors.read_text()
            assert time.monotonic() < deadline, "the worker did not start"
            time.sleep(0.1)  # a process starting up, not a clock a test could control


class Web(Process):
    """A Procfile's web process on a free port, and a client for it."""

    def __init__(self, tmp_path, env, procfile, name="web", port=None):
        self.port = port = port or free_port()
        super().__init__(tmp_path, "web", {**env, "PORT": str(port)}, procfile, name)
        base = f"http://127.0.0.1:{port}"
        self.client = Client(base, wait_for_server(f"{base}/api/stats", self.process))


# Three ways to run the web and worker processes: the Procfile in production, with a
# folder or Redis as the broker, and `make run`'s Procfile.dev, in development.
STACKS = {
    "folder": ("Procfile", {}),
    "redis": ("Procfile", {"REDIS_URL": redis_url()} if REDIS_URL else {}),
    "make-run": ("Procfile.dev", {"FLACK_CONFIG": "development"}),
}


@pytest.fixture(params=["folder", pytest.param("redis", marks=needs_redis), "make-run"])
def web_and_worker(request, tmp_path):
    """A web process and a Celery worker sharing a broker, allowed to preview local pages."""
    procfile, settings = STACKS[request.param]
    env = production_env(tmp_path, LINK_PREVIEW_ALLOW_PRIVATE="1", **settings)
    prepare_database(env)
    web = Web(tmp_path, env, procfile)
    worker = Worker(tmp_path, env, procfile)
    yield web, worker
    worker.kill()
    web.kill()


def test_previews_arrive_from_the_worker_after_the_post(web_and_worker):
    web, worker = web_and_worker
    page = LocalWeb()
    try:
        # The page answers only when the test lets it: a POST that waited for it
        # would still be waiting, and fail at the client's timeout.
        page.page("/slow", html_page("Worth the wait").encode(), wait=True)
        auth = web.client.login("poster")
        browser = Browser(web.client.base, auth)
        status, message = web.client.call("POST", "/api/messages",
                                          {"source": f"see {page.url('/slow')}"}, auth)
        assert status == 201
        assert message["previews_pending"] is True
        assert "<blockquote>" not in message["html"]
        assert browser.next("message_changed") == message
        page.release.set()
        # The worker's change travels through the message queue to the web process,
        # which pushes it to its browsers.
        pushed = browser.next("message_changed")
        assert pushed == web.client.call("GET", f"/api/messages/{message['id']}")[1]
        assert "Worth the wait" in pushed["html"] and pushed["previews_pending"] is False
        assert pushed["change"] > message["change"]
        assert pushed["edited_at"] is None
        browser.close()
    finally:
        page.close()
    assert "Traceback" not in worker.errors.read_text()


@pytest.mark.parametrize("procfile, process_type", [
    ("Procfile", "web"), ("Procfile", "worker"), ("Procfile.dev", "web")])
def test_an_unreachable_broker_stops_the_start_with_a_clear_error(tmp_path, procfile,
                                                                  process_type):
    env = production_env(tmp_path, REDIS_URL=f"redis://:secret@127.0.0.1:{free_port()}/0",
                         PORT=str(free_port()))
    prepare_database(env)
    result = subprocess.run(procfile_command(process_type, procfile), cwd=ROOT, env=env,
                            text=True, capture_output=True, timeout=60)
    assert result.returncode != 0
    assert "REDIS_URL: the broker at redis://:**@127.0.0.1:" in result.stderr  # ** hides it
    assert "secret" not in result.stderr  # the URL's password stays out of the logs
    if process_type == "worker" or procfile == "Procfile.dev":
        # One line; gunicorn reports a worker that fails to boot in its own way.
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@needs_redis
def test_two_web_processes_share_statistics_and_one_beat_sweeps_for_both(tmp_path):
    env = production_env(tmp_path, REDIS_URL=redis_url(),
                         REDIS_PREFIX=f"test-{tmp_path.name}:",  # counts of this test only
                         STATS_WINDOW="100",  # one request is 0.01 requests per second
                         PRESENCE_TIMEOUT="1", PRESENCE_CHECK_INTERVAL="0.2",
                         PRESENCE_REFRESH_INTERVAL="0.5", LAST_SEEN_INTERVAL="0.5")
    prepare_database(env)
    processes = []
    try:
        for number in (1, 2):
            processes.append(Web(tmp_path, env, "Procfile", name=f"web{number}"))
        processes.append(Worker(tmp_path, env, "Procfile"))
        processes.append(Process(tmp_path, "beat", env))
        first, second, worker, _ = processes

        # Statistics: the requests that one process answers count in the other's figure.
        def stats(web):
            return web.client.call("GET", "/api/stats")[1]["requests_per_second"]

        before = stats(first)
        for _ in range(12):
            second.client.call("GET", "/api/users")
        assert round(stats(first) - before, 2) == 0.13  # the 12, and this request itself

        # Presence: a user seen by one process goes offline once, by the one sweep.
        auth = first.client.login("idle")
        assert second.client.call("GET", "/api/users", headers=auth)[0] == 200

        def idle_user():
            return next(user for user in first.client.call("GET", "/api/users")[1]["users"]
                        if user["nickname"] == "idle")

        deadline = time.monotonic() + 20
        while idle_user()["online"]:
            assert time.monotonic() < deadline, "the user is still online"
            time.sleep(0.1)  # the sweeps, every 0.2 seconds
        went_offline = idle_user()["change"]
        sweeps = worker.errors.read_text().count("mark_offline_users")
        while worker.errors.read_text().count("mark_offline_users") < sweeps + 6:
            assert time.monotonic() < deadline + 20, "the sweeps stopped"
            time.sleep(0.1)
        assert idle_user()["change"] == went_offline  # later sweeps leave the user alone
    finally:
        for process in processes:
            process.kill()
    for process in processes:
        assert "Traceback" not in process.errors.read_text(), process.errors.name
