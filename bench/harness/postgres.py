"""PostgreSQL for the scenarios that use it: is it there, and a schema of a run's own."""
import contextlib
import os
import secrets
import subprocess
from urllib.parse import urlsplit

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
CHECK_SECONDS = 30
# Run with a stage's python, whose SQLAlchemy and psycopg speak to the server:
# argv is the URL, then "check", or "create" or "drop" and a schema's name.
SCRIPT = """
import sys
import sqlalchemy
url, action, *schema = sys.argv[1:]
try:
    engine = sqlalchemy.create_engine(url, connect_args={"connect_timeout": 5})
    with engine.begin() as connection:
        if action == "create":
            connection.execute(sqlalchemy.text(f"CREATE SCHEMA {schema[0]}"))
        elif action == "drop":
            connection.execute(sqlalchemy.text(f"DROP SCHEMA {schema[0]} CASCADE"))
except Exception as error:
    sys.exit(f"{type(error).__name__}: {str(error).splitlines()[0]}")
"""


def url_from_environment():
    """Return FLACK_TEST_POSTGRES_URL, as the tests read it, or this machine's server."""
    return os.environ.get("FLACK_TEST_POSTGRES_URL") or DEFAULT_URL


def without_password(url):
    """Return a database URL with its password, if any, masked."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=f"{parts.username}:***@{host}").geturl()


def problem(python, url, *args):
    """Run the script with a stage's python; return why it failed, or "" if it did not."""
    try:
        done = subprocess.run([str(python), "-c", SCRIPT, url, *args], capture_output=True,
                              text=True, timeout=CHECK_SECONDS, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return f"no answer within {CHECK_SECONDS} seconds"
    if done.returncode == 0:
        return ""
    lines = done.stderr.strip().splitlines()
    return lines[-1] if lines else f"exit status {done.returncode}"


def unreachable(python, url):
    """Return why the server at url does not answer, or "" if it does."""
    found = problem(python, url, "check")
    return f"PostgreSQL at {without_password(url)} did not answer: {found}" if found else ""


@contextlib.contextmanager
def schema(python, url, prefix):
    """Make a new schema on the server; yield a URL whose tables go in it; drop it after."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    found = problem(python, url, "create", name)
    if found:
        raise RuntimeError(f"PostgreSQL at {without_password(url)}: {found}")
    separator = "&" if "?" in url else "?"
    try:
        # The schema first in the search path: every table the app makes goes in it.
        yield f"{url}{separator}options=-csearch_path%3D{name}"
    finally:
        problem(python, url, "drop", name)


# Run with a stage's python: create or drop a database (outside a transaction, as they must be).
DATABASE_SCRIPT = """
import sys
import sqlalchemy
url, action, name = sys.argv[1:]
try:
    engine = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT",
                                      connect_args={"connect_timeout": 5})
    with engine.connect() as connection:
        if action == "create":
            connection.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
        else:
            connection.execute(sqlalchemy.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
except Exception as error:
    sys.exit(f"{type(error).__name__}: {str(error).splitlines()[0]}")
"""


@contextlib.contextmanager
def database(python, url, prefix):
    """Make a new database on the server; yield (its URL, its name); drop it after.

    For a scenario that reads pg_stat_database: its counters are then the app's alone.
    """
    name = f"{prefix}_{secrets.token_hex(4)}"

    def run(action):
        try:
            done = subprocess.run([str(python), "-c", DATABASE_SCRIPT, url, action, name],
                                  capture_output=True, text=True, timeout=CHECK_SECONDS,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return f"no answer within {CHECK_SECONDS} seconds"
        return done.stderr.strip().splitlines()[-1] if done.returncode else ""

    found = run("create")
    if found:
        raise RuntimeError(f"PostgreSQL at {without_password(url)}: {found}")
    parts = urlsplit(url)
    try:
        yield parts._replace(path=f"/{name}").geturl(), name
    finally:
        run("drop")
