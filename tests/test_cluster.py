"""Several web processes behind nginx, as `make serve` runs them, behaving as one chat.

Real processes: two gunicorns, a Celery worker, beat and nginx, on one database and
one Redis. The Socket.IO clients of these tests connect to a gunicorn directly when a
test must know which process holds them; a browser goes through nginx.
"""
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import socketio

from tests.conftest import postgres_schema
from tests.faults import neighbouring_ports
from tests.helpers import (
    POSTGRES_URL,
    ROOT,
    LocalWeb,
    free_port,
    html_page,
    needs_redis,
    redis_url,
    wait_for_server,
)
from tests.test_servers import (
    NGINX,
    Browser,
    Client,
    Process,
    Web,
    Worker,
    needs_nginx,
    prepare_database,
    production_env,
)

pytestmark = [pytest.mark.servers, needs_redis, needs_nginx]


class Nginx:
    """nginx as `make serve` runs it, in front of web processes on these ports."""

    def __init__(self, tmp_path, web_ports, sticky=True):
        self.port = free_port()
        folder = tmp_path / "nginx"
        subprocess.run([sys.executable, ROOT / "deploy" / "local_nginx.py", "--folder", folder,
                        "--port", str(self.port), "--web-processes", str(len(web_ports)),
                        "--first-web-port", str(web_ports[0])], check=True)
        config = folder / "nginx.conf"
        if not sticky:  # to show what goes wrong without it
            config.write_text(config.read_text().replace("ip_hash;", ""))
        self.process = subprocess.Popen([NGINX, "-e", "stderr", "-p", folder, "-c", config],
                                        stderr=subprocess.PIPE, text=True)
        self.base = f"http://127.0.0.1:{self.port}"
        self.client = Client(self.base, wait_for_server(f"{self.base}/api/stats", self.process))

    def stop(self):
        """Stop nginx, and return what it logged."""
        self.process.terminate()
        return self.process.communicate(timeout=10)[1]


class Cluster:
    """Two web processes on neighbouring ports, a worker, beat, and nginx in front."""

    def __init__(self, tmp_path, database_url, sticky=True, **settings):
        self.tmp_path = tmp_path
        self.env = production_env(
            tmp_path, REDIS_URL=redis_url(), REDIS_PREFIX=f"test-{tmp_path.name}:",
            LINK_PREVIEW_ALLOW_PRIVATE="1", STATS_WINDOW="100",
            # Hundreds of users log in: a quick hash, as in the tests' own settings.
            PASSWORD_HASH_METHOD="pbkdf2:sha256:1",
            **({"DATABASE_URL": database_url} if database_url else {}), **settings)
        prepare_database(self.env)
        self.processes = []
        first_port = neighbouring_ports()
        self.webs = [self.start_web(number, first_port + number) for number in (0, 1)]
        self.processes.append(Worker(tmp_path, self.env, "Procfile"))
        self.processes.append(Process(tmp_path, "beat", self.env))
        self.nginx = Nginx(tmp_path, [first_port, first_port + 1], sticky)

    def start_web(self, number, port):
        """Start web process number on a port, as honcho does, and return it."""
        web = Web(self.tmp_path, {**self.env, "PORT": str(port)}, "Procfile",
                  name=f"web{number}", port=port)
        self.processes.append(web)
        return web

    def stop(self):
        """Stop every process; fail if one of them logged a traceback."""
        logged = self.nginx.stop()
        for process in self.processes:
            process.kill()
        assert "[emerg]" not in logged
        for process in self.processes:
            assert "Traceback" not in process.errors.read_text(), process.errors.name


@contextlib.contextmanager
def cluster_running(tmp_path, sticky=True):
    """Run a cluster on a new PostgreSQL schema if there is a server, else on SQLite."""
    with postgres_schema() if POSTGRES_URL else contextlib.nullcontext() as database_url:
        cluster = Cluster(tmp_path, database_url, sticky)
        try:
            yield cluster
        finally:
            cluster.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A cluster that this module's tests share: they stop none of its processes."""
    with cluster_running(tmp_path_factory.mktemp("cluster")) as cluster:
        yield cluster


@pytest.fixture
def own_cluster(tmp_path):
    """A cluster for one test, which may stop its processes."""
    with cluster_running(tmp_path) as cluster:
        yield cluster


def next_change_of(browser, nickname):
    """Wait for the next change of a user that a browser is pushed, and return the user."""
    while (user := browser.next("user_changed"))["nickname"] != nickname:
        pass
    return user


def test_clients_of_two_processes_see_each_others_messages_presence_and_previews(cluster):
    first, second = cluster.webs
    page = LocalWeb()
    browsers = []
    try:
        susan = first.client.login("susan")
        on_first = Browser(first.client.base, susan)
        browsers.append(on_first)
        # Presence: david logs in through the second process; the first one pushes it.
        david = second.client.login("david")
        assert next_change_of(on_first, "david")["online"] is False  # registered
        assert next_change_of(on_first, "david")["online"] is True  # logged in
        on_second = Browser(second.client.base, david)
        through_nginx = Browser(cluster.nginx.base, susan)
        browsers += [on_second, through_nginx]
        # Messages: posted to one process, pushed by both.
        status, message = first.client.call("POST", "/api/messages", {"source": "hi"}, susan)
        assert status == 201
        for browser in (on_first, on_second, through_nginx):
            assert browser.next("message_changed") == message
        # Previews: added by the worker, pushed by both processes through Redis.
        page.page("/page", html_page("Shared").encode())
        status, message = second.client.call(
            "POST", "/api/messages", {"source": f"see {page.url('/page')}"}, david)
        assert message["previews_pending"] is True
        for browser in (on_first, on_second):
            assert browser.next("message_changed") == message
            with_preview = browser.next("message_changed")
            assert with_preview["id"] == message["id"] and "Shared" in with_preview["html"]
        # Going offline: david's last browser closes on the second process.
        on_second.close()
        browsers.remove(on_second)
        assert next_change_of(on_first, "david")["online"] is False
    finally:
        for browser in browsers:
            browser.close()
        page.close()


def test_nginx_keeps_each_client_on_one_process(cluster):
    # Long polling, as a browser starts, sends several requests: all reach one process.
    client = socketio.Client(reconnection=False)
    auth = cluster.nginx.client.login("polling")
    client.connect(cluster.nginx.base, auth={"token": auth["Authorization"][7:]},
                   transports=["polling"], wait_timeout=10)
    client.disconnect()


def test_without_sticky_sessions_a_polling_client_cannot_connect(tmp_path):
    with cluster_running(tmp_path, sticky=False) as cluster:
        auth = cluster.nginx.client.login()
        refused = 0
        for _ in range(4):  # nginx takes the processes in turn: a request lands elsewhere
            client = socketio.Client(reconnection=False)
            try:
                client.connect(cluster.nginx.base, auth={"token": auth["Authorization"][7:]},
                               transports=["polling"], wait_timeout=5)
            except socketio.exceptions.ConnectionError:
                refused += 1
            finally:
                client.disconnect()
        assert refused == 4


def test_without_a_message_queue_each_process_pushes_only_to_its_own(tmp_path):
    # Tasks in the request, no Redis and no folder: no message queue at all.
    env = production_env(tmp_path, CELERY_BROKER_URL="memory://", CELERY_TASK_ALWAYS_EAGER="1")
    del env["LOCAL_BROKER_FOLDER"]
    prepare_database(env)
    first, second = (Web(tmp_path, env, "Procfile", name=f"web{number}") for number in (0, 1))
    try:
        auth = first.client.login()
        listener = Browser(second.client.base, auth)
        lost = first.client.call("POST", "/api/messages", {"source": "lost"}, auth)[1]
        # Posted after the first one was committed and pushed, to the listener's process.
        seen = second.client.call("POST", "/api/messages", {"source": "seen"}, auth)[1]
        assert listener.next("message_changed") == seen
        pushed = [data for name, data in listener.drain() if name == "message_changed"]
        assert lost not in pushed
        listener.close()
    finally:
        first.kill()
        second.kill()


def load_clients(servers, clients, messages_each, per_second):
    """Start the Node.js load clients; return the process, reading its lines."""
    settings = {"servers": servers, "clients": clients, "messagesEach": messages_each,
                "perSecond": per_second}
    return subprocess.Popen(["node", ROOT / "tests" / "load_clients.mjs", json.dumps(settings)],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)


def wait_for_line(process, expected):
    """Read the process's lines until one is expected; fail if it ends first."""
    for line in process.stdout:
        if line.strip() == expected:
            return
    pytest.fail(f"the load clients ended before {expected!r}")


def test_200_clients_get_every_message_once_while_a_process_restarts(own_cluster, capsys):
    cluster = own_cluster
    first, second = cluster.webs
    load = load_clients([first.client.base, second.client.base], clients=200, messages_each=2,
                        per_second=25)
    try:
        wait_for_line(load, "connected")
        wait_for_line(load, "posting")
        # Half the clients lose their process in the middle of the posts.
        second.kill()
        cluster.webs[1] = cluster.start_web(1, second.port)
        wait_for_line(load, "posted")
        result = json.loads(load.stdout.readline())
        assert load.wait(timeout=60) == 0
    finally:
        load.kill()
        load.wait()
        load.stdout.close()
    with capsys.disabled():  # the figures, for the stage's page
        print(f"\nload: {json.dumps(result)}")
    assert result["clients"] == 200 and result["messages"] == 400
    assert result["lost"] == 0
    assert result["duplicated"] == 0
    assert result["reconnected"] == 100  # every client of the process that was killed


def test_nginx_stops_gracefully_while_websockets_are_open(tmp_path):
    env = production_env(tmp_path)
    prepare_database(env)
    web = Web(tmp_path, env, "Procfile")
    nginx = Nginx(tmp_path, [web.port])
    browser = Browser(nginx.base, nginx.client.login())
    try:
        # A graceful stop, as a reload or a package upgrade does: nginx waits for open
        # connections, and a WebSocket stays open until worker_shutdown_timeout.
        nginx.process.send_signal(signal.SIGQUIT)
        assert nginx.process.wait(timeout=30) == 0
    finally:
        browser.close()
        nginx.stop()
        web.kill()


def test_make_serves_nginx_lists_each_web_process(tmp_path):
    subprocess.run([sys.executable, ROOT / "deploy" / "local_nginx.py", "--folder", tmp_path,
                    "--web-processes", "3", "--first-web-port", "7000", "--port", "7100"],
                   check=True)
    config = (tmp_path / "nginx.conf").read_text()
    assert re.findall(r"server 127\.0\.0\.1:(\d+);", config) == ["7000", "7001", "7002"]
    assert "ip_hash;" in config and "listen 127.0.0.1:7100;" in config
    result = subprocess.run([NGINX, "-e", "stderr", "-p", tmp_path, "-c", "nginx.conf", "-t"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "[warn]" not in result.stderr


def test_make_serve_runs_the_chat_behind_nginx(tmp_path):
    web_port, proxy_port = neighbouring_ports(), free_port()
    env = production_env(tmp_path, REDIS_URL=redis_url(), REDIS_PREFIX=f"test-{tmp_path.name}:")
    venv = Path(sys.executable).parent.parent  # make must not build a venv of its own
    serve = subprocess.Popen(
        ["make", "serve", f"VENV={venv}", "WEB_PROCESSES=2", f"WEB_PORT={web_port}",
         f"PROXY_PORT={proxy_port}", f"SERVE_FOLDER={tmp_path / 'serve'}"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)
    browsers = []
    try:
        base = f"http://127.0.0.1:{proxy_port}"
        client = Client(base, wait_for_server(f"{base}/api/stats", serve, seconds=60))
        susan, david = client.login("susan"), client.login("david")
        browsers += [Browser(base, susan), Browser(base, david)]
        status, message = client.call("POST", "/api/messages", {"source": "served"}, susan)
        assert status == 201
        assert [browser.next("message_changed") for browser in browsers] == [message] * 2
        for port in (web_port, web_port + 1):  # both web processes answer, on their ports
            web = Client(f"http://127.0.0.1:{port}", client.opener)
            assert web.call("GET", f"/api/messages/{message['id']}") == (200, message)
    finally:
        for browser in browsers:
            browser.close()
        os.killpg(serve.pid, signal.SIGTERM)
        output = serve.communicate(timeout=30)[0]
    assert "Traceback" not in output
