"""Fixtures that every test module can use: the app, its client, a clock and accounts."""
import contextlib
import ipaddress
import secrets
import socket

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.pool import NullPool

from flack import create_app, utils
from flack.models import ChangeCounter, db, insert_the_counter
from tests.helpers import POSTGRES_URL, Accounts, LocalWeb, settings_with_database

# Every test that uses the app runs on SQLite, and again on PostgreSQL when there is one.
APP_DATABASES = ["sqlite", "postgresql"] if POSTGRES_URL else ["sqlite"]


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


@contextlib.contextmanager
def postgres_schema():
    """Make a new, empty PostgreSQL schema of our own; give its URL; drop it afterwards."""
    schema = f"flack_test_{secrets.token_hex(6)}"
    admin = create_engine(POSTGRES_URL, poolclass=NullPool)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    # The schema comes first in the search path, so every table is made in it.
    url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def postgres_url():
    """The URL of a new, empty PostgreSQL schema, for a test that makes its own tables."""
    with postgres_schema() as url:
        yield url


@pytest.fixture(scope="session")
def shared_postgres_url():
    """A PostgreSQL schema with Flack's tables that the app tests of this process share."""
    with postgres_schema() as url:
        yield url


@pytest.fixture(params=APP_DATABASES)
def app(request):
    """A new application for each test: the testing settings and empty tables."""
    if request.param == "sqlite":
        database_url = "sqlite://"  # a new database in memory, for each engine
    else:
        # Making tables in PostgreSQL takes longer than a test: they are made once
        # per process, and emptied after each test instead.
        database_url = request.getfixturevalue("shared_postgres_url")
    app = create_app(settings_with_database(database_url))
    # A server gives each request an app context of its own, whose end closes the
    # session: a change that a view did not commit is lost. Requests made here share
    # the test's app context, so their sessions are closed after each one instead.
    app.teardown_request(lambda error: db.session.remove())
    with app.app_context():
        db.create_all()  # only the missing tables: none after the first test
        yield app
        db.session.remove()
        if request.param == "postgresql":
            db.create_all()  # in case the test dropped some
            names = ", ".join(table.name for table in db.metadata.sorted_tables)
            with db.engine.begin() as connection:
                connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
                # The change counter's one row, which create_all() inserted.
                insert_the_counter(ChangeCounter.__table__, connection)
        db.engine.dispose()  # close its connections before the schema is dropped


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


@pytest.fixture
def web(app):
    """A local web server, and link previews allowed to reach it."""
    app.config.update(LINK_PREVIEWS=True, LINK_PREVIEW_ALLOW_PRIVATE=True,
                      LINK_PREVIEW_TIMEOUT=0.5)
    web = LocalWeb()
    yield web
    web.close()
