"""Fixtures that every test module can use: the app, its client, a clock and accounts."""
import ipaddress
import socket

import pytest

from flack import create_app, utils
from flack.models import db
from tests.helpers import Accounts


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
    """A new application for each test: the testing settings and empty tables."""
    app = create_app("testing")
    with app.app_context():
        db.create_all()
        yield app
        db.session.remove()
        db.drop_all()


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


@pytest.fixture
def accounts(client):
    """Users and tokens: accounts.register("susan"), accounts.login("david")."""
    return Accounts(client)
