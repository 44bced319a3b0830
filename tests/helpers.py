"""Plain helper functions, classes and constants for the tests; the fixtures are in conftest.py."""
import contextlib
import os
import socket
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from sqlalchemy import func, select

import config
from flack import create_app
from flack.models import db

ROOT = Path(__file__).resolve().parent.parent  # the project's top folder
PACKAGE = ROOT / "flack"
PASSWORD = "correct horse"

# A PostgreSQL server to test with, such as postgresql://postgres@127.0.0.1:5432/test.
POSTGRES_URL = os.environ.get("FLACK_TEST_POSTGRES_URL")
needs_postgres = pytest.mark.skipif(
    not POSTGRES_URL, reason="FLACK_TEST_POSTGRES_URL is not set: no PostgreSQL to test with")


# A Redis server to test with, such as redis://127.0.0.1:6379/0.
REDIS_URL = os.environ.get("FLACK_TEST_REDIS_URL")
needs_redis = pytest.mark.skipif(
    not REDIS_URL, reason="FLACK_TEST_REDIS_URL is not set: no Redis to test with")


def redis_url():
    """Return a Redis URL for this test process: a database of its own, 1 to 15.

    Test processes run side by side (pytest-xdist): on one database, the worker of
    one test could take the tasks of another.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")  # gw0, gw1, ...
    return REDIS_URL.rsplit("/", 1)[0] + f"/{1 + int(worker[2:]) % 15}"


def settings_with_database(database_url):
    """Return the testing settings with another database."""
    return type("TestingConfig", (config.TestingConfig,),
                {"SQLALCHEMY_DATABASE_URI": database_url})


@contextlib.contextmanager
def app_with_tables(settings):
    """Yield an app of these settings in its app context, with its tables; then close them."""
    app = create_app(settings)
    with app.app_context():
        db.create_all()
        try:
            yield app
        finally:
            db.session.remove()
            # Python 3.13 warns of an SQLite connection that is never closed.
            db.engine.dispose()


def free_port():
    """Return a loopback TCP port that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_server(url, server, seconds=30, opener=None):
    """Wait until a starting server answers at url, or fail if it never does."""
    opener = opener or urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert server.poll() is None, "the server exited"
        try:
            with opener.open(url, timeout=2):
                return opener
        except OSError:
            time.sleep(0.1)  # a process starting up, not a clock a test could control
    pytest.fail(f"no answer from {url} within {seconds} seconds")


def post_message(client, auth, source="hello"):
    """Post a message with the given Authorization header and return it."""
    response = client.post("/api/messages", json={"source": source}, headers=auth)
    assert response.status_code == 201, response.json
    return response.json


def count(model):
    """Return the number of rows of a model in the database."""
    return db.session.scalar(select(func.count()).select_from(model))


# The "error" of each status, as the API reference lists them. Not http.HTTPStatus's
# phrases: they follow the newest RFC, and Python 3.13 calls 413 "Content Too Large".
ERROR_NAMES = {
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 409: "Conflict", 413: "Request Entity Too Large",
    415: "Unsupported Media Type", 429: "Too Many Requests", 500: "Internal Server Error",
    503: "Service Unavailable",
}


def assert_error(response, status, mentions="", fields=None):
    """Check that a response is a JSON error with the given status, whose message
    names what is wrong (mentions, such as a field's name), and which names the bad
    fields of the request's body, if it was loaded through a schema."""
    assert response.status_code == status
    assert response.is_json
    if fields is None:
        assert response.json.keys() == {"error", "message"}
    else:
        assert response.json.keys() == {"error", "message", "fields"}
        assert response.json["fields"].keys() == set(fields)
    assert response.json["error"] == ERROR_NAMES[status]
    assert response.json["message"] and mentions in response.json["message"]


def assert_inert(html):
    """Check that HTML holds only harmless tags, attributes and links."""
    for tag in BeautifulSoup(html, "html.parser").find_all(True):
        assert tag.name in {"a", "abbr", "b", "blockquote", "br", "code", "del", "em",
                            "i", "p", "pre", "s", "strong"}
        assert not any(name.startswith("on") for name in tag.attrs)
        if tag.name == "a" and tag.get("href"):
            assert tag["href"].startswith(("http://", "https://"))


class Accounts:
    """Register users and log them in through the API, as the browser client does."""

    def __init__(self, client):
        self.client = client

    def register(self, nickname="susan", password=PASSWORD):
        """Register a user and return the response."""
        return self.client.post("/api/users", json={"nickname": nickname, "password": password})

    def login(self, nickname="susan", password=PASSWORD):
        """Register a user, get a token, and return the Authorization header."""
        assert self.register(nickname, password).status_code == 201
        response = self.client.post("/api/tokens", auth=(nickname, password))
        assert response.status_code == 200
        return {"Authorization": f"Bearer {response.json['token']}"}


class LocalWeb:
    """A tiny web server on a free loopback port, serving pages the test sets."""

    def __init__(self):
        self.pages = {}         # path -> (status, headers, body)
        self.requested = []     # paths, in the order they were asked for
        self.headers = []       # the headers of each request, in the same order
        self.release = threading.Event()  # a stalled page waits for this
        self.held = set()       # paths whose answer waits for release
        web = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                web.requested.append(self.path)
                web.headers.append(self.headers)
                if self.path in web.held:
                    web.release.wait(10)
                status, headers, body = web.pages.get(self.path, (404, {}, b"no such page"))
                if callable(body):  # a server that misbehaves in its own way
                    with contextlib.suppress(ConnectionError):
                        body(self)
                    return
                if not isinstance(body, bytes):  # a slow server: pieces, or nothing
                    self.send_response(status)
                    self.send_header("Content-Type", "text/html")
                    self.end_headers()
                    try:
                        for piece in body or []:
                            self.wfile.write(piece)
                            self.wfile.flush()
                            web.release.wait(0.1)
                    except ConnectionError:  # the client gave up, as it should
                        return
                    if body is None:
                        web.release.wait(10)
                    return
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def url(self, path):
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def page(self, path, body, content_type="text/html; charset=utf-8", status=200,
             headers=None, wait=False):
        self.pages[path] = (status, {"Content-Type": content_type, **(headers or {})}, body)
        if wait:
            self.held.add(path)

    def redirect(self, path, location):
        self.pages[path] = (302, {"Location": location}, b"")

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def html_page(title, description=None, extra=""):
    meta = f'<meta name="description" content="{description}">' if description else ""
    return f"<html><head><title>{title}</title>{meta}</head><body>{extra}</body></html>"
