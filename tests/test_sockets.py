"""Socket.IO: logging in on connect, every change pushed, and presence from connections."""
import json
import os
import runpy
from types import SimpleNamespace

import pytest
from socketio import RedisManager
from sqlalchemy import select

from config import TestingConfig
from flack import create_app, presence, sockets, stats, tasks
from flack.background import FolderTransport
from flack.models import Connection, Message, User, db
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
    assert client.get("/api/users", headers=auth).status_code == 401  # it is gone


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
    assert row.user_id == susan["id"] and row.seen_at == clock.now
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
    assert_error(client.post("/api/messages", json={"source": " "}, headers=auth), 400)
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
    connection.emit("still_here")  # susan's browser is still there; david has gone
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


def test_a_heartbeat_keeps_the_connection_and_its_user_online(client, clock, app, accounts,
                                                              connect):
    auth = accounts.login()
    connection = connect(auth)
    for _ in range(5):
        clock.advance(app.config["HEARTBEAT_INTERVAL"])
        connection.emit("still_here")
        presence.mark_offline_users()
    assert user_named(client, "susan")["online"] is True
    assert user_named(client, "susan")["last_seen_at"] == clock.now
    assert db.session.scalar(select(Connection.seen_at)) == clock.now


def test_a_heartbeat_on_a_revoked_token_closes_the_connection(client, accounts, connect):
    auth = accounts.login()
    connection = connect(auth)
    susan = user_named(client, "susan")
    # The password changes: every token of the user is revoked, and with them,
    # once they next say they are here, the connections that logged in with them.
    client.put(f"/api/users/{susan['id']}", json={"password": "a new password"}, headers=auth)
    connection.emit("still_here")
    assert not connection.is_connected()
    assert count(Connection) == 0


def test_a_heartbeat_on_an_expired_token_closes_the_connection(client, clock, app, accounts,
                                                               connect):
    auth = accounts.login()
    connection = connect(auth)
    clock.advance(app.config["TOKEN_LIFETIME"])
    connection.emit("still_here")
    assert not connection.is_connected()


def test_the_sweep_forgets_connections_of_a_process_that_died(client, clock, app, accounts,
                                                              connect):
    auth = accounts.login()
    connect(auth)
    # A connection that no longer says it is there, as if its process had been killed.
    clock.advance(app.config["PRESENCE_TIMEOUT"] + 1)
    assert presence.mark_offline_users() == [user_named(client, "susan")["id"]]
    assert count(Connection) == 0


def test_a_connection_that_still_heartbeats_survives_the_sweep(client, clock, app, accounts,
                                                              connect):
    auth = accounts.login()
    connect(auth)  # a connection that goes silent
    alive = connect(auth)
    clock.advance(app.config["PRESENCE_TIMEOUT"] - 1)
    alive.emit("still_here")
    clock.advance(2)
    assert presence.mark_offline_users() == []
    alive_sid = sockets.socketio.server.manager.sid_from_eio_sid(alive.eio_sid, "/")
    assert db.session.scalars(select(Connection.sid)).all() == [alive_sid]


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
    assert started == []  # STATS_PUSH_INTERVAL = 0 in the tests: no timer
    app.config["STATS_PUSH_INTERVAL"] = 5.0
    connect(auth)
    connect(auth)
    assert started == [(sockets.push_stats_forever, (app,))]


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
    SOCKETIO_ORIGINS = "http://friends.example, https://chat.example"


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


def test_the_async_mode_is_the_settings_never_a_guess(app):
    # Left to guess, Flask-SocketIO would pick eventlet, which is installed.
    assert app.config["SOCKETIO_ASYNC_MODE"] == "threading"
    assert app.extensions["socketio"].async_mode == "threading"


@pytest.mark.parametrize("worker, mode", [("eventlet", "eventlet"), ("gevent", "gevent")])
def test_gunicorn_tells_the_app_its_async_mode(monkeypatch, worker, mode):
    monkeypatch.delenv("SOCKETIO_ASYNC_MODE", raising=False)
    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    server = SimpleNamespace(cfg=SimpleNamespace(worker_class_str=worker, workers=1))
    settings["on_starting"](server)
    assert os.environ["SOCKETIO_ASYNC_MODE"] == mode


def test_the_page_tells_the_client_how_often_to_heartbeat(client, app):
    app.config["HEARTBEAT_INTERVAL"] = 7.5
    assert 'data-heartbeat-seconds="7.5"' in client.get("/").text


def test_the_users_list_of_the_api_is_unchanged_by_connections(client, accounts, connect):
    auth = accounts.login()
    connect(auth)
    assert db.session.scalar(select(User.online)) is True
    assert client.get("/api/users").json["users"][0].keys() == {
        "id", "nickname", "online", "created_at", "updated_at", "change", "last_seen_at",
        "_links"}
