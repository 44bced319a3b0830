"""Fixtures that every test module can use: the app, its client, a clock and accounts."""
import ipaddress
import os
import socket

import pytest

# The testing settings (config.TestingConfig); chosen before flack reads them.
os.environ["FLACK_CONFIG"] = "testing"

import flack  # noqa: E402  (the environment must be set first)
from flack import stats, utils  # noqa: E402
from flack.models import db  # noqa: E402
from tests.helpers import PASSWORD  # noqa: E402


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
    """The application with empty tables, the testing settings and fresh stats."""
    app = flack.app
    saved = dict(app.config)
    stats.request_times.clear()
    with app.app_context():
        db.create_all()
        yield app
        db.session.remove()
        db.drop_all()
    app.config.clear()
    app.config.update(saved)


@pytest.fixture
def client(app):
    """A test client that sends requests to the app without a server."""
    return app.test_client()


class Clock:
    """A stand-in for utils.timestamp() that only moves when told to."""

    def __init__(self, now=1_800_000_000.0):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, seconds):
        """Move the time forward."""
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    """Stop the app's clock; the test moves it with clock.advance(seconds)."""
    clock = Clock()
    monkeypatch.setattr(utils, "timestamp", clock)
    return clock


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


@pytest.fixture
def accounts(client):
    """Users and tokens: accounts.register("susan"), accounts.login("david")."""
    return Accounts(client)
