"""Logs: one line for each request, and every line in a format that people or machines read.

LOG_FORMAT chooses the format: text, for people at a terminal, or json, one object a
line, for the platform that collects the logs of every container (production's
default). A line says when, how serious, which logger and what, and, while a request
is served, the request's id: the one that the proxy in front sent in X-Request-Id
(nginx's $request_id), or a new one. The response returns it, and a task that the
request sends carries it to the Celery worker, whose lines about that task carry it
too: one id finds every line of one action, in every process.

No line holds a password or a token: a request's line has the path without its query
string, and nothing of its headers or body.
"""
import contextvars
import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime

from celery import signals
from werkzeug.wsgi import get_path_info

# The id of the request being served. Each thread has its own, and so does each green
# thread of gunicorn's gevent worker: one request's id never shows in another's lines.
request_id = contextvars.ContextVar("request_id", default=None)
requests_logger = logging.getLogger("flack.requests")

# An id that the proxy sends is kept if it looks like one (nginx's is 32 hex digits):
# any other text could be too long, or forge a line of its own in a text log.
WELL_FORMED_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# The header of a task's message that carries the id to the worker.
TASK_HEADER = "request_id"
# The attributes that every log record has: any other one came from extra={...}.
RECORD_ATTRIBUTES = {*vars(logging.makeLogRecord({})), "message", "asctime", "taskName"}
# A path can hold any character once its %XX escapes are decoded: in a text log, a
# newline would start a line that the client wrote.
CONTROL_CHARACTERS = {code: f"\\x{code:02x}" for code in [*range(0x20), 0x7F]}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, request_id, and any extra."""

    def format(self, record):
        line = {"time": datetime.fromtimestamp(record.created, UTC)
                .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "level": record.levelname, "logger": record.name,
                "message": record.getMessage()}
        if (current := request_id.get()) is not None:
            line["request_id"] = current
        for name, value in vars(record).items():
            if name not in RECORD_ATTRIBUTES:
                line.setdefault(name, value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    """A line for people: time, level, logger, [request id], message."""

    def formatMessage(self, record):
        current = request_id.get()
        source = record.name if current is None else f"{record.name} [{current}]"
        return f"{self.formatTime(record)} {record.levelname} {source}: {record.message}"


FORMATTERS = {"text": TextFormatter, "json": JsonFormatter}


class StderrHandler(logging.StreamHandler):
    """Write to sys.stderr as it is at each line, as logging's last resort does."""
    # Not the stream of the moment the app was made: pytest, for one, swaps it.

    def __init__(self):
        logging.Handler.__init__(self)

    @property
    def stream(self):
        return sys.stderr


def init_app(app):
    """Write every line in the app's LOG_FORMAT, and one line for each of its requests."""
    handler = StderrHandler()
    handler.setFormatter(FORMATTERS[app.config["LOG_FORMAT"]]())
    root = logging.getLogger()
    for earlier in [old for old in root.handlers if isinstance(old, StderrHandler)]:
        root.removeHandler(earlier)  # an earlier app's, in this process: the tests make many
    # Libraries' lines too, through their loggers' parents. And the app's: Flask gives
    # app.logger a handler of its own only if no handler would write its lines.
    root.addHandler(handler)
    logging.captureWarnings(True)  # Python's warnings as lines too, not text among them
    if not app.logger.level:  # Flask sets DEBUG in debug mode
        app.logger.setLevel(logging.INFO)  # flack's loggers: the request lines are INFO
    logging.getLogger("werkzeug").addFilter(not_a_request_line)
    app.wsgi_app = RequestLog(app.wsgi_app)


def not_a_request_line(record):
    """Leave out the development server's line for each request: Flack writes its own."""
    # Werkzeug's line has the query string, which may hold a token; its format ends so.
    return not (isinstance(record.msg, str) and record.msg.endswith('] "%s" %s %s'))


class RequestLog:
    """WSGI middleware around the whole app: an id for each request, a line for each answer."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        sent = environ.get("HTTP_X_REQUEST_ID", "")
        token = request_id.set(sent if WELL_FORMED_ID.fullmatch(sent) else uuid.uuid4().hex)
        answer = {}

        def start_with_id(status, headers, exc_info=None):
            answer["status"] = int(status.split(" ", 1)[0])
            return start_response(status, [*headers, ("X-Request-Id", request_id.get())],
                                  exc_info)

        try:
            return self.wsgi_app(environ, start_with_id)
        finally:
            # Once the app has answered; a body it streams may still be on its way.
            log_request(environ, answer.get("status", unanswered_status(environ)), started)
            request_id.reset(token)


def unanswered_status(environ):
    """Return the status of a request that the app answered without start_response."""
    # Socket.IO answers a WebSocket's handshake on the socket itself, then ends the
    # request with an exception that the server expects; any other exception is a 500.
    return 101 if environ.get("HTTP_UPGRADE", "").lower() == "websocket" else 500


def log_request(environ, status, started):
    """Write the line of a request: who asked for what, the answer, and how long it took."""
    method, path = environ.get("REQUEST_METHOD", ""), get_path_info(environ)
    remote_addr = environ.get("REMOTE_ADDR", "")  # after ProxyFix (flack.limits) changed it
    duration_ms = round((time.perf_counter() - started) * 1000, 1)
    requests_logger.info(
        "%s %s %s %s %s ms", remote_addr, method, path.translate(CONTROL_CHARACTERS), status,
        duration_ms, extra={"method": method, "path": path, "status": status,
                            "duration_ms": duration_ms, "remote_addr": remote_addr})


@signals.before_task_publish.connect
def send_request_id(headers, **kwargs):
    """Put the id of the request that sends a task in the headers of the task's message."""
    if (current := request_id.get()) is not None:
        headers[TASK_HEADER] = current


@signals.task_prerun.connect
def receive_request_id(task, **kwargs):
    """Make the id that a task's message carries the current one while the task runs."""
    # Celery makes each header of the message an attribute of task.request. A task
    # run inside its request (task_always_eager) has no message: it keeps the request's.
    sent_by = task.request.get(TASK_HEADER) or request_id.get()
    task.request.request_id_token = request_id.set(sent_by)


@signals.task_postrun.connect
def forget_request_id(task, **kwargs):
    """Go back to the id of before the task: the worker's next task has its own."""
    request_id.reset(task.request.request_id_token)


def init_worker(app):
    """Write the Celery worker's lines in the app's LOG_FORMAT too."""
    formatter = FORMATTERS[app.config["LOG_FORMAT"]]

    def use_log_format(logger, **kwargs):
        """Give the handlers that Celery has just set up Flack's format."""
        for handler in logger.handlers:
            handler.setFormatter(formatter())

    def without_banner(instance, **kwargs):
        """Leave out the worker's banner, lines of text on stdout that no collector reads."""
        instance.quiet = True

    # Celery sets up its logging as the worker starts, after flack.worker made the app: it
    # replaces the root logger's handlers, Flack's among them, then sends these signals.
    for signal in (signals.after_setup_logger, signals.after_setup_task_logger):
        signal.connect(use_log_format, weak=False, dispatch_uid=f"flack.logs:{signal.name}")
    if app.config["LOG_FORMAT"] == "json":
        signals.celeryd_init.connect(without_banner, weak=False, dispatch_uid="flack.logs")
