"""The Celery worker's application: `celery -A flack.worker worker`, as the Procfile runs it.

Settings come from the environment (or .env), as for the web server: the worker and
the web processes must name the same broker and the same database. Celery looks
for a Celery application named `celery` in this module.
"""
from config import ConfigError

from . import background, create_app, logs, sockets

try:
    flask_app = create_app()
    background.check_broker(flask_app)  # a clear error now, not a worker that waits for ever
    # The worker has no browsers of its own: what its tasks change, such as a message's
    # previews, goes to the web processes through the message queue, and on to theirs.
    sockets.init_worker(flask_app)
    logs.init_worker(flask_app)  # Celery's lines in LOG_FORMAT too
except ConfigError as error:
    raise SystemExit(f"Error: {error.message}") from None  # one line, as manage.py prints it
celery = flask_app.extensions["celery"]
