"""Presence: who is online, and the thread that marks idle users offline."""
import threading

from sqlalchemy import select

from flack import presence
from flack.models import User, db


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
    offline = presence.mark_offline_users()
    assert [user.nickname for user in offline] == ["david"]
    users = {user["nickname"]: user for user in client.get("/api/users").json["users"]}
    assert users["susan"]["online"] is True
    assert users["david"]["online"] is False
    assert users["david"]["updated_at"] == clock.now
    assert client.get(f"/api/users?updated_since={clock.now - 1}").json["users"] == [
        users["david"]]


def test_users_go_offline_only_after_the_timeout(client, clock, app, accounts):
    accounts.login()
    clock.advance(app.config["PRESENCE_TIMEOUT"])
    assert presence.mark_offline_users() == []  # seen exactly a timeout ago: still here
    clock.advance(0.001)
    assert [user.nickname for user in presence.mark_offline_users()] == ["susan"]


def test_a_user_goes_offline_once(client, clock, app, accounts):
    accounts.login()
    clock.advance(app.config["PRESENCE_TIMEOUT"] + 1)
    presence.mark_offline_users()
    went_offline_at = clock.now
    clock.advance(10)
    assert presence.mark_offline_users() == []
    # No second update, which polling clients would fetch again.
    assert client.get("/api/users").json["users"][0]["updated_at"] == went_offline_at


def test_presence_thread(clock, app, monkeypatch, accounts):
    app.config["PRESENCE_CHECK_INTERVAL"] = 0.01
    accounts.login()
    clock.advance(app.config["PRESENCE_TIMEOUT"] + 1)
    swept = threading.Event()
    real_sweep = presence.mark_offline_users

    def sweep():
        users = real_sweep()
        swept.set()
        return users

    monkeypatch.setattr(presence, "mark_offline_users", sweep)
    thread = presence.PresenceThread(app)
    thread.start()
    assert swept.wait(5), "the presence thread never swept"
    thread.stop()
    assert not thread.is_alive()
    db.session.expire_all()
    assert db.session.scalar(select(User)).online is False


def test_presence_thread_survives_errors(clock, app, monkeypatch, caplog):
    app.config["PRESENCE_CHECK_INTERVAL"] = 0.01
    calls = []
    swept_twice = threading.Event()

    def failing_then_working_sweep():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database went away")
        swept_twice.set()

    monkeypatch.setattr(presence, "mark_offline_users", failing_then_working_sweep)
    thread = presence.PresenceThread(app)
    thread.start()
    assert swept_twice.wait(5), "the presence thread died after an error"
    thread.stop()
    assert "presence sweep failed" in caplog.text and "database went away" in caplog.text
