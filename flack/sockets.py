"""Socket.IO: the server pushes every change to the browsers, which stop polling.

Each browser keeps one connection open, and logs in on it with its API token. When
a user or a message changes, whichever process changed it (a web process, or the
Celery worker that added a message's previews) pushes the new version to every
browser, through a message queue when there is one. A user is online while at
least one of their browsers is connected: each web process keeps the rows of the
connections it holds, and its own row in the processes table, fresh (flack.presence),
and tells its browsers the latest change number, so that a push that was lost is
fetched by the browsers that missed it.
"""
import logging
import os
import secrets
import socket
import threading

import kombu
import redis
import socketio as python_socketio
from flask import current_app, request
from flask_socketio import ConnectionRefusedError, SocketIO, disconnect, emit
from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from . import presence, stats, utils
from .auth import find_token
from .background import FolderTransport
from .models import ChangeCounter, Connection, Message, User, db
from .origins import allowed_origins

socketio = SocketIO()

# The event that carries each kind of row to the browsers, as the API shows it.
EVENTS = {User: "user_changed", Message: "message_changed"}


class FolderManager(python_socketio.KombuManager):
    """A message queue of files in a folder, for the one web process of `make run`."""

    def _queue(self):
        """Return the queue the web process reads: always the same one, by name."""
        # kombu's own name is new for each process, and a folder keeps the queues
        # of processes long gone: the worker would write a file to each of them.
        return kombu.Queue("socketio.web", self._exchange(), durable=False)


def message_queue_url(config):
    """Return the URL of the Redis server that carries pushes between processes, or None."""
    return config["SOCKETIO_MESSAGE_QUEUE"] or config["REDIS_URL"]


def message_queue(config, write_only):
    """Return the client manager that shares pushes between processes, or None."""
    url = message_queue_url(config)
    if url:
        return python_socketio.RedisManager(
            url, channel=f"{config['REDIS_PREFIX']}socketio", write_only=write_only)
    if config["LOCAL_BROKER_FOLDER"]:
        folder = os.path.join(config["LOCAL_BROKER_FOLDER"], "socketio")
        os.makedirs(folder, exist_ok=True)
        return FolderManager(
            "filesystem://localhost/", channel="flack-socketio", write_only=write_only,
            connection_options={
                "transport": FolderTransport,
                "transport_options": {"data_folder_in": folder, "data_folder_out": folder,
                                      "control_folder": folder, "polling_interval": 0.05}})
    return None  # one process, as in the tests: pushes go straight to its browsers


def library_logger(name):
    """Return a logger of Socket.IO's that writes errors only, through Flack's handlers."""
    logger = logging.getLogger(name)
    # Given no logger, Socket.IO adds a handler of its own, which writes each error a
    # second time and not in LOG_FORMAT. ERROR is the level it would choose: at INFO,
    # it writes every packet, and a browser's token with the first.
    logger.setLevel(logging.ERROR)
    return logger


def allowed_origin(config):
    """Return the check of the Origin header of a browser that connects."""
    others = set(allowed_origins(config))  # the same list as the API's CORS headers

    def check(origin, environ):
        """Let pages of this site connect, and those of the sites the settings name."""
        # Behind nginx, gunicorn sets wsgi.url_scheme from X-Forwarded-Proto.
        own = f"{environ['wsgi.url_scheme']}://{environ.get('HTTP_HOST', '')}"
        return origin == own or origin in others
    return check


def init_app(app):
    """Serve Socket.IO beside the application, and push its changes."""
    socketio.init_app(
        app,
        # Never guessed: Flask-SocketIO would pick gevent because it is installed,
        # even under the development server, whose threads it would then block.
        async_mode=app.config["SOCKETIO_ASYNC_MODE"],
        client_manager=message_queue(app.config, write_only=False),
        cors_allowed_origins=allowed_origin(app.config),
        # A browser sends only its token; anything much larger is not Flack's client.
        max_http_buffer_size=app.config["SOCKETIO_MAX_MESSAGE_SIZE"],
        logger=library_logger("socketio.server"),
        engineio_logger=library_logger("engineio.server"),
    )
    if not app.config["WEBSOCKET_COMPRESSION"]:
        # The WebSocket server (simple-websocket) accepts every browser's offer to
        # compress, and compresses each push once for each connection: declined here.
        app.wsgi_app = without_compression_offers(app.wsgi_app)
    # This process's name in the processes table, and the connections it holds:
    # {sid: (user_id, token_id)}, which it writes back if the sweep forgot them.
    app.extensions["flack_process"] = process_name()
    app.extensions["flack_connections"] = {}
    # What each connection has sent in its current interval: {sid: (start, events)}.
    app.extensions["flack_event_budgets"] = {}
    app.extensions["flack_timers"] = {"stats": threading.Lock(), "presence": threading.Lock()}


def without_compression_offers(wsgi_app):
    """Wrap a WSGI app so that it never sees a browser's offer to compress WebSocket messages."""
    def declining(environ, start_response):
        """Drop the offer (Sec-WebSocket-Extensions): the connection opens uncompressed."""
        environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)
        return wsgi_app(environ, start_response)
    return declining


def process_name():
    """Return a name for this web process that no other process has, now or later."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"


def init_worker(app):
    """Let a process without browsers, the Celery worker, push through the message queue."""
    emitter = SocketIO()
    emitter.init_app(None, client_manager=message_queue(app.config, write_only=True),
                     async_mode="threading", logger=library_logger("socketio.server"),
                     engineio_logger=library_logger("engineio.server"))
    app.extensions["socketio"] = emitter


def push(event_name, data, **options):
    """Send an event to every connected browser, in every process."""
    current_app.extensions["socketio"].emit(event_name, data, **options)


def close_connections(sids):
    """Close these connections, in whichever process holds them."""
    for sid in sids:
        current_app.extensions["socketio"].server.disconnect(sid)


def push_rows(rows):
    """Push users or messages that an UPDATE statement changed, as the API shows them."""
    for row in rows:
        push(EVENTS[type(row)], row.to_dict())


@event.listens_for(Session, "after_flush")
def remember_changes(session, flush_context):
    """Keep the new version of each row that the flush gave a change number."""
    for row in [*session.new, *session.dirty]:
        if type(row) in EVENTS and inspect(row).attrs.change.history.has_changes():
            session.info.setdefault("pushes", []).append((EVENTS[type(row)], row.to_dict()))


@event.listens_for(Session, "after_commit")
def push_changes(session):
    """Push the rows that changed once they are committed: browsers see nothing undone."""
    for event_name, data in session.info.pop("pushes", []):
        push(event_name, data)


@event.listens_for(Session, "after_rollback")
def forget_changes(session):
    """Forget the changes of a transaction that was rolled back."""
    session.info.pop("pushes", None)


def current_stats():
    """Return the statistics as /api/stats shows them, or None if Redis does not answer."""
    try:
        return stats.summary()
    except redis.RedisError as error:
        current_app.logger.warning("statistics not pushed: %s", error)
        return None


def push_stats(**options):
    """Push the requests per second of the whole deployment."""
    figures = current_stats()
    if figures is not None:
        push("stats", figures, **options)


def push_stats_forever(app):
    """Push the statistics to this process's browsers every STATS_PUSH_INTERVAL seconds."""
    while True:
        socketio.sleep(app.config["STATS_PUSH_INTERVAL"])
        with app.app_context():
            # This process's browsers only: every web process pushes to its own.
            push_stats(ignore_queue=True)


def refresh_presence(app):
    """Refresh this process's connections once, close those whose token has ended, and
    tell the others the latest change number."""
    with app.app_context():
        try:
            ended = presence.refresh_connections(app.extensions["flack_process"],
                                                 dict(app.extensions["flack_connections"]))
            db.session.commit()
            latest = db.session.get(ChangeCounter, 1).last
        except Exception:  # a database that is away now may answer next time
            db.session.rollback()
            app.logger.exception("presence not refreshed")
            return
        for sid in ended:
            socketio.server.disconnect(sid, ignore_queue=True)  # this process's own
        # A push can be lost: its process may die between the commit and the push, or
        # the message queue may be away. A browser that has not seen this change yet
        # fetches what it missed: nothing stays missing longer than one interval.
        socketio.emit("latest_change", {"change": latest}, ignore_queue=True)


def refresh_presence_forever(app):
    """Refresh this process's connections every PRESENCE_REFRESH_INTERVAL seconds."""
    while True:
        socketio.sleep(app.config["PRESENCE_REFRESH_INTERVAL"])
        refresh_presence(app)


def start_timers(app):
    """Start this process's timers, each once, when its first browser connects."""
    timers = app.extensions["flack_timers"]
    if app.config["PRESENCE_REFRESH_INTERVAL"] and timers["presence"].acquire(blocking=False):
        socketio.start_background_task(refresh_presence_forever, app)
    if app.config["STATS_PUSH_INTERVAL"] and timers["stats"].acquire(blocking=False):
        socketio.start_background_task(push_stats_forever, app)


@socketio.on("connect")
def connect(auth):
    """Let a browser in with a valid API token, and mark its user online."""
    token = auth.get("token") if isinstance(auth, dict) else None
    row = find_token(token) if isinstance(token, str) else None
    if row is None:
        raise ConnectionRefusedError("a valid token is required")
    app = current_app._get_current_object()
    process = app.extensions["flack_process"]
    presence.refresh_process(process)
    # Locked first: a last tab of the same user that closes meanwhile, in another
    # process, cannot take the user offline behind this connection's back.
    user = presence.lock_user(row.user_id)
    db.session.add(Connection(sid=request.sid, user_id=row.user_id, token_id=row.id,
                              process_id=process))
    user.mark_seen()
    db.session.commit()
    app.extensions["flack_connections"][request.sid] = (row.user_id, row.id)
    figures = current_stats()
    if figures is not None:
        emit("stats", figures)  # to this browser: the others get theirs on a timer
    start_timers(app)


def within_budget(sid):
    """Count an event from a connection; tell whether it is within the connection's budget."""
    config, budgets = current_app.config, current_app.extensions["flack_event_budgets"]
    now = utils.timestamp()
    start, events = budgets.get(sid, (now, 0))
    if now - start >= config["SOCKETIO_EVENT_INTERVAL"]:
        start, events = now, 0  # a new interval
    budgets[sid] = (start, events + 1)
    return events + 1 <= config["SOCKETIO_EVENT_BUDGET"]


@socketio.on("*")
def any_event(event_name, *args):
    """Ignore what a browser sends (Flack's client sends nothing), and close a flood."""
    # Each event costs this process some work, whatever its name; a client that sends
    # more than its budget is not Flack's client, and is told so and cut off.
    if not within_budget(request.sid):
        emit("too_many_events", {"message": "this connection sent too many events"})
        disconnect()


@socketio.on("disconnect")
def on_disconnect(reason):
    """Forget the connection; its user goes offline if it was their last one."""
    current_app.extensions["flack_connections"].pop(request.sid, None)
    current_app.extensions["flack_event_budgets"].pop(request.sid, None)
    connection = db.session.get(Connection, request.sid)
    if connection is not None:  # None: its session ended, or the sweep forgot it
        user_id = connection.user_id
        db.session.delete(connection)
        presence.go_offline_if_disconnected(user_id)
        db.session.commit()
