"""Tests for Flack: the flack package and manage.py. Run them with `make test`."""
import contextlib
import hashlib
import ipaddress
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from click.testing import CliRunner
from sqlalchemy import func, select

# Every test gets an empty in-memory database; set before flack reads it.
os.environ["DATABASE_URL"] = "sqlite://"

import flack  # noqa: E402  (the environment must be set first)
import manage  # noqa: E402
from flack import utils  # noqa: E402
from flack.models import Message, Token, User, db  # noqa: E402

HERE = Path(__file__).parent
PACKAGE = HERE / "flack"
PASSWORD = "correct horse"


# Fixtures and helpers

@pytest.fixture(autouse=True)
def no_internet(monkeypatch):
    """Let tests connect to loopback addresses only, and resolve no other names."""
    real_getaddrinfo, real_connect = socket.getaddrinfo, socket.socket.connect

    def local_getaddrinfo(host, *args, **kwargs):
        if host not in ("localhost", "127.0.0.1", "::1"):
            try:
                ipaddress.ip_address(host)
            except ValueError:
                raise socket.gaierror(f"tests resolve no names: {host}") from None
        return real_getaddrinfo(host, *args, **kwargs)

    def local_connect(sock, address):
        internet = sock.family in (socket.AF_INET, socket.AF_INET6)
        if internet and not ipaddress.ip_address(address[0]).is_loopback:
            raise OSError(f"tests do not leave this machine: {address[0]}")
        return real_connect(sock, address)

    monkeypatch.setattr(socket, "getaddrinfo", local_getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", local_connect)


@pytest.fixture
def app():
    """The application with empty tables, no link previews and fresh stats."""
    app = flack.app
    saved = dict(app.config)
    app.config.update(TESTING=True, LINK_PREVIEWS=False)
    flack.request_times.clear()
    with app.app_context():
        db.create_all()
        yield app
        db.session.remove()
        db.drop_all()
    app.config.clear()
    app.config.update(saved)


@pytest.fixture
def client(app):
    return app.test_client()


class Clock:
    """A stand-in for utils.timestamp() that only moves when told to."""

    def __init__(self, now=1_800_000_000.0):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(utils, "timestamp", clock)
    return clock


def register(client, nickname="susan", password=PASSWORD):
    """Register a user through the API and return the response."""
    return client.post("/api/users", json={"nickname": nickname, "password": password})


def login(client, nickname="susan", password=PASSWORD):
    """Register a user, get a token, and return the Authorization header."""
    assert register(client, nickname, password).status_code == 201
    response = client.post("/api/tokens", auth=(nickname, password))
    assert response.status_code == 200
    return {"Authorization": f"Bearer {response.json['token']}"}


def post_message(client, auth, source="hello"):
    response = client.post("/api/messages", json={"source": source}, headers=auth)
    assert response.status_code == 201, response.json
    return response.json


def count(model):
    return db.session.scalar(select(func.count()).select_from(model))


def assert_error(response, status):
    """Check that a response is a JSON error with the given status."""
    assert response.status_code == status
    assert response.is_json
    assert set(response.json) == {"error", "message"}
    assert response.json["message"]


# Users

def test_register(client):
    response = register(client)
    assert response.status_code == 201
    user = response.json
    assert set(user) == {"id", "nickname", "online", "created_at", "updated_at",
                         "last_seen_at", "_links"}
    assert user["nickname"] == "susan"
    assert user["online"] is False
    assert user["created_at"] == user["updated_at"]
    assert response.headers["Location"] == f"/api/users/{user['id']}"
    assert user["_links"]["self"] == response.headers["Location"]
    assert "password" not in str(user)


def test_password_is_hashed(client):
    register(client)
    user = db.session.scalar(select(User))
    assert PASSWORD not in user.password_hash
    assert user.check_password(PASSWORD)
    assert not user.check_password("wrong password")


@pytest.mark.parametrize("password", ["another password", "short"])
def test_register_duplicate_nickname(client, password):
    register(client)
    response = register(client, password=password)
    assert_error(response, 400)
    assert "taken" in response.json["message"]
    assert count(User) == 1


def test_unique_nickname_is_enforced_by_the_database(client, monkeypatch):
    # Two registrations racing past the check: the unique constraint catches it.
    register(client)
    monkeypatch.setattr(flack, "nickname_taken", lambda nickname: False)
    assert_error(register(client), 400)
    assert count(User) == 1


@pytest.mark.parametrize("body", [
    {"password": PASSWORD},
    {"nickname": "", "password": PASSWORD},
    {"nickname": "x" * 33, "password": PASSWORD},
    {"nickname": "<script>alert(1)</script>", "password": PASSWORD},
    {"nickname": "two words", "password": PASSWORD},
    {"nickname": 42, "password": PASSWORD},
    {"nickname": ["susan"], "password": PASSWORD},
    {"nickname": "nul\x00", "password": PASSWORD},
    {"nickname": "surrogate\ud800", "password": PASSWORD},
    {"nickname": "susan"},
    {"nickname": "susan", "password": "short"},
    {"nickname": "susan", "password": "x" * 129},
    {"nickname": "susan", "password": 12345678},
    {"nickname": "susan", "password": None},
])
def test_register_invalid_fields(client, body):
    assert_error(client.post("/api/users", json=body), 400)
    assert count(User) == 0


def test_nickname_limits(client):
    assert register(client, "x" * 32).status_code == 201
    assert register(client, "a").status_code == 201
    assert register(client, "zoë_o.k-1").status_code == 201


@pytest.mark.parametrize("data, content_type, status", [
    ('{"nickname": "susan",', "application/json", 400),
    ("[1, 2, 3]", "application/json", 400),
    ('"susan"', "application/json", 400),
    ("null", "application/json", 400),
    ("", "application/json", 400),
    ("nickname=susan", "application/x-www-form-urlencoded", 415),
    ('{"nickname": "susan"}', "text/plain", 415),
])
def test_register_bad_body(client, data, content_type, status):
    response = client.post("/api/users", data=data, content_type=content_type)
    assert_error(response, status)
    assert count(User) == 0


def test_oversized_body(client):
    body = {"nickname": "susan", "password": "x" * (flack.app.config["MAX_CONTENT_LENGTH"])}
    assert_error(client.post("/api/users", json=body), 413)
    assert count(User) == 0


def test_get_user(client):
    user_id = register(client).json["id"]
    response = client.get(f"/api/users/{user_id}")
    assert response.status_code == 200
    assert response.json["nickname"] == "susan"
    assert_error(client.get("/api/users/999"), 404)


def test_get_users(client):
    register(client, "susan")
    register(client, "david")
    response = client.get("/api/users")
    assert response.status_code == 200
    assert [user["nickname"] for user in response.json["users"]] == ["david", "susan"]


def test_get_users_online_filter(client):
    login(client, "susan")
    register(client, "david")
    online = client.get("/api/users?online=1").json["users"]
    offline = client.get("/api/users?online=0").json["users"]
    assert [user["nickname"] for user in online] == ["susan"]
    assert [user["nickname"] for user in offline] == ["david"]


def test_get_users_updated_since(client, clock):
    register(client, "susan")
    clock.advance(0.25)
    david = register(client, "david").json
    since = david["updated_at"] - 0.1
    users = client.get(f"/api/users?updated_since={since}").json["users"]
    assert [user["nickname"] for user in users] == ["david"]
    assert client.get(f"/api/users?updated_since={david['updated_at']}").json["users"] == []


@pytest.mark.parametrize("query", [
    "online=yes", "online=2", "updated_since=yesterday", "updated_since=nan",
    "updated_since=inf", "updated_since=",
])
def test_get_users_bad_query(client, query):
    assert_error(client.get(f"/api/users?{query}"), 400)


def test_edit_nickname(client):
    auth = login(client)
    user_id = client.get("/api/users").json["users"][0]["id"]
    before = client.get(f"/api/users/{user_id}").json
    response = client.put(f"/api/users/{user_id}", json={"nickname": "sue"}, headers=auth)
    assert response.status_code == 200
    assert response.json["nickname"] == "sue"
    assert response.json["updated_at"] > before["updated_at"]
    assert client.post("/api/tokens", auth=("sue", PASSWORD)).status_code == 200


def test_edit_password_revokes_tokens(client):
    auth = login(client)
    other_token = client.post("/api/tokens", auth=("susan", PASSWORD)).json["token"]
    user_id = client.get("/api/users").json["users"][0]["id"]
    response = client.put(f"/api/users/{user_id}", json={"password": "new password"},
                          headers=auth)
    assert response.status_code == 200
    assert count(Token) == 0
    assert_error(client.get("/api/users", headers=auth), 401)
    assert_error(client.get("/api/users", headers={"Authorization": f"Bearer {other_token}"}),
                 401)
    assert_error(client.post("/api/tokens", auth=("susan", PASSWORD)), 401)
    assert client.post("/api/tokens", auth=("susan", "new password")).status_code == 200


def test_edit_other_user_forbidden(client):
    auth = login(client, "susan")
    david = register(client, "david").json
    response = client.put(f"/api/users/{david['id']}", json={"nickname": "evil"}, headers=auth)
    assert_error(response, 403)
    assert client.get(f"/api/users/{david['id']}").json["nickname"] == "david"


@pytest.mark.parametrize("body, status", [
    ({}, 400),
    ({"nickname": "david"}, 400),
    ({"nickname": "bad nickname"}, 400),
    ({"nickname": "fine", "password": "short"}, 400),
    ({"password": ["not", "a", "string"]}, 400),
])
def test_edit_user_invalid(client, body, status):
    auth = login(client, "susan")
    register(client, "david")
    user_id = client.get("/api/users?online=1").json["users"][0]["id"]
    assert_error(client.put(f"/api/users/{user_id}", json=body, headers=auth), status)
    assert client.get(f"/api/users/{user_id}").json["nickname"] == "susan"
    assert count(Token) == 1


def test_edit_user_needs_token(client):
    user_id = register(client).json["id"]
    assert_error(client.put(f"/api/users/{user_id}", json={"nickname": "x"}), 401)
    auth = login(client, "david")
    assert_error(client.put("/api/users/999", json={"nickname": "x"}, headers=auth), 404)


@pytest.mark.parametrize("method, url", [
    ("GET", "/api/users/0"), ("GET", "/api/users/2147483648"),
    ("GET", "/api/users/99999999999999999999999"), ("GET", "/api/users/-1"),
    ("GET", "/api/messages/99999999999999999999999"),
    ("PUT", "/api/users/99999999999999999999999"),
    ("PUT", "/api/messages/99999999999999999999999"),
])
def test_ids_out_of_range(client, method, url):
    auth = login(client)
    assert_error(client.open(url, method=method, json={"source": "x"}, headers=auth), 404)


def test_wrong_method_and_unknown_url(client):
    response = client.delete("/api/users")
    assert_error(response, 405)
    assert "POST" in response.headers["Allow"]
    assert_error(client.get("/api/nothing-here"), 404)


# Tokens

def test_new_token(client, clock):
    register(client)
    response = client.post("/api/tokens", auth=("susan", PASSWORD))
    assert response.status_code == 200
    assert set(response.json) == {"token", "expires_at"}
    assert response.json["expires_at"] == clock.now + flack.app.config["TOKEN_LIFETIME"]
    token = response.json["token"]
    stored = db.session.scalar(select(Token))
    assert stored.digest == hashlib.sha256(token.encode()).hexdigest()
    assert token not in (stored.digest, str(stored.id))


@pytest.mark.parametrize("auth", [("susan", "wrong password"), ("nobody", PASSWORD),
                                  ("", ""), None])
def test_new_token_bad_credentials(client, auth):
    register(client)
    response = client.post("/api/tokens", auth=auth)
    assert_error(response, 401)
    # No "Basic" challenge, or the browser would pop up its own login dialog.
    assert not response.headers["WWW-Authenticate"].lower().startswith("basic")
    assert count(Token) == 0


def test_token_expiry(client, clock):
    auth = login(client)
    clock.advance(flack.app.config["TOKEN_LIFETIME"] - 1)
    assert client.get("/api/users", headers=auth).status_code == 200
    clock.advance(1)
    assert_error(client.get("/api/users", headers=auth), 401)
    assert count(Token) == 0


def test_revoke_token(client):
    auth = login(client)
    response = client.delete("/api/tokens", headers=auth)
    assert response.status_code == 204
    assert_error(client.get("/api/users", headers=auth), 401)
    assert_error(client.delete("/api/tokens", headers=auth), 401)
    assert client.get("/api/users").json["users"][0]["online"] is False


def test_revoke_needs_token(client):
    assert_error(client.delete("/api/tokens"), 401)


def test_token_auth_errors(client):
    response = client.post("/api/messages", json={"source": "hi"})
    assert_error(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    response = client.post("/api/messages", json={"source": "hi"},
                           headers={"Authorization": "Bearer not-a-token"})
    assert_error(response, 401)


def test_optional_token(client):
    auth = login(client)
    assert client.get("/api/messages").status_code == 200
    assert client.get("/api/messages", headers=auth).status_code == 200
    assert_error(client.get("/api/messages", headers={"Authorization": "Bearer nope"}), 401)


# Messages

def test_post_message(client, clock):
    auth = login(client)
    response = client.post("/api/messages", json={"source": "hello *world*"}, headers=auth)
    assert response.status_code == 201
    message = response.json
    assert set(message) == {"id", "source", "html", "user_id", "created_at", "updated_at",
                            "_links"}
    assert message["source"] == "hello *world*"
    assert message["html"] == "<p>hello <em>world</em></p>\n"
    assert message["created_at"] == message["updated_at"] == clock.now
    assert response.headers["Location"] == f"/api/messages/{message['id']}"
    assert message["_links"]["author"] == f"/api/users/{message['user_id']}"
    assert client.get(response.headers["Location"]).json == message


def test_bare_urls_become_links(client):
    html = post_message(client, login(client), "see https://example.com/page now")["html"]
    link = BeautifulSoup(html, "html.parser").a
    assert link["href"] == "https://example.com/page"
    assert link["rel"] == ["nofollow", "noopener", "noreferrer"]


def test_only_http_urls_become_links(client):
    source = "run flack.py, see www.example.com, mailto:me@example.com or ftp://example.com"
    html = post_message(client, login(client), source)["html"]
    assert html == f"<p>{source}</p>\n"


def test_images_become_links(client):
    html = post_message(client, login(client), "![a cat](https://example.com/cat.png)")["html"]
    link = BeautifulSoup(html, "html.parser").a
    assert link["href"] == "https://example.com/cat.png"
    assert link.get_text() == "a cat"


XSS_SOURCES = [
    "<script>alert('x')</script>",
    "[click me](javascript:alert(1))",
    "[click me](JaVaScRiPt:alert(1))",
    "<a href=\"javascript:alert(1)\">click</a>",
    "<b onclick=\"alert(1)\">bold</b>",
    "<img src=x onerror=alert(1)>",
    "![image](x onerror=alert(1))",
    "<iframe src=\"https://example.com\"></iframe>",
    "[relative](/api/users)",
    "<style>body{display:none}</style>",
]


@pytest.mark.parametrize("source", XSS_SOURCES)
def test_message_html_is_inert(client, source):
    html = post_message(client, login(client), source)["html"]
    assert_inert(html)


def assert_inert(html):
    """Check that HTML holds only harmless tags, attributes and links."""
    for tag in BeautifulSoup(html, "html.parser").find_all(True):
        assert tag.name in {"a", "abbr", "b", "blockquote", "br", "code", "del", "em",
                            "i", "p", "pre", "s", "strong"}
        assert not any(name.startswith("on") for name in tag.attrs)
        if tag.name == "a" and tag.get("href"):
            assert tag["href"].startswith(("http://", "https://"))


def test_markdown_is_rendered(client):
    html = post_message(client, login(client), "**bold** `code` ~~gone~~")["html"]
    assert html == "<p><strong>bold</strong> <code>code</code> <s>gone</s></p>\n"


@pytest.mark.parametrize("body", [
    {}, {"source": ""}, {"source": "   \n "}, {"source": 5}, {"source": None},
    {"source": "x" * 2001}, {"source": "nul\x00"},
])
def test_post_message_invalid(client, body):
    auth = login(client)
    assert_error(client.post("/api/messages", json=body, headers=auth), 400)
    assert count(Message) == 0


def test_post_message_bad_body(client):
    auth = login(client)
    response = client.post("/api/messages", data="hello", content_type="text/plain",
                           headers=auth)
    assert_error(response, 415)
    response = client.post("/api/messages", data="{", content_type="application/json",
                           headers=auth)
    assert_error(response, 400)
    assert count(Message) == 0


def test_message_length_limit(client):
    auth = login(client)
    post_message(client, auth, "x" * 2000)


def test_get_message_unknown(client):
    assert_error(client.get("/api/messages/1"), 404)


def test_get_messages_latest(client, clock):
    auth = login(client)
    for number in range(5):
        clock.advance(1)
        post_message(client, auth, f"message {number}")
    messages = client.get("/api/messages?limit=3").json["messages"]
    assert [m["source"] for m in messages] == ["message 2", "message 3", "message 4"]
    assert len(client.get("/api/messages").json["messages"]) == 5


def test_polling_never_misses_or_repeats(client, clock):
    """Several messages within one second, read by a client polling with a limit."""
    auth = login(client)
    sources = [f"message {number}" for number in range(7)]
    for source in sources:
        clock.advance(0.001)
        post_message(client, auth, source)
    seen, since = [], 0
    while True:
        page = client.get(f"/api/messages?updated_since={since}&limit=2").json["messages"]
        if not page:
            break
        seen += [message["source"] for message in page]
        since = page[-1]["updated_at"]
    assert seen == sources


def test_polling_sees_edits(client, clock):
    auth = login(client)
    first = post_message(client, auth, "first")
    clock.advance(0.5)
    second = post_message(client, auth, "second")
    clock.advance(0.5)
    client.put(f"/api/messages/{first['id']}", json={"source": "first, edited"}, headers=auth)
    updated = client.get(f"/api/messages?updated_since={second['updated_at']}").json
    assert [m["source"] for m in updated["messages"]] == ["first, edited"]


@pytest.mark.parametrize("query", ["limit=ten", "limit=0", "limit=-1", "limit=1.5",
                                   "updated_since=soon", "updated_since=-inf"])
def test_get_messages_bad_query(client, query):
    assert_error(client.get(f"/api/messages?{query}"), 400)


def test_get_messages_limit_is_capped(client):
    auth = login(client)
    post_message(client, auth)
    assert len(client.get("/api/messages?limit=1000000").json["messages"]) == 1


def test_messages_are_stamped_and_committed_in_turn(client, monkeypatch):
    auth = login(client)
    stamped_under_lock = []
    real_timestamp = utils.timestamp

    def timestamp():
        stamped_under_lock.append(flack.message_commit_lock.locked())
        return real_timestamp()

    monkeypatch.setattr(utils, "timestamp", timestamp)
    message = post_message(client, auth, "first")
    stamped_under_lock.clear()
    client.put(f"/api/messages/{message['id']}", json={"source": "edited"}, headers=auth)
    # The last stamp, the edited message's, was taken under the lock.
    assert stamped_under_lock[-1] is True


def test_edit_message(client, clock):
    auth = login(client)
    message = post_message(client, auth, "helo")
    clock.advance(2)
    response = client.put(f"/api/messages/{message['id']}", json={"source": "**hello**"},
                          headers=auth)
    assert response.status_code == 200
    assert response.json["html"] == "<p><strong>hello</strong></p>\n"
    assert response.json["updated_at"] == message["updated_at"] + 2
    assert response.json["created_at"] == message["created_at"]


def test_edit_message_errors(client):
    susan = login(client, "susan")
    david = login(client, "david")
    message = post_message(client, susan, "mine")
    url = f"/api/messages/{message['id']}"
    assert_error(client.put(url, json={"source": "yours"}, headers=david), 403)
    assert_error(client.put(url, json={"source": ""}, headers=susan), 400)
    assert_error(client.put(url, json=["source"], headers=susan), 400)
    assert_error(client.put(url, json={"source": "x"}), 401)
    assert_error(client.put("/api/messages/999", json={"source": "x"}, headers=susan), 404)
    assert client.get(url).json["source"] == "mine"


# Link previews, against a web server on this machine

class LocalWeb:
    """A tiny web server on a free loopback port, serving pages the test sets."""

    def __init__(self):
        self.pages = {}         # path -> (status, headers, body)
        self.requested = []     # paths, in the order they were asked for
        self.release = threading.Event()  # a stalled page waits for this
        web = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                web.requested.append(self.path)
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
             headers=None):
        self.pages[path] = (status, {"Content-Type": content_type, **(headers or {})}, body)

    def redirect(self, path, location):
        self.pages[path] = (302, {"Location": location}, b"")

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def web(app):
    """A local web server, and link previews allowed to reach it."""
    app.config.update(LINK_PREVIEWS=True, LINK_PREVIEW_ALLOW_PRIVATE=True,
                      LINK_PREVIEW_TIMEOUT=0.5)
    web = LocalWeb()
    yield web
    web.close()


def html_page(title, description=None, extra=""):
    meta = f'<meta name="description" content="{description}">' if description else ""
    return f"<html><head><title>{title}</title>{meta}</head><body>{extra}</body></html>"


def preview_of(client, url):
    """Post a message with a link and return the preview in its HTML, or None."""
    if not hasattr(client, "auth"):
        client.auth = login(client)
    html = post_message(client, client.auth, f"look: {url}")["html"]
    assert_inert(html)
    return BeautifulSoup(html, "html.parser").blockquote


def test_preview_title_and_description(client, web):
    web.page("/article", html_page("A fine article", "All about it").encode())
    preview = preview_of(client, web.url("/article"))
    assert preview.a["href"] == web.url("/article")
    assert preview.a.get_text() == "A fine article"
    assert "All about it" in preview.get_text()


def test_preview_prefers_open_graph(client, web):
    head = ('<meta property="og:title" content="OG title">'
            '<meta property="og:description" content="OG text">')
    web.page("/og", f"<html><head><title>plain</title>{head}</head></html>".encode())
    preview = preview_of(client, web.url("/og"))
    assert preview.a.get_text() == "OG title"
    assert "OG text" in preview.get_text()


def test_preview_is_escaped(client, web):
    page = html_page("&lt;script&gt;alert(1)&lt;/script&gt;", '"><img src=x onerror=alert(1)>')
    web.page("/evil", page.encode())
    preview = preview_of(client, web.url("/evil"))
    assert preview.a.get_text() == "<script>alert(1)</script>"
    assert preview.find("script") is None and preview.find("img") is None


@pytest.mark.parametrize("body, content_type", [
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b'{"title": "json"}', "application/json"),
    (html_page("").encode(), "text/html"),
    (html_page("   \n ").encode(), "text/html"),
    (b"<html><head></head><body>no title here</body></html>", "text/html"),
    (b"", "text/html"),
])
def test_no_preview_without_html_title(client, web, body, content_type):
    web.page("/page", body, content_type)
    assert preview_of(client, web.url("/page")) is None


def test_no_preview_for_error_pages(client, web):
    web.page("/gone", html_page("Not found").encode(), status=404)
    assert preview_of(client, web.url("/gone")) is None


def test_preview_with_bad_encoding(client, web):
    web.page("/latin", html_page("Caf\xe9 cr\xe8me").encode("latin-1"),
             "text/html; charset=no-such-charset")
    preview = preview_of(client, web.url("/latin"))
    assert preview is not None
    assert preview.a.get_text().startswith("Caf")


def test_preview_declared_charset(client, web):
    web.page("/latin", html_page("Caf\xe9").encode("latin-1"), "text/html; charset=latin-1")
    assert preview_of(client, web.url("/latin")).a.get_text() == "Caf\xe9"


def test_preview_slow_server_times_out(client, web):
    web.pages["/slow"] = (200, {}, None)
    assert preview_of(client, web.url("/slow")) is None
    assert web.requested == ["/slow"]


def test_preview_download_has_a_deadline(client, web):
    # Each piece arrives well within the read timeout, but the whole page does not.
    web.pages["/drip"] = (200, {}, [b"<html><head>" + b" " * 5000] * 20 + [b"<title>Late</title>"])
    assert preview_of(client, web.url("/drip")) is None


def test_preview_slow_headers_time_out(client, web):
    def drip_headers(handler):
        handler.wfile.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\nX-Slow: ")
        for _ in range(50):
            handler.wfile.write(b"x")
            handler.wfile.flush()
            if web.release.wait(0.1):
                return

    web.pages["/slow-headers"] = (200, {}, drip_headers)
    client.auth = login(client)
    started = time.monotonic()
    assert preview_of(client, web.url("/slow-headers")) is None
    assert time.monotonic() - started < 2.5  # the page would take 5 s


def test_preview_reads_a_limited_number_of_bytes(client, web, app):
    app.config["LINK_PREVIEW_MAX_BYTES"] = 4096
    padding = "<!-- " + "x" * 8192 + " -->"
    web.page("/big", f"<html><head>{padding}<title>Too far</title></head></html>".encode())
    web.page("/small", f"<html><head><title>Near</title>{padding}</head></html>".encode())
    assert preview_of(client, web.url("/big")) is None
    assert preview_of(client, web.url("/small")).a.get_text() == "Near"


def test_preview_follows_redirects(client, web):
    web.redirect("/old", web.url("/new"))
    web.page("/new", html_page("Moved here").encode())
    preview = preview_of(client, web.url("/old"))
    assert preview.a.get_text() == "Moved here"
    assert preview.a["href"] == web.url("/old")


def test_preview_stops_after_too_many_redirects(client, web):
    for number in range(5):
        web.redirect(f"/hop{number}", f"/hop{number + 1}")
    web.page("/hop5", html_page("The end").encode())
    assert preview_of(client, web.url("/hop0")) is None
    assert len(web.requested) == flack.app.config["LINK_PREVIEW_MAX_REDIRECTS"] + 1


def test_previews_per_message_are_limited(client, web):
    for number in range(5):
        web.page(f"/{number}", html_page(f"Page {number}").encode())
    links = " ".join(web.url(f"/{number}") for number in range(5))
    html = post_message(client, login(client), links)["html"]
    assert len(BeautifulSoup(html, "html.parser").find_all("blockquote")) == 3
    assert web.requested == ["/0", "/1", "/2"]


def test_private_address_refused(client, web, app):
    app.config["LINK_PREVIEW_ALLOW_PRIVATE"] = False
    web.page("/", html_page("Internal").encode())
    assert preview_of(client, web.url("/")) is None
    assert web.requested == []


def test_redirect_to_private_address_refused(client, web, app, monkeypatch):
    # Pretend that 127.0.0.1 is a public web site, and that it redirects to
    # an address on the private network.
    app.config["LINK_PREVIEW_ALLOW_PRIVATE"] = False
    public = ipaddress.ip_address("127.0.0.1")
    monkeypatch.setattr(flack, "address_allowed", lambda address: address == public)
    web.redirect("/go", "http://10.0.0.1/admin")
    web.page("/ok", html_page("Public page").encode())
    assert preview_of(client, web.url("/go")) is None
    assert web.requested == ["/go"]
    assert preview_of(client, web.url("/ok")).a.get_text() == "Public page"


def test_dns_rebinding_refused(client, web, app, monkeypatch):
    # The name check is told a public address; the connection reaches loopback.
    app.config["LINK_PREVIEW_ALLOW_PRIVATE"] = False
    monkeypatch.setattr(flack, "resolve_addresses",
                        lambda host: {ipaddress.ip_address("93.184.216.34")})
    web.page("/", html_page("Internal").encode())
    assert preview_of(client, web.url("/")) is None
    assert web.requested == []


@pytest.mark.parametrize("url", [
    "http://localhost/", "http://127.0.0.1/", "http://[::1]/", "http://10.1.2.3/",
    "http://192.168.0.1/", "http://172.16.0.1/", "http://169.254.169.254/latest/",
    "http://100.64.0.1/", "http://0.0.0.0/", "http://[::ffff:127.0.0.1]/",
    "http://224.0.0.1/", "ftp://example.com/", "file:///etc/passwd", "http:///nohost",
])
def test_check_link_refuses(app, url):
    with pytest.raises(flack.PreviewRefused):
        flack.check_link(url)


def test_check_link_allows_public_address(app):
    flack.check_link("https://93.184.216.34/")
    app.config["LINK_PREVIEW_ALLOW_PRIVATE"] = True
    flack.check_link("http://127.0.0.1/")


def test_unresolvable_link_gets_no_preview(client, app):
    app.config["LINK_PREVIEWS"] = True
    html = post_message(client, login(client), "see https://nowhere.invalid/")["html"]
    assert "<blockquote>" not in html
    assert 'href="https://nowhere.invalid/"' in html


# Presence

def test_request_with_token_marks_user_online(client, clock):
    auth = login(client)
    clock.advance(30)
    client.get("/api/stats", headers=auth)
    user = client.get("/api/users").json["users"][0]
    assert user["online"] is True
    assert user["last_seen_at"] == clock.now


def test_idle_users_go_offline(client, clock):
    auth = login(client, "susan")
    login(client, "david")
    clock.advance(30)
    client.get("/api/users", headers=auth)  # susan stays active
    clock.advance(flack.app.config["PRESENCE_TIMEOUT"] - 29)
    offline = flack.mark_offline_users()
    assert [user.nickname for user in offline] == ["david"]
    users = {user["nickname"]: user for user in client.get("/api/users").json["users"]}
    assert users["susan"]["online"] is True
    assert users["david"]["online"] is False
    assert users["david"]["updated_at"] == clock.now
    assert client.get(f"/api/users?updated_since={clock.now - 1}").json["users"] == [
        users["david"]]


def test_presence_thread(client, clock, app, monkeypatch):
    app.config["PRESENCE_CHECK_INTERVAL"] = 0.01
    login(client)
    clock.advance(app.config["PRESENCE_TIMEOUT"] + 1)
    swept = threading.Event()
    real_sweep = flack.mark_offline_users

    def sweep():
        users = real_sweep()
        swept.set()
        return users

    monkeypatch.setattr(flack, "mark_offline_users", sweep)
    thread = flack.PresenceThread(app)
    thread.start()
    assert swept.wait(5), "the presence thread never swept"
    thread.stop()
    assert not thread.is_alive()
    db.session.expire_all()
    assert db.session.scalar(select(User)).online is False


def test_presence_thread_survives_errors(client, clock, app, monkeypatch):
    app.config["PRESENCE_CHECK_INTERVAL"] = 0.01
    calls = []
    swept_twice = threading.Event()

    def failing_then_working_sweep():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database went away")
        swept_twice.set()

    monkeypatch.setattr(flack, "mark_offline_users", failing_then_working_sweep)
    thread = flack.PresenceThread(app)
    thread.start()
    assert swept_twice.wait(5), "the presence thread died after an error"
    thread.stop()


def test_presence_thread_is_not_started_by_import():
    assert not any(isinstance(thread, flack.PresenceThread) for thread in threading.enumerate())


# Statistics

def test_requests_per_second(client, clock, app):
    window = app.config["STATS_WINDOW"]
    for _ in range(29):
        client.get("/api/users")
    response = client.get("/api/stats")  # the 30th request
    assert response.json == {"requests_per_second": round(30 / window, 2)}
    clock.advance(window / 2)
    client.get("/api/users")
    assert flack.requests_per_second() == 31 / window
    clock.advance(window / 2)
    assert flack.requests_per_second() == 1 / window
    clock.advance(window)
    assert flack.requests_per_second() == 0


# Utility functions

def test_timestamp_is_the_current_time():
    before = time.time()
    now = utils.timestamp()
    assert isinstance(now, float)
    assert before <= now <= time.time()


def test_url_for_in_a_request(app):
    with app.test_request_context("/api/stats", base_url="http://chat.example.com"):
        assert utils.url_for("get_user", id=7) == "/api/users/7"
        assert utils.url_for("get_user", id=7, _external=True) == (
            "http://chat.example.com/api/users/7")


def test_error_response(app):
    response = utils.error_response(404, "user not found")
    assert response.status_code == 404
    assert response.json == {"error": "Not Found", "message": "user not found"}


@pytest.mark.parametrize("text, allowed", [
    ("zoë", True), ("", True), ("tab\tand newline\n", True), ("nul\x00", False),
    ("lone surrogate \udc00", False),
])
def test_storable(text, allowed):
    assert utils.storable(text) is allowed


def test_url_for_without_request(app):
    assert utils.url_for("get_message", id=3) == "/api/messages/3"


def test_models_build_urls_without_request(app):
    user = User(nickname="susan", password_hash="x")
    db.session.add(user)
    db.session.commit()
    assert user.to_dict()["_links"]["self"] == f"/api/users/{user.id}"


# The browser client

def test_index_page(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    page = BeautifulSoup(response.text, "html.parser")
    scripts = page.find_all("script")
    assert scripts and all(script.get("type") == "module" for script in scripts)
    assert all(script.get("src", "").startswith("/static/") for script in scripts)
    for link in page.find_all("link", rel="stylesheet"):
        assert link["href"].startswith("/static/")
        stylesheet = client.get(link["href"])
        assert stylesheet.status_code == 200
        stylesheet.close()


def test_static_files_are_served(client):
    for path in sorted((PACKAGE / "static").rglob("*")):
        if path.is_file():
            response = client.get("/" + path.relative_to(PACKAGE).as_posix())
            assert response.status_code == 200, path
            response.close()


def test_client_loads_nothing_from_elsewhere():
    files = [PACKAGE / "templates" / "index.html", *sorted((PACKAGE / "static").rglob("*.*"))]
    for path in files:
        # An XML namespace names a standard; it is not something to download.
        text = re.sub(r'xmlns(:\w+)?="[^"]*"', "", path.read_text())
        assert "http://" not in text and "https://" not in text, path
        assert "//cdn" not in text and "@import" not in text, path


# Commands

def free_port():
    """Return a loopback TCP port that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_server(url, server, seconds=30):
    """Wait until a starting server answers at url, or fail if it never does."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert server.poll() is None, "the server exited"
        try:
            with opener.open(url, timeout=2):
                return opener
        except OSError:
            time.sleep(0.1)  # a process starting up, not a clock a test could control
    pytest.fail(f"no answer from {url} within {seconds} seconds")


def manage_py(*args, **kwargs):
    """Run `python manage.py ...` in a new process and return the finished process."""
    return subprocess.run([sys.executable, "manage.py", *args], cwd=HERE, text=True,
                          capture_output=True, timeout=60, **kwargs)


def test_createdb_and_runserver_serve_the_chat(tmp_path):
    # A real process imports the package from scratch, as `make run` does.
    env = dict(os.environ, DATABASE_URL=f"sqlite:///{tmp_path}/chat.sqlite")
    created = manage_py("createdb", env=env)
    assert created.returncode == 0, created.stderr
    assert "chat.sqlite" in created.stdout
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--port", str(port)], cwd=HERE, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        opener = wait_for_server(f"{base}/api/stats", server)
        body = json.dumps({"nickname": "susan", "password": PASSWORD}).encode()
        request = urllib.request.Request(f"{base}/api/users", data=body,
                                         headers={"Content-Type": "application/json"})
        with opener.open(request, timeout=5) as response:
            assert response.status == 201
            assert json.load(response)["nickname"] == "susan"
    finally:
        server.terminate()
        _, errors = server.communicate(timeout=10)
    assert "Traceback" not in errors


def test_runserver_refuses_a_database_without_tables(app, fake_server):
    db.drop_all()
    result = app.test_cli_runner().invoke(args=["runserver"])
    assert result.exit_code == 1
    assert "python manage.py createdb" in result.output
    assert "messages, tokens, users" in result.output
    assert fake_server.runs == [] and fake_server.presence_threads == 0


def test_createdb_keeps_rows_unless_dropping_first(app):
    runner = app.test_cli_runner()
    register(app.test_client())
    result = runner.invoke(args=["createdb"])
    assert result.exit_code == 0, result.output
    assert count(User) == 1
    result = runner.invoke(args=["createdb", "--drop-first"])
    assert result.exit_code == 0, result.output
    assert "Dropped" in result.output
    assert count(User) == 0


class FakeServer:
    """Stand-ins for run_simple() and PresenceThread that record how they were used."""

    def __init__(self):
        self.runs = []
        self.presence_threads = 0

    def run_simple(self, host, port, app, **options):
        self.runs.append({"host": host, "port": port, "debug": app.debug, **options})

    def presence_thread(self, app):
        self.presence_threads += 1
        return threading.Thread(target=lambda: None)


@pytest.fixture
def fake_server(app, monkeypatch):
    fake = FakeServer()
    monkeypatch.setattr(flack, "run_simple", fake.run_simple)
    monkeypatch.setattr(flack, "PresenceThread", fake.presence_thread)
    monkeypatch.setattr(app, "debug", False)
    return fake


def test_runserver_defaults(app, fake_server, monkeypatch):
    monkeypatch.delenv("PORT", raising=False)
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    result = app.test_cli_runner().invoke(args=["runserver"])
    assert result.exit_code == 0, result.output
    assert fake_server.runs == [{"host": "127.0.0.1", "port": 5000, "debug": False,
                                 "use_reloader": False, "use_debugger": False,
                                 "threaded": True}]
    assert fake_server.presence_threads == 1


def test_runserver_options(app, fake_server, monkeypatch):
    monkeypatch.setenv("PORT", "8001")
    result = app.test_cli_runner().invoke(args=["runserver", "--host", "0.0.0.0", "--debug"])
    assert result.exit_code == 0, result.output
    run = fake_server.runs[0]
    assert (run["host"], run["port"], run["debug"]) == ("0.0.0.0", 8001, True)
    assert run["use_reloader"] and run["use_debugger"]
    # The reloader's watching process starts no presence thread; its child will.
    assert fake_server.presence_threads == 0
    result = app.test_cli_runner().invoke(args=["runserver", "--port", "8002", "--debug",
                                                "--no-reload"])
    assert result.exit_code == 0, result.output
    assert fake_server.runs[1]["port"] == 8002
    assert not fake_server.runs[1]["use_reloader"]
    assert fake_server.presence_threads == 1
    # manage.py's own --debug, before the command name, reaches runserver too.
    monkeypatch.setenv("FLASK_DEBUG", "0")  # the option sets it; restored afterwards
    result = CliRunner().invoke(manage.cli, ["--debug", "runserver", "--no-reload"])
    assert result.exit_code == 0, result.output
    assert fake_server.runs[2]["debug"] and fake_server.runs[2]["use_debugger"]


def test_shell_preloads_the_models(app):
    context = app.make_shell_context()
    assert context["app"] is app
    assert context["db"] is db
    assert {context[name] for name in ("User", "Token", "Message")} == {User, Token, Message}


def test_manage_test_runs_pytest_in_a_new_process(monkeypatch):
    calls = []

    def call(command, cwd):
        calls.append((command, cwd))
        return 3

    monkeypatch.setattr(subprocess, "call", call)
    result = CliRunner().invoke(manage.cli, ["test", "-k", "users", "-x"])
    assert result.exit_code == 3  # pytest's exit status is passed on
    assert calls == [([sys.executable, "-m", "pytest", "-k", "users", "-x"], HERE)]


def test_code_passes_lint():
    result = manage_py("lint")
    assert result.returncode == 0, result.stdout + result.stderr


def test_flask_command_finds_the_app_commands():
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "flack", "--help"],
                            cwd=HERE, text=True, capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    commands = re.findall(r"^  (\w+) ", result.stdout, re.MULTILINE)
    assert {"createdb", "runserver", "shell", "routes"} <= set(commands)
    assert not {"test", "lint"} & set(commands)  # those two belong to manage.py
