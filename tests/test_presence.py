"""Presence: who is online, and the periodic task that marks idle users offline."""
import threading
import time

import pytest
from sqlalchemy import event, text, update

from flack import background, presence, tasks, utils
from flack.models import Connection, Process, User, db
from tests.helpers import count


def test_request_with_token_marks_user_online(client, clock, accounts):
    auth = accounts.login()
    clock.advance(30)
    client.get("/api/stats", headers=auth)
    user = client.get("/api/users").json["users"][0]
    assert user["online"] is True
    assert user["last_seen_at"] == clock.now


def test_idle_users_go_offline(client, clock, app, accounts):
    auth = accounts.login("susan")
    accounts.login("david")
    clock.advance(30)
    client.get("/api/users", headers=auth)  # susan stays active
    clock.advance(app.config["PRESENCE_TIMEOUT"] - 29)
    before = {user["nickname"]: user for user in client.get("/api/users").json["users"]}
    offline = presence.mark_offline_users()
    assert offline == [before["david"]["id"]]
    users = {user["nickname"]: user for user in client.get("/api/users").json["users"]}
    assert users["susan"]["online"] is True
    assert users["david"]["online"] is False
    assert users["david"]["updated_at"] == clock.now
    # A client that has seen every change so far gets david's, and only his.
    last_seen = max(user["change"] for user in before.values())
    assert users["david"]["change"] > last_seen
    assert client.get(f"/api/users?after={last_seen}").json["users"] == [users["david"]]


def test_users_go_offline_only_after_the_timeout(client, clock, app, accounts):
    accounts.login()
    clock.advance(app.config["PRESENCE_TIMEOUT"])
    assert presence.mark_offline_users() == []  # seen exactly a timeout ago: still here
    clock.advance(0.001)
    assert len(presence.mark_offline_users()) == 1


def test_a_user_goes_offline_once(client, clock, app, accounts):
    accounts.login()
    clock.advance(app.config["PRESENCE_TIMEOUT"] + 1)
    presence.mark_offline_users()
    went_offline_at = clock.now
    clock.advance(10)
    assert presence.mark_offline_users() == []
    # No second update, which polling clients would fetch again.
    [user] = client.get("/api/users").json["users"]
    assert user["updated_at"] == went_offline_at
    assert client.get(f"/api/users?after={user['change']}").json["users"] == []


def test_a_user_active_since_the_sweep_looked_stays_online(client, clock, app, accounts,
                                                           monkeypatch):
    accounts.login()
    clock.advance(app.config["PRESENCE_TIMEOUT"] + 1)
    number_the_changes = presence.next_changes

    def request_meanwhile(session, count):
        """A request from the user, between the sweep's SELECT and its UPDATE."""
        session.execute(update(User).values(last_seen_at=utils.timestamp()))
        return number_the_changes(session, count)

    monkeypatch.setattr(presence, "next_changes", request_meanwhile)
    assert presence.mark_offline_users() == []
    assert client.get("/api/users").json["users"][0]["online"] is True


def test_a_user_that_another_sweep_took_offline_goes_offline_once(
        client, clock, app, accounts, monkeypatch):
    accounts.login()
    clock.advance(app.config["PRESENCE_TIMEOUT"] + 1)
    number_the_changes = presence.next_changes

    def other_sweep_meanwhile(session, count):
        """Another sweep, which takes the user offline between this one's SELECT and UPDATE."""
        session.execute(update(User).values(online=False))
        return number_the_changes(session, count)

    monkeypatch.setattr(presence, "next_changes", other_sweep_meanwhile)
    assert presence.mark_offline_users() == []


def test_each_idle_user_goes_offline_with_a_change_of_their_own(client, clock, app, accounts):
    for nickname in ("susan", "david"):
        accounts.login(nickname)
    clock.advance(app.config["PRESENCE_TIMEOUT"] + 1)
    users = client.get("/api/users").json["users"]
    assert sorted(presence.mark_offline_users()) == sorted(user["id"] for user in users)
    changes = [user["change"] for user in client.get("/api/users").json["users"]]
    assert len(set(changes)) == 2  # a client paging by change would skip a shared number


def test_the_sweep_takes_the_change_counter_once_for_all_its_users(client, clock, app,
                                                                   accounts):
    for nickname in ("susan", "david", "maria"):
        accounts.login(nickname)
    clock.advance(app.config["PRESENCE_TIMEOUT"] + 1)
    statements = []
    event.listen(db.engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *args: statements.append(statement))
    assert len(presence.mark_offline_users()) == 3
    assert len([sql for sql in statements if sql.startswith("UPDATE change_counter")]) == 1


def test_a_user_who_connected_since_the_sweep_looked_stays_online(client, clock, app,
                                                                  accounts, monkeypatch):
    accounts.login()
    clock.advance(app.config["PRESENCE_TIMEOUT"] + 1)
    number_the_changes = presence.next_changes

    def browser_meanwhile(session, count):
        """A browser that connects, between the sweep's SELECT and its UPDATE."""
        session.add(Process(id="a-host:1:0", seen_at=utils.timestamp()))
        session.flush()
        session.add(Connection(sid="a-sid", user_id=1, token_id=1, process_id="a-host:1:0"))
        session.flush()
        return number_the_changes(session, count)

    monkeypatch.setattr(presence, "next_changes", browser_meanwhile)
    assert presence.mark_offline_users() == []
    assert client.get("/api/users").json["users"][0]["online"] is True


def test_a_sweep_that_finds_nobody_idle_changes_nothing(client, clock, app, accounts):
    accounts.login()
    statements = []
    event.listen(db.engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *args: statements.append(statement))
    assert presence.mark_offline_users() == []
    assert [sql for sql in statements if sql.startswith(("UPDATE", "INSERT"))] == []


def test_celery_beat_sends_the_sweep_to_a_worker(client, clock, app, accounts):
    schedule = background.periodic_tasks(app.config)["flack.tasks.mark_offline_users"]
    assert schedule["schedule"] == app.config["PRESENCE_CHECK_INTERVAL"]
    assert schedule["options"]["expires"] == schedule["schedule"]
    assert app.extensions["celery"].conf.beat_schedule == background.periodic_tasks(app.config)
    accounts.login()
    clock.advance(app.config["PRESENCE_TIMEOUT"] + 1)
    tasks.mark_offline_users.apply()  # as a worker runs it, in an app context of its own
    assert client.get("/api/users").json["users"][0]["online"] is False


def test_the_process_row_is_made_or_refreshed_in_one_statement(app, clock):
    # Two statements, an UPDATE that finds nothing and then an INSERT, race: on gevent,
    # two browsers that connect at once in one process both insert, and one fails.
    statements = []

    def record(connection, cursor, statement, *args):
        """Keep the first word of each statement sent to the database."""
        statements.append(statement.split()[0])

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        presence.refresh_process("a-host:1:0")
        clock.advance(5)
        presence.refresh_process("a-host:1:0")
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert statements == ["INSERT", "INSERT"]
    assert db.session.get(Process, "a-host:1:0").seen_at == clock.now


def test_two_connections_make_the_process_row_at_once(app):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite takes one writer at a time: only PostgreSQL lets two race")
    failures = []

    def connect_meanwhile():
        """A second browser's connect, in its own session: it waits for the first's row."""
        with app.app_context():
            try:
                presence.refresh_process("a-host:1:0")
                db.session.commit()
            except Exception as error:  # noqa: BLE001 (reported by the assertion below)
                failures.append(error)

    presence.refresh_process("a-host:1:0")  # the first browser's, not committed yet
    second = threading.Thread(target=connect_meanwhile)
    second.start()
    deadline = time.monotonic() + 10
    while not db.session.scalar(text("SELECT count(*) FROM pg_locks WHERE NOT granted")):
        assert time.monotonic() < deadline, "the second connect never waited for the first"
        time.sleep(0.01)
    db.session.commit()
    second.join(10)
    assert failures == []
    assert count(Process) == 1
