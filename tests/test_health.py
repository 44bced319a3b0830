"""Health checks: /healthz answers while the process does, /readyz tells whether it can serve."""
import contextlib

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import select

import config
from flack import MIGRATIONS, create_app, health, stats, tasks
from flack.limits import limiter
from flack.models import User, db
from tests.helpers import (
    app_with_tables,
    assert_error,
    free_port,
    needs_postgres,
    needs_redis,
    redis_url,
    settings_with_database,
)

HEAD = ", ".join(ScriptDirectory(str(MIGRATIONS)).get_heads())
PREVIOUS = ScriptDirectory(str(MIGRATIONS)).get_revision(HEAD).down_revision
SECRET = "pa55w0rd-in-a-url"
UNUSED = {"broker": "not used", "message_queue": "not used"}  # the testing settings'


def settings(**values):
    """Return the testing settings, changed."""
    return type("Changed", (config.TestingConfig,), values)


def flask_db(app, *args):
    """Run `manage.py db ...` in this process, and check that it worked."""
    result = app.test_cli_runner().invoke(args=["db", *args])
    assert result.exit_code == 0, result.output


@contextlib.contextmanager
def migrated(**values):
    """Yield the client of an app of these settings whose tables are the newest migration's."""
    with app_with_tables(settings(**values)) as app:
        flask_db(app, "stamp", "head")  # the tables create_all() made, as the migrations'
        yield app.test_client()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=needs_postgres)])
def database_url(request, tmp_path):
    """The URL of a new, empty database: an SQLite file, or a PostgreSQL schema."""
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_url")
    return f"sqlite:///{tmp_path}/flack.sqlite"


@pytest.fixture
def upgraded(database_url):
    """A client of an app whose tables `manage.py db upgrade` made."""
    app = create_app(settings_with_database(database_url))
    with app.app_context():
        flask_db(app, "upgrade")
        yield app.test_client()
        db.session.remove()
        db.engine.dispose()


def test_healthz_answers_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_healthz_touches_nothing_else():
    closed = f"postgresql://flack:{SECRET}@127.0.0.1:{free_port()}/flack"
    client = create_app(settings_with_database(closed)).test_client()
    assert client.get("/healthz").json == {"status": "ok"}
    assert client.get("/readyz").status_code == 503  # the database is away


def test_readyz_is_ready_on_a_migrated_database(upgraded):
    response = upgraded.get("/readyz")
    assert response.status_code == 200
    assert response.json == {"status": "ready", "checks": {
        "database": "ok", "migrations": "ok", **UNUSED}}


def test_readyz_is_not_ready_before_the_last_migration(upgraded):
    flask_db(upgraded.application, "downgrade", PREVIOUS)
    response = upgraded.get("/readyz")
    assert response.status_code == 503
    assert response.json == {"status": "not ready", "checks": {
        "database": "ok", "migrations": f"at {PREVIOUS}, head is {HEAD}", **UNUSED}}


def test_tables_that_no_migration_made_are_not_ready(database_url):
    with app_with_tables(settings_with_database(database_url)) as app:  # db.create_all()
        response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"] == {"database": "ok", "migrations": f"at none, head is {HEAD}",
                                       **UNUSED}


def test_the_newest_revisions_are_read_once(monkeypatch):
    read = []

    def scripts(directory):
        read.append(directory)
        return ScriptDirectory(directory)

    health.script_heads.cache_clear()
    monkeypatch.setattr(health, "ScriptDirectory", scripts)
    with migrated() as client:
        for _ in range(3):
            assert client.get("/readyz").status_code == 200
    assert read == [str(MIGRATIONS)]


def test_readyz_says_when_the_database_is_away():
    closed = f"postgresql://flack:{SECRET}@127.0.0.1:{free_port()}/flack"
    response = create_app(settings_with_database(closed)).test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json == {"status": "not ready", "checks": {
        "database": "unreachable", "migrations": "unknown", **UNUSED}}
    assert SECRET not in response.text


def test_readyz_says_when_redis_is_away():
    # REDIS_URL is the broker (no CELERY_BROKER_URL) and the message queue.
    closed = f"redis://:{SECRET}@127.0.0.1:{free_port()}/0"
    with migrated(REDIS_URL=closed, CELERY_BROKER_URL=None,
                  CELERY_TASK_ALWAYS_EAGER=False) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json == {"status": "not ready", "checks": {
        "database": "ok", "migrations": "ok", "broker": "unreachable",
        "message_queue": "unreachable"}}
    assert SECRET not in response.text


# "closed": a Redis server that does not answer; "folder": a folder as the message queue.
@pytest.mark.parametrize("values, broker, message_queue", [
    ({"CELERY_BROKER_URL": "closed", "CELERY_TASK_ALWAYS_EAGER": False,
      "LOCAL_BROKER_FOLDER": "folder"}, "unreachable", "not used"),
    ({"CELERY_BROKER_URL": "closed"}, "not used", "not used"),  # tasks run in their request
    ({"SOCKETIO_MESSAGE_QUEUE": "closed"}, "not used", "unreachable"),
])
def test_the_broker_and_the_message_queue_are_checked_apart(tmp_path, values, broker,
                                                            message_queue):
    places = {"closed": f"redis://127.0.0.1:{free_port()}/0", "folder": str(tmp_path)}
    with migrated(**{name: places.get(value, value) for name, value in values.items()}) as client:
        response = client.get("/readyz")
    assert response.json["checks"] == {"database": "ok", "migrations": "ok", "broker": broker,
                                       "message_queue": message_queue}
    assert response.status_code == (200 if "unreachable" not in (broker, message_queue) else 503)


@needs_redis
def test_readyz_is_ready_with_redis():
    with migrated(REDIS_URL=redis_url(), CELERY_BROKER_URL=None,
                  CELERY_TASK_ALWAYS_EAGER=False) as client:
        response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json["checks"] == {"database": "ok", "migrations": "ok", "broker": "ok",
                                       "message_queue": "ok"}


def test_a_folder_as_broker_and_message_queue_is_not_used(tmp_path):
    # As `make run` has it: nothing to reach, and nothing that can fail readiness.
    with migrated(LOCAL_BROKER_FOLDER=str(tmp_path), CELERY_BROKER_URL=None,
                  CELERY_TASK_ALWAYS_EAGER=False) as client:
        response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json["checks"] == {"database": "ok", "migrations": "ok", **UNUSED}


def test_a_broker_that_is_not_redis_is_not_checked(tmp_path):
    broker = f"amqp://guest:{SECRET}@127.0.0.1:{free_port()}//"
    with migrated(CELERY_BROKER_URL=broker, CELERY_TASK_ALWAYS_EAGER=False,
                  LOCAL_BROKER_FOLDER=str(tmp_path)) as client:
        response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json["checks"]["broker"] == "not checked"


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_other_methods_are_json_errors(client, path):
    response = client.post(path)
    assert_error(response, 405)
    assert "GET" in response.headers["Allow"]


def test_the_checks_are_not_rate_limited():
    try:
        with migrated(RATELIMIT_APPLICATION="2 per minute") as client:  # all requests together
            for _ in range(5):
                assert client.get("/healthz").status_code == 200
                assert client.get("/readyz").status_code == 200
            statuses = [client.get("/api/users").status_code for _ in range(3)]
    finally:
        # The one Limiter keeps the application limits of the first app that has some.
        limiter.limit_manager.set_application_limits([])
    assert statuses == [200, 200, 429]  # the limit counts every other request


def test_the_checks_are_not_counted_in_the_statistics(client, clock, app):
    for _ in range(3):
        client.get("/healthz")
        client.get("/readyz")
    assert stats.requests_per_second() == 0
    client.get("/api/users")
    assert stats.requests_per_second() == 1 / app.config["STATS_WINDOW"]


def test_the_checks_mark_nobody_online(client, clock, app, accounts):
    auth = accounts.login()
    clock.advance(app.config["PRESENCE_TIMEOUT"] + 1)
    tasks.mark_offline_users()
    seen = db.session.scalar(select(User.last_seen_at))
    clock.advance(app.config["LAST_SEEN_INTERVAL"] + 1)
    client.get("/healthz", headers=auth)
    client.get("/readyz", headers=auth)
    user = db.session.scalar(select(User))
    assert (user.online, user.last_seen_at) == (False, seen)
    client.get("/api/users", headers=auth)  # a request with the token does
    assert db.session.scalar(select(User.online)) is True
