"""Health checks for the platform that runs Flack's containers: /healthz and /readyz.

GET /healthz answers {"status": "ok"} as long as the process answers at all, and
touches nothing else: a platform restarts a process that stops answering it. GET
/readyz checks what the chat needs, and a platform sends requests only to a process
that answers it with a 200:

    {"status": "ready", "checks": {"database": "ok", "migrations": "ok",
                                   "broker": "ok", "message_queue": "ok"}}

Otherwise it answers 503, with "status": "not ready" and a short reason for each check
that failed: "unreachable" for a server that does not answer (Redis within a second),
"at <revision>, head is <revision>" for a database that needs `manage.py db upgrade`
("at none": tables that no migration made), "unknown" for migrations that a database
out of reach cannot tell. A reason never holds a URL or an error's text, either of
which could hold a password. A check that does not apply passes: "not used" for a
broker or a message queue that is a folder, tasks run inside their request, or one
process alone; "not checked" for a broker that is not Redis.

Neither is rate limited, counted in the request statistics or marks anyone online:
a platform asks every few seconds, and it is not a user.
"""
import functools

import redis
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Blueprint, current_app
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from .background import broker_setting
from .limits import limiter
from .models import db
from .sockets import message_queue_url

health = Blueprint("health", __name__)
limiter.exempt(health)

OK, NOT_USED, NOT_CHECKED = "ok", "not used", "not checked"
PASSING = {OK, NOT_USED, NOT_CHECKED}


@health.get("/healthz")
def healthz():
    """Answer as long as the process does."""
    return {"status": "ok"}


@health.get("/readyz")
def readyz():
    """Tell whether this process can serve the chat: 200 if it can, 503 and why if not."""
    checks = {**database_checks(), "broker": broker_check(),
              "message_queue": redis_check(message_queue_url(current_app.config))}
    if all(result in PASSING for result in checks.values()):
        return {"status": "ready", "checks": checks}
    return {"status": "not ready", "checks": checks}, 503


def database_checks():
    """Check that the database answers, and that every migration has been applied to it."""
    try:
        with db.engine.connect() as connection:
            connection.execute(select(1))
            applied = applied_revisions(connection)
    except SQLAlchemyError:
        return {"database": "unreachable", "migrations": "unknown"}
    newest = newest_revisions()
    if applied == newest:
        return {"database": OK, "migrations": OK}
    return {"database": OK, "migrations": f"at {listed(applied)}, head is {listed(newest)}"}


def applied_revisions(connection):
    """Return the revisions of the migrations that the database has."""
    return frozenset(MigrationContext.configure(connection).get_current_heads())


def newest_revisions():
    """Return the revisions of the newest migration scripts."""
    return script_heads(current_app.extensions["migrate"].directory)


@functools.cache
def script_heads(directory):
    """Return the newest revisions in a migrations folder, read once: they never change."""
    return frozenset(ScriptDirectory(directory).get_heads())


def listed(revisions):
    """Return revisions as a reason shows them."""
    return ", ".join(sorted(revisions)) or "none"


def broker_check():
    """Check the broker that carries the tasks to the worker."""
    if current_app.extensions["celery"].conf.task_always_eager:
        return NOT_USED  # each task runs inside the request that sends it
    setting = broker_setting(current_app.config)
    if setting == "LOCAL_BROKER_FOLDER":
        return NOT_USED  # files in a folder: nothing to reach
    return redis_check(current_app.config[setting])


def redis_check(url):
    """Ping the Redis server at url, for a second at most."""
    if url is None:
        return NOT_USED
    if not url.startswith(("redis://", "rediss://")):
        return NOT_CHECKED
    try:
        with redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1) as client:
            client.ping()
    except (redis.RedisError, OSError):
        return "unreachable"
    return OK
