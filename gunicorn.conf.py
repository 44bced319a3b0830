"""Gunicorn's settings for Flack: `gunicorn -c gunicorn.conf.py flack.wsgi:app`.

Gunicorn reads this file as Python. GUNICORN_CMD_ARGS, and options on the
command line, override any setting here: GUNICORN_CMD_ARGS="--bind 0.0.0.0:8080",
say, without touching this file.
"""
import json
import logging
import os
from datetime import UTC, datetime

# Not `import config`: gunicorn would take a name `config` here for its own setting.
from config import ConfigError
from config import load as load_settings

# Socket.IO's async mode for each worker class that can hold many connections open.
# Gunicorn 26 removed its eventlet worker, which Flack ran on up to v0.20.
SOCKETIO_ASYNC_MODES = {"gevent": "gevent"}

# HOST and PORT, like `manage.py runserver`. Only this machine can connect by
# default, as when nginx runs beside gunicorn; a platform that routes outside
# traffic to the process (a PaaS) needs HOST=0.0.0.0, and sets PORT itself.
bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '5000')}"

# Each connection gets a green thread, so a slow client or a long request does
# not hold up everyone else. gevent's worker needs gunicorn's gevent extra
# (requirements.txt), which brings the packaging module that it imports.
worker_class = "gevent"
# One process, and no more: a Socket.IO client's requests must all reach the process
# that holds its connection, and gunicorn hands each request to any of its workers.
# To use more cores, run several gunicorns, each on its own port, behind nginx's
# ip_hash, as `make serve` does.
workers = 1
# The most connections the worker holds at once; more wait in the queue. Each open
# browser holds one for as long as its page is open, so the limit is well above the
# people online at once; the system's limit on open files (ulimit -n) must allow it too.
worker_connections = 10000

# Seconds a worker may go without checking in before gunicorn restarts it: with
# green threads, code that never waits for I/O blocks all the others as well.
timeout = 30
# Seconds that requests in progress get to finish when the server stops.
graceful_timeout = 10
# Seconds an idle connection stays open for the client's next request.
keepalive = 5

# The app is imported in the worker, after the worker has monkey patched the
# standard library for green threads, so that its network calls are green too.
preload_app = False

# Logs go to the console, where honcho, systemd or a PaaS collect them. The app writes
# a line for each request itself (flack.logs), with the request's id and without the
# query string, which can hold a token: gunicorn's access log would repeat each one.
accesslog = None
errorlog = "-"


def log_format():
    """Return the LOG_FORMAT that the app reads, from the environment or .env."""
    try:
        return load_settings()["LOG_FORMAT"]
    except ConfigError:  # the worker stops with the error when it imports the app
        return "text"


class JsonLines(logging.Formatter):
    """Gunicorn's own lines in JSON, with the fields of the app's (flack.logs.JsonFormatter)."""
    # Not the app's formatter: importing the flack package here, in gunicorn's main
    # process, would import the whole app before gevent patches the worker (preload_app).

    def format(self, record):
        line = {"time": datetime.fromtimestamp(record.created, UTC)
                .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "level": record.levelname, "logger": record.name,
                "message": record.getMessage()}
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line)


if log_format() == "json":
    # Python's logging.config.dictConfig(), which gunicorn merges into its defaults.
    logconfig_dict = {
        "root": {"handlers": []},  # the default's would write the app's lines again
        "loggers": {"gunicorn.error": {"handlers": ["stderr"], "propagate": False}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json",
                                "stream": "ext://sys.stderr"}},
        "formatters": {"json": {"()": JsonLines}},
    }

# Addresses whose X-Forwarded-Proto header is believed: nginx on this machine.
forwarded_allow_ips = "127.0.0.1,::1"

# Gunicorn 25 opens a control socket for the gunicornc tool, at a path that
# all of one user's gunicorns share. Flack does not use it.
control_socket_disable = True


def on_starting(server):
    """Tell the app which green threads the workers run, or refuse what Socket.IO cannot use."""
    worker = server.cfg.worker_class_str
    if worker not in SOCKETIO_ASYNC_MODES:
        raise SystemExit(f"Error: Flack runs on gunicorn's gevent worker, not {worker!r}: "
                         "Socket.IO holds a connection open for each browser")
    if server.cfg.workers != 1:
        raise SystemExit("Error: Flack runs one gunicorn worker: a Socket.IO client must reach "
                         "the process that holds its connection; run more gunicorns instead")
    # The workers inherit it, and read it when they import the app.
    os.environ["SOCKETIO_ASYNC_MODE"] = SOCKETIO_ASYNC_MODES[worker]
