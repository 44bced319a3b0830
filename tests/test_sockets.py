"""Socket.IO: logging in on connect, every change pushed, and presence from connections."""
import json
import os
import runpy
from types import SimpleNamespace

import pytest
from flask import request
from socketio import RedisManager
from sqlalchemy import delete, event, select, update
from sqlalchemy.exc import OperationalError

from config import Config, TestingConfig
from flack import create_app, presence, sessions, sockets, stats, tasks, utils
from flack.background import FolderTransport
from flack.models import Connection, Message, Process, Token, User, db
from tests.helpers import ROOT, assert_error, count, free_port, post_message


@pytest.fixture
def connect(app, client):
    """Open Socket.IO connections, as browsers do: connect(auth) logs in with auth's token."""
    opened = []

    def open_connection(auth=None, **options):
        token = auth["Authorization"].removeprefix("Bearer ") if auth else None
        connection = sockets.socketio.test_client(
            app, flask_test_client=client, auth={"token": token} if auth else None, **options)
        opened.append(connection)
        return connection

    yield open_connection
    for connection in opened:
        if connection.is_connected():
            connection.disconnect()


def vars_of(settings_class):
    """Return the settings of a class as a dict, as the app's config holds them."""
    return {name: getattr(settings_class, name) for name in dir(settings_class)
            if name.isupper()}


def received(connection, event_name):
    """Return the data of each event of that name the connection received since last asked."""
    return [event["args"][0] for event in connection.get_received() if event["name"] == event_name]


def user_named(client, nickname):
    """Return a user as the API shows it."""
    return next(user for user in client.get("/api/users").json["users"]
                if user["nickname"] == nickname)


def revoke(client, auth):
    """Log out through the API."""
    assert client.delete("/api/tokens", headers=auth).status_code == 204


@pytest.mark.parametrize("auth", [None, {}, {"token": None}, {"token": 42}, "a-token",
                                  {"token": "not-a-token"}])
def test_a_connection_without_a_valid_token_is_refused(app, auth):
    connection = sockets.socketio.test_client(app, auth=auth)
    assert not connection.is_connected()
    assert count(Connection) == 0


def test_an_expired_token_is_refused(client, clock, app, accounts, connect):
    auth = accounts.login()
    clock.advance(app.config["TOKEN_LIFETIME"])
    assert not connect(auth).is_connected()
    assert client.get("/api/users", headers=auth).status_code == 401


def test_the_refusal_says_why(client):
    # What the browser's connect_error handler gets, spoken as Socket.IO over HTTP.
    polling = "/socket.io/?EIO=4&transport=polling"
    sid = json.loads(client.get(polling).text[1:])["sid"]  # "0{...}": the handshake
    client.post(f"{polling}&sid={sid}", data='40{"token":"not-a-token"}')  # "40": connect
    answer = client.get(f"{polling}&sid={sid}").text
    assert answer == '44{"message":"a valid token is required"}'  # "44": refused


def test_a_valid_token_connects_and_marks_its_user_online(client, clock, app, accounts,
                                                           connect):
    auth = accounts.login("susan")
    clock.advance(app.config["PRESENCE_TIMEOUT"] + 1)
    presence.mark_offline_users()
    assert user_named(client, "susan")["online"] is False
    clock.advance(1)
    connection = connect(auth)
    assert connection.is_connected()
    susan = user_named(client, "susan")
    assert susan["online"] is True and susan["last_seen_at"] == clock.now
    [row] = db.session.scalars(select(Connection)).all()
    assert row.user_id == susan["id"] and row.process_id == app.extensions["flack_process"]
    assert db.session.get(Process, row.process_id).seen_at == clock.now
    # Every browser learns of the change, this one too.
    assert received(connection, "user_changed") == [susan]
    assert received(connect(auth), "user_changed") == []  # already online: no change


def test_a_new_connection_gets_the_statistics_at_once(client, accounts, connect, app):
    auth = accounts.login()
    connection = connect(auth)
    [figures] = received(connection, "stats")
    assert figures == client.get("/api/stats").json | {
        "requests_per_second": figures["requests_per_second"]}
    assert figures["requests_per_second"] > 0


def test_a_posted_message_is_pushed_to_every_connection(client, accounts, connect):
    susan, david = accounts.login("susan"), accounts.login("david")
    for_susan, for_david = connect(susan), connect(david)
    for connection in (for_susan, for_david):
        connection.get_received()
    message = post_message(client, susan, "hello *David*")
    assert received(for_david, "message_changed") == [message]
    assert received(for_susan, "message_changed") == [message]  # her other tabs need it


def test_an_edited_message_is_pushed(client, accounts, connect):
    auth = accounts.login()
    message = post_message(client, auth, "helo")
    connection = connect(auth)
    connection.get_received()
    edited = client.put(f"/api/messages/{message['id']}", json={"source": "hello"},
                        headers=auth).json
    assert received(connection, "message_changed") == [edited]
    assert edited["change"] > message["change"]


def test_a_refused_post_pushes_nothing(client, accounts, connect):
    auth = accounts.login()
    connection = connect(auth)
    connection.get_received()
    assert_error(client.post("/api/messages", json={"source": " "}, headers=auth), 400,
                 fields={"source"})
    assert connection.get_received() == []


def test_a_transaction_rolled_back_pushes_nothing(client, accounts, connect, app):
    auth = accounts.login()
    connection = connect(auth)
    connection.get_received()
    db.session.add(Message(source="never", html="<p>never</p>",
                           user_id=user_named(client, "susan")["id"]))
    db.session.flush()  # numbered and remembered, then undone
    db.session.rollback()
    db.session.commit()
    assert connection.get_received() == []


def test_previews_from_the_worker_are_pushed(client, accounts, connect, web):
    auth = accounts.login()
    connection = connect(auth)
    app = client.application
    app.config["CELERY_TASK_ALWAYS_EAGER"] = False  # the task waits: the test runs it
    app.extensions["celery"].conf.task_always_eager = False
    web.page("/page", b"<title>A page</title>")
    message = post_message(client, auth, f"see {web.url('/page')}")
    connection.get_received()
    tasks.fetch_link_previews.run(message["id"])
    [pushed] = received(connection, "message_changed")
    assert pushed == client.get(f"/api/messages/{message['id']}").json
    assert pushed["previews_pending"] is False and "A page" in pushed["html"]


def test_previews_that_lost_to_an_edit_push_nothing(client, accounts, connect):
    auth = accounts.login()
    message = post_message(client, auth)
    connection = connect(auth)
    connection.get_received()
    tasks.store_previews(message["id"], "<p>an older text</p>", "<p>with previews</p>")
    assert connection.get_received() == []


def test_new_and_renamed_users_are_pushed(client, accounts, connect):
    auth = accounts.login("susan")
    connection = connect(auth)
    connection.get_received()
    accounts.register("david")
    [david] = received(connection, "user_changed")
    assert david == user_named(client, "david")
    susan = user_named(client, "susan")
    renamed = client.put(f"/api/users/{susan['id']}", json={"nickname": "sue"},
                         headers=auth).json
    assert received(connection, "user_changed") == [renamed]


def test_users_going_offline_and_online_are_pushed(client, clock, app, accounts, connect):
    connection = connect(accounts.login("susan"))
    accounts.login("david")
    clock.advance(app.config["PRESENCE_TIMEOUT"] + 1)
    sockets.refresh_presence(app)  # susan's browser is still there; david has gone
    connection.get_received()
    tasks.mark_offline_users()
    [david] = received(connection, "user_changed")
    assert david == user_named(client, "david") and david["online"] is False
    assert client.post("/api/tokens", auth=("david", "correct horse")).status_code == 200
    [david] = received(connection, "user_changed")
    assert david == user_named(client, "david") and david["online"] is True


def test_the_user_stays_online_while_one_tab_is_connected(client, accounts, connect):
    auth = accounts.login("susan")
    watcher = connect(accounts.login("david"))
    first, second = connect(auth), connect(auth)
    watcher.get_received()
    first.disconnect()
    assert user_named(client, "susan")["online"] is True
    assert received(watcher, "user_changed") == []
    second.disconnect()
    [susan] = received(watcher, "user_changed")
    assert susan["nickname"] == "susan" and susan["online"] is False
    assert count(Connection) == 1  # david's


def test_logging_out_in_one_tab_keeps_the_user_online_in_another(client, accounts, connect):
    tab_one, tab_two = accounts.login("susan"), {}
    response = client.post("/api/tokens", auth=("susan", "correct horse"))
    tab_two = {"Authorization": f"Bearer {response.json['token']}"}
    first, second = connect(tab_one), connect(tab_two)
    revoke(client, tab_one)
    assert not first.is_connected()  # the server closed the tab's connection
    assert second.is_connected()
    assert user_named(client, "susan")["online"] is True
    revoke(client, tab_two)
    assert user_named(client, "susan")["online"] is False
    assert count(Connection) == 0


def test_logging_out_without_a_browser_marks_the_user_offline(client, accounts):
    auth = accounts.login()
    revoke(client, auth)
    assert user_named(client, "susan")["online"] is False


def statements_of(engine):
    """Return a list that fills with the SQL statements the engine runs from now on."""
    statements = []
    event.listen(engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *args: statements.append(statement))
    return statements


def test_the_process_keeps_its_connections_and_users_online(client, clock, app, accounts,
                                                            connect):
    for nickname in ("susan", "david", "maria"):
        connect(accounts.login(nickname))
    for _ in range(5):
        clock.advance(Config.PRESENCE_REFRESH_INTERVAL)
        statements = statements_of(db.engine)
        sockets.refresh_presence(app)
        # One write for the whole process, however many browsers it holds.
        writes = [sql for sql in statements if sql.startswith(("UPDATE", "INSERT", "DELETE"))]
        assert len(writes) == 1 and writes[0].startswith("INSERT INTO processes")
        assert presence.mark_offline_users() == []
    assert [user["online"] for user in client.get("/api/users").json["users"]] == [True] * 3
    assert db.session.get(Process, app.extensions["flack_process"]).seen_at == clock.now
    assert count(Connection) == 3


def test_a_late_refresh_logs_nobody_out(client, clock, app, accounts, connect):
    # The process was too slow to refresh: the sweep took its rows, and susan offline.
    auth = accounts.login()
    connection = connect(auth)
    clock.advance(app.config["PRESENCE_TIMEOUT"] + 1)
    presence.mark_offline_users()
    assert count(Connection) == 0 and user_named(client, "susan")["online"] is False
    # Its next refresh writes them back: the browser stays connected, the token valid.
    sockets.refresh_presence(app)
    assert connection.is_connected()
    assert count(Connection) == 1 and user_named(client, "susan")["online"] is True
    assert client.get("/api/users", headers=auth).status_code == 200


def test_the_refresh_tells_the_browsers_the_latest_change(client, app, accounts, connect):
    # A browser that missed a push (its process died between commit and push, or the
    # message queue was away) learns that it is behind, and fetches what it missed.
    auth = accounts.login()
    connection = connect(auth)
    message = post_message(client, auth)
    connection.get_received()
    sockets.refresh_presence(app)
    assert received(connection, "latest_change") == [{"change": message["change"]}]


def test_the_refresh_survives_a_database_that_is_away(client, clock, app, accounts, connect,
                                                      monkeypatch, caplog):
    connection = connect(accounts.login())

    def database_away(*args):
        raise OperationalError("SELECT", {}, Exception("the database is away"))

    with monkeypatch.context() as patch:
        patch.setattr(presence, "refresh_connections", database_away)
        sockets.refresh_presence(app)  # logged, and tried again at the next interval
    assert "presence not refreshed" in caplog.text
    assert connection.is_connected()
    clock.advance(Config.PRESENCE_REFRESH_INTERVAL)
    sockets.refresh_presence(app)
    assert db.session.get(Process, app.extensions["flack_process"]).seen_at == clock.now


def test_a_password_change_closes_the_sessions_connections_at_once(client, accounts, connect):
    auth = accounts.login()
    watcher = connect(accounts.login("david"))
    connection = connect(auth)
    susan = user_named(client, "susan")
    watcher.get_received()
    # Every token of the user is revoked, and with them the connections that logged in
    # with them, now, as a logout does.
    client.put(f"/api/users/{susan['id']}", json={"password": "a new password"}, headers=auth)
    assert not connection.is_connected()
    assert count(Connection) == 1  # david's
    assert user_named(client, "susan")["online"] is False
    assert [user["online"] for user in received(watcher, "user_changed")] == [False]


def test_deleting_a_token_deletes_its_connections_on_every_database(client, accounts,
                                                                   connect):
    # ON DELETE CASCADE, which SQLite keeps only when each connection turns it on.
    connect(accounts.login())
    db.session.execute(delete(Token))
    db.session.commit()
    assert count(Connection) == 0


def test_a_refused_password_change_closes_nothing(client, accounts, connect):
    auth = accounts.login()
    accounts.login("david")
    connection = connect(auth)
    susan = user_named(client, "susan")
    response = client.put(f"/api/users/{susan['id']}",
                          json={"password": "a new password", "nickname": "david"}, headers=auth)
    assert response.status_code == 409  # the nickname is taken: nothing changes
    assert connection.is_connected()
    assert client.get("/api/users", headers=auth).status_code == 200


def test_sessions_that_a_rollback_kept_are_not_closed_later(client, accounts, connect):
    susan, david = connect(accounts.login("susan")), connect(accounts.login("david"))
    ids = {user["nickname"]: user["id"] for user in client.get("/api/users").json["users"]}
    sessions.end_sessions(Token.user_id == ids["susan"])
    db.session.rollback()  # susan's session goes on
    sessions.end_sessions(Token.user_id == ids["david"])
    db.session.commit()
    sessions.close_ended_connections()
    assert susan.is_connected() and not david.is_connected()


def test_the_purge_closes_the_connections_of_expired_tokens(client, clock, app, accounts,
                                                            connect):
    connection = connect(accounts.login())
    clock.advance(app.config["TOKEN_LIFETIME"])
    tasks.purge_expired_tokens()
    assert not connection.is_connected()
    assert count(Connection) == 0
    assert user_named(client, "susan")["online"] is False


def test_the_refresh_closes_the_connections_of_expired_tokens(client, clock, app, accounts,
                                                              connect):
    # Before the purge comes: a token that expires ends its session within one refresh.
    connection = connect(accounts.login())
    clock.advance(app.config["TOKEN_LIFETIME"])
    sockets.refresh_presence(app)
    assert not connection.is_connected()
    assert count(Connection) == 0


def test_the_sweep_forgets_connections_of_a_process_that_died(client, clock, app, accounts,
                                                              connect):
    auth = accounts.login()
    connect(auth)
    # A process that no longer refreshes its row, as if it had been killed.
    clock.advance(app.config["PRESENCE_TIMEOUT"] + 1)
    assert presence.mark_offline_users() == [user_named(client, "susan")["id"]]
    assert count(Connection) == 0 and count(Process) == 0


def test_a_process_that_refreshes_keeps_its_connections_through_the_sweep(
        client, clock, app, accounts, connect):
    alive = connect(accounts.login("susan"))
    other = connect(accounts.login("david"))
    david = user_named(client, "david")["id"]
    # david's connection belongs to another process, which dies.
    other_sid = sockets.socketio.server.manager.sid_from_eio_sid(other.eio_sid, "/")
    del app.extensions["flack_connections"][other_sid]
    db.session.add(Process(id="dead-host:1:0", seen_at=utils.timestamp()))
    db.session.flush()
    db.session.execute(update(Connection).where(Connection.user_id == david)
                       .values(process_id="dead-host:1:0"))
    db.session.commit()
    clock.advance(app.config["PRESENCE_TIMEOUT"] - 1)
    sockets.refresh_presence(app)
    clock.advance(2)
    assert presence.mark_offline_users() == [david]
    alive_sid = sockets.socketio.server.manager.sid_from_eio_sid(alive.eio_sid, "/")
    assert db.session.scalars(select(Connection.sid)).all() == [alive_sid]


def test_a_process_seen_exactly_a_timeout_ago_keeps_its_connections(client, clock, app,
                                                                     accounts, connect):
    connect(accounts.login())
    clock.advance(app.config["PRESENCE_TIMEOUT"])
    assert presence.mark_offline_users() == []
    assert count(Connection) == 1 and count(Process) == 1


def test_a_connection_reads_its_user_again_under_a_lock(client, accounts, connect):
    # The session read susan online; since then, her last tab closed on another process,
    # which took her offline. The connection must see that, not what was read before.
    auth = accounts.login()
    susan = db.session.scalar(select(User))
    assert susan.online is True
    db.session.connection().execute(update(User.__table__).values(online=False))
    assert presence.lock_user(susan.id).online is False
    db.session.commit()
    assert connect(auth).is_connected()
    assert user_named(client, "susan")["online"] is True


def test_a_process_row_the_sweep_deleted_is_made_again(client, app, accounts, connect):
    connect(accounts.login())
    db.session.execute(delete(Process))  # cascades to the connections
    db.session.commit()
    assert count(Connection) == 0
    sockets.refresh_presence(app)
    assert count(Process) == 1 and count(Connection) == 1


@pytest.mark.parametrize("args", [(), ("a",), ({"any": "thing"}, 1)])
def test_events_the_server_does_not_know_are_ignored(client, accounts, connect, caplog,
                                                     args):
    # v0.18's browsers said "still_here"; a browser of an older page still may.
    connection = connect(accounts.login())
    caplog.clear()  # the lines of the login's requests
    connection.emit("still_here", *args)
    connection.emit("anything_else", *args)
    assert connection.is_connected()
    assert "Traceback" not in caplog.text and not caplog.records


def test_a_connection_that_floods_is_told_and_closed(client, clock, app, accounts, connect):
    app.config.update(SOCKETIO_EVENT_BUDGET=5, SOCKETIO_EVENT_INTERVAL=10.0)
    flooder = connect(accounts.login("mallory"))
    bystander = connect(susan := accounts.login("susan"))
    flooder.get_received()
    for _ in range(5):
        flooder.emit("anything", "x")
    assert flooder.is_connected()
    assert received(flooder, "too_many_events") == []
    flooder.emit("anything", "x")  # one over the budget
    assert not flooder.is_connected()
    # Told before it was closed (the test client keeps what it got in its queue).
    assert [packet["args"] for packet in flooder.queue if packet["name"] == "too_many_events"
            ] == [[{"message": "this connection sent too many events"}]]
    # The others are not affected, nor is the flooder's user, who is still logged in.
    bystander.get_received()
    message = post_message(client, susan, "still here")
    assert received(bystander, "message_changed") == [message]
    assert client.get("/api/users", headers=susan).status_code == 200
    assert app.extensions["flack_event_budgets"] == {}  # forgotten with its connection


def test_the_budget_is_renewed_every_interval(client, clock, app, accounts, connect):
    app.config.update(SOCKETIO_EVENT_BUDGET=3, SOCKETIO_EVENT_INTERVAL=10.0)
    connection = connect(accounts.login())
    for _ in range(3):
        connection.emit("anything")
    clock.advance(9.9)
    connection.emit("anything")  # the fourth in one interval
    assert not connection.is_connected()
    connection = connect(accounts.login("david"))
    for _ in range(3):
        for _ in range(3):
            connection.emit("anything")
        clock.advance(10)
    assert connection.is_connected()
    assert received(connection, "too_many_events") == []


def test_statistics_are_pushed_on_a_timer(client, accounts, connect, app, monkeypatch):
    auth = accounts.login()
    connection = connect(auth)
    connection.get_received()
    naps = []

    def nap(seconds):
        naps.append(seconds)
        if len(naps) == 3:
            raise StopIteration  # out of the endless loop
    monkeypatch.setattr(sockets.socketio, "sleep", nap)
    with pytest.raises(StopIteration):
        sockets.push_stats_forever(app)
    assert naps == [app.config["STATS_PUSH_INTERVAL"]] * 3
    pushed = received(connection, "stats")
    assert len(pushed) == 2 and pushed[-1] == client.get("/api/stats").json | {
        "requests_per_second": pushed[-1]["requests_per_second"]}


def test_the_timer_pushes_to_this_processs_browsers_only(app, monkeypatch):
    emitted = []

    def nap(seconds):
        """Sleep not at all; end the endless loop after its first push."""
        if emitted:
            raise StopIteration

    monkeypatch.setattr(sockets.socketio, "emit",
                        lambda *args, **options: emitted.append(options))
    monkeypatch.setattr(sockets.socketio, "sleep", nap)
    with pytest.raises(StopIteration):
        sockets.push_stats_forever(app)
    # Every process pushes the same figure to its own: the queue would repeat it.
    assert emitted == [{"ignore_queue": True}]


def test_the_timer_starts_once_when_the_first_browser_connects(client, accounts, connect,
                                                               app, monkeypatch):
    started = []
    monkeypatch.setattr(sockets.socketio, "start_background_task",
                        lambda task, *args: started.append((task, args)))
    auth = accounts.login()
    connect(auth)
    assert started == []  # both intervals are 0 in the tests: no timer
    app.config.update(STATS_PUSH_INTERVAL=5.0, PRESENCE_REFRESH_INTERVAL=20.0)
    connect(auth)
    connect(auth)
    assert started == [(sockets.refresh_presence_forever, (app,)),
                       (sockets.push_stats_forever, (app,))]


def test_statistics_without_redis_are_not_pushed(client, accounts, connect, app, caplog):
    # Statistics in a Redis that does not answer: the connection works without them.
    app.extensions["flack_stats"] = stats.RedisCounts(f"redis://127.0.0.1:{free_port()}/0",
                                                      "flack:")
    connection = connect(accounts.login())
    assert received(connection, "stats") == []
    assert connection.is_connected()
    sockets.push_stats()  # what the timer does
    assert received(connection, "stats") == []
    assert caplog.text.count("statistics not pushed") == 2


class FriendlyConfig(TestingConfig):
    """Testing settings that let two other sites' pages connect."""
    ALLOWED_ORIGINS = "http://friends.example, https://chat.example"


@pytest.mark.parametrize("origin, allowed", [
    ("http://localhost", True),  # this site, as the test client calls itself
    ("http://friends.example", True),
    ("https://chat.example", True),
    ("http://evil.example", False),
    ("https://localhost", False),  # another scheme is another site
    ("http://localhost.evil.example", False),
])
def test_only_this_site_and_the_sites_set_may_connect(origin, allowed):
    client = create_app(FriendlyConfig).test_client()
    response = client.get("/socket.io/?EIO=4&transport=polling", headers={"Origin": origin})
    assert response.status_code == (200 if allowed else 400)


def test_by_default_only_this_site_may_connect(client):
    polling = "/socket.io/?EIO=4&transport=polling"
    assert client.get(polling, headers={"Origin": "http://localhost"}).status_code == 200
    assert client.get(polling, headers={"Origin": "http://friends.example"}).status_code == 400


def test_the_message_queue_is_redis_when_there_is_one():
    settings = {**vars_of(TestingConfig), "REDIS_URL": "redis://127.0.0.1:6379/0",
                "REDIS_PREFIX": "chat:"}
    queue = sockets.message_queue(settings, write_only=True)
    assert isinstance(queue, RedisManager) and queue.write_only
    assert queue.channel == "chat:socketio"  # beside the app's other keys
    settings["SOCKETIO_MESSAGE_QUEUE"] = "redis://127.0.0.1:6379/3"
    queue = sockets.message_queue(settings, write_only=False)
    assert queue.redis_url == "redis://127.0.0.1:6379/3" and not queue.write_only


def test_the_message_queue_is_a_folder_without_redis(tmp_path):
    settings = {**vars_of(TestingConfig), "LOCAL_BROKER_FOLDER": str(tmp_path)}
    queue = sockets.message_queue(settings, write_only=False)
    assert isinstance(queue, sockets.FolderManager) and not queue.write_only
    assert queue.url.startswith("filesystem://")
    assert queue.connection_options["transport"] is FolderTransport  # whole files only
    options = queue.connection_options["transport_options"]
    assert options["data_folder_in"] == options["data_folder_out"] == str(tmp_path / "socketio")
    assert (tmp_path / "socketio").is_dir()
    # One queue, whose name every web process that comes and goes shares, bound to
    # the exchange that every process writes to, and gone with the folder.
    web_queue = queue._queue()
    assert web_queue.name == queue._queue().name == "socketio.web"
    assert web_queue.exchange.name == "flack-socketio" and web_queue.exchange.type == "fanout"
    assert web_queue.durable is False
    sockets.message_queue(settings, write_only=True)  # the folder is there already: fine


def test_no_message_queue_when_tasks_run_in_the_request():
    assert sockets.message_queue(vars_of(TestingConfig), write_only=False) is None


def test_the_worker_only_writes_to_the_message_queue(app, tmp_path):
    app.config["LOCAL_BROKER_FOLDER"] = str(tmp_path)
    sockets.init_worker(app)
    emitter = app.extensions["socketio"]
    assert emitter is not sockets.socketio and emitter.server.manager.write_only
    assert emitter.async_mode == "threading"  # a Celery worker has no green threads


class FolderQueueConfig(TestingConfig):
    """Testing settings with a folder as Socket.IO's message queue."""
    LOCAL_BROKER_FOLDER = None  # set by the test


def test_a_web_process_reads_the_message_queue(tmp_path, monkeypatch):
    monkeypatch.setattr(FolderQueueConfig, "LOCAL_BROKER_FOLDER", str(tmp_path))
    app = create_app(FolderQueueConfig)
    manager = app.extensions["socketio"].server.manager
    assert isinstance(manager, sockets.FolderManager) and manager.write_only is False


class CompressingConfig(TestingConfig):
    """Testing settings that accept a browser's offer to compress WebSocket messages."""
    WEBSOCKET_COMPRESSION = True


@pytest.mark.parametrize("settings, offer_seen", [(TestingConfig, None),
                                                  (CompressingConfig, "permessage-deflate")])
def test_an_offer_to_compress_reaches_the_server_only_if_the_settings_accept_it(settings,
                                                                               offer_seen):
    app = create_app(settings)

    @app.get("/offer")
    def offer():
        return {"offer": request.headers.get("Sec-WebSocket-Extensions")}

    response = app.test_client().get(
        "/offer", headers={"Sec-WebSocket-Extensions": "permessage-deflate"})
    assert response.get_json() == {"offer": offer_seen}


def test_the_async_mode_is_the_settings_never_a_guess(app):
    # Left to guess, Flask-SocketIO would pick gevent, which is installed.
    assert app.config["SOCKETIO_ASYNC_MODE"] == "threading"
    assert app.extensions["socketio"].async_mode == "threading"


def test_gunicorn_tells_the_app_its_async_mode(monkeypatch):
    monkeypatch.delenv("SOCKETIO_ASYNC_MODE", raising=False)
    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    server = SimpleNamespace(cfg=SimpleNamespace(worker_class_str="gevent", workers=1))
    settings["on_starting"](server)
    assert os.environ["SOCKETIO_ASYNC_MODE"] == "gevent"


def test_the_users_list_of_the_api_is_unchanged_by_connections(client, accounts, connect):
    auth = accounts.login()
    connect(auth)
    assert db.session.scalar(select(User.online)) is True
    assert client.get("/api/users").json["users"][0].keys() == {
        "id", "nickname", "online", "created_at", "updated_at", "change", "last_seen_at",
        "_links"}
