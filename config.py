"""Flack's settings: one class per environment, and every value from the environment.

FLACK_CONFIG chooses the class: development (the default), testing or production,
or the dotted path of a class of your own, such as mysettings.StagingConfig.
An environment variable of a setting's name overrides it, except for the database,
whose variable is DATABASE_URL as platforms name it. A .env file beside this one
is read first; variables already set in the environment win.
"""
import os
import secrets

import click
from dotenv import load_dotenv
from werkzeug.utils import import_string

# The project's top folder, where this file and manage.py are.
basedir = os.path.abspath(os.path.dirname(__file__))
ENV_FILE = os.path.join(basedir, ".env")
ENVIRONMENT_NAMES = {"SQLALCHEMY_DATABASE_URI": "DATABASE_URL"}
# Click, which comes with Flask, reads yes/no values and numbers with clear errors.
CLICK_TYPES = {bool: click.BOOL, int: click.INT, float: click.FLOAT}
# The ways Socket.IO can wait for many connections at once: threads for the
# development server, or the green threads of gunicorn's gevent worker.
ASYNC_MODES = ("threading", "gevent")
# How log lines look: text for people, json (one object a line) for a log collector.
LOG_FORMATS = ("text", "json")


class ConfigError(click.ClickException):
    """A configuration that the application refuses to start with."""
    # A ClickException, so that manage.py and flask print it as one line of error.


class Config:
    """Settings shared by every environment; with no SECRET_KEY, the app refuses to start."""
    SECRET_KEY = None
    SQLALCHEMY_DATABASE_URI = "sqlite:///" + os.path.join(basedir, "flack.sqlite")
    MAX_CONTENT_LENGTH = 64 * 1024         # bytes in a request body
    PASSWORD_HASH_METHOD = "scrypt"        # werkzeug.security's method for new passwords
    PASSWORD_HASH_THREADS = 1              # hashes that one process runs at once, each on a core
    TOKEN_LIFETIME = 24 * 60 * 60          # seconds a token stays valid
    PRESENCE_TIMEOUT = 60                  # seconds without a request before offline
    PRESENCE_CHECK_INTERVAL = 5.0          # seconds between presence sweeps
    LAST_SEEN_INTERVAL = 15.0              # seconds between two writes of a user's last_seen_at
    TOKEN_PURGE_INTERVAL = 60 * 60         # seconds between purges of expired tokens
    STATS_WINDOW = 60                      # seconds the requests-per-second average covers
    REDIS_PREFIX = "flack:"                # the start of the names of Flack's keys in Redis
    MESSAGE_MAX_LENGTH = 2000              # characters of Markdown in a message
    MESSAGES_DEFAULT_LIMIT = 100
    MESSAGES_MAX_LIMIT = 500
    USERS_DEFAULT_LIMIT = 100              # users in a page of GET /api/users
    USERS_MAX_LIMIT = 500
    LINK_PREVIEWS = True                   # fetch a preview of each link in a message
    LINK_PREVIEW_ALLOW_PRIVATE = False     # True lets previews reach local addresses
    LINK_PREVIEW_TIMEOUT = 3.0             # seconds to connect, and to download a page
    LINK_PREVIEW_MAX_BYTES = 256 * 1024    # bytes of a page that are read at most
    LINK_PREVIEW_MAX_REDIRECTS = 3
    LINK_PREVIEW_MAX_LINKS = 3             # previews per message
    LINK_PREVIEW_RETRIES = 3               # new tries after a page fails to answer
    LINK_PREVIEW_RESEND_AFTER = 120.0      # seconds pending before the task is sent again
    LINK_PREVIEW_GIVE_UP_AFTER = 600.0     # seconds pending before a message goes without
    LINK_PREVIEW_REPAIR_INTERVAL = 60.0    # seconds between two repairs of pending previews
    # Background tasks: the broker that carries them to the Celery worker.
    CELERY_BROKER_URL = None               # REDIS_URL's server if unset
    REDIS_URL = None                       # redis://host:6379/0
    LOCAL_BROKER_FOLDER = None             # a folder as broker, for one machine only
    CELERY_TASK_ALWAYS_EAGER = False       # True runs each task in the request that sends it
    # Where Celery beat keeps the times it last sent each periodic task.
    BEAT_SCHEDULE_FILE = os.path.join(basedir, "celerybeat-schedule")
    # Socket.IO: how the server pushes changes to the browsers.
    SOCKETIO_ASYNC_MODE = "threading"      # gunicorn.conf.py sets gevent
    SOCKETIO_MESSAGE_QUEUE = None          # REDIS_URL's server if unset
    # Other sites whose pages may use the API and connect, comma-separated, such as
    # https://chat.example.com: CORS headers for /api, and Socket.IO's origin check.
    ALLOWED_ORIGINS = ""
    PRESENCE_REFRESH_INTERVAL = 20.0       # seconds between a web process's refreshes of its row
    SOCKETIO_MAX_MESSAGE_SIZE = 4096       # bytes a browser may send at once: its token
    # Whether a browser's offer to compress each push (permessage-deflate) is accepted:
    # on, each copy is compressed for its own connection (measured on v0.22's page).
    WEBSOCKET_COMPRESSION = False
    STATS_PUSH_INTERVAL = 5.0              # seconds between pushes of the request statistics
    # Events a browser may send per interval; over it, it is cut off (Flack's send none).
    SOCKETIO_EVENT_BUDGET = 10
    SOCKETIO_EVENT_INTERVAL = 10.0         # seconds
    # Rate limits (Flask-Limiter's notation: "10 per minute", or several with ";"). They are
    # kept in Redis when REDIS_URL is set, so that every process counts together, or else
    # in each process's memory. Every login counts against its nickname, failed ones against
    # the address too.
    RATELIMIT_ENABLED = True
    LOGIN_LIMIT_PER_NICKNAME = "10 per minute"
    LOGIN_LIMIT_PER_ADDRESS = "30 per minute"
    REGISTER_LIMIT_PER_ADDRESS = "10 per hour"
    MESSAGE_LIMIT_PER_USER = "10 per 10 seconds"
    # How many proxies in front of the web processes set X-Forwarded-For: the address a
    # limit counts is the one that the nearest of them saw. 0: the client connects directly.
    PROXIES = 0
    LOG_FORMAT = "text"                    # or json: one JSON object a line (flack.logs)


class DevelopmentConfig(Config):
    """Working on Flack on your own computer."""
    # A new key every time the server starts is fine here: nothing lasting is signed.
    SECRET_KEY = secrets.token_hex(32)
    # Without Redis, the tasks go through files in this folder: `make run` needs no server.
    LOCAL_BROKER_FOLDER = os.path.join(basedir, "broker")


class TestingConfig(Config):
    """The test suite: a database in memory, no previews unless a test asks, no environment."""
    TESTING = True
    SECRET_KEY = "testing"
    SQLALCHEMY_DATABASE_URI = "sqlite://"
    LINK_PREVIEWS = False
    # A slow hash protects stored passwords; the tests hash hundreds of them and test
    # what the app does with a hash, not how hard the hash is to crack.
    PASSWORD_HASH_METHOD = "pbkdf2:sha256:1"
    LINK_PREVIEW_RETRIES = 0  # a page that fails gets no new try, unless a test asks
    # Each task runs at once, inside the request; the tests that start a real worker
    # choose a real broker instead.
    CELERY_TASK_ALWAYS_EAGER = True
    CELERY_BROKER_URL = "memory://"
    STATS_PUSH_INTERVAL = 0.0  # no pushes on a timer, unless a test asks
    PRESENCE_REFRESH_INTERVAL = 0.0  # no refreshes on a timer: tests call refresh_presence()
    # Limits that no other test reaches; the tests of the limits set their own.
    LOGIN_LIMIT_PER_NICKNAME = LOGIN_LIMIT_PER_ADDRESS = "1000 per minute"
    REGISTER_LIMIT_PER_ADDRESS = MESSAGE_LIMIT_PER_USER = "1000 per minute"


class ProductionConfig(Config):
    """A public server: nothing secret has a default."""
    LOG_FORMAT = "json"  # read by the platform that collects the logs, not by people


ENVIRONMENTS = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def find_config_class(name):
    """Return the settings class for an environment name or a dotted class path."""
    try:
        config_class = ENVIRONMENTS.get(name) or import_string(name)
    except (ImportError, ValueError):
        config_class = None
    if not isinstance(config_class, type):
        raise ConfigError(
            f"FLACK_CONFIG={name!r} is not an environment: use {', '.join(ENVIRONMENTS)}, "
            "or the dotted path of a class, such as config.ProductionConfig")
    return config_class


def from_environment(settings):
    """Return the settings that environment variables override, as the defaults' types."""
    overrides = {}
    for name, default in settings.items():
        variable = ENVIRONMENT_NAMES.get(name, name)
        text = os.environ.get(variable)
        if text:  # an empty variable counts as unset
            try:
                overrides[name] = CLICK_TYPES.get(type(default), click.STRING).convert(
                    text, None, None)
            except click.BadParameter as error:
                raise ConfigError(f"{variable}: {error.message}") from None
    return overrides


def load(config=None):
    """Return the settings of a class, or of an environment named; FLACK_CONFIG's by default."""
    load_dotenv(ENV_FILE)
    if not isinstance(config, type):
        config = find_config_class(config or os.environ.get("FLACK_CONFIG") or "development")
    settings = {name: getattr(config, name) for name in dir(config) if name.isupper()}
    if not settings.get("TESTING"):  # tests must not depend on the shell they run in
        settings.update(from_environment(settings))
    if not settings["SECRET_KEY"]:
        raise ConfigError(
            f"SECRET_KEY is not set: the {config.__name__} settings need it from the "
            "environment or .env (make one with: "
            "python -c 'import secrets; print(secrets.token_hex(32))')")
    if not (settings["CELERY_BROKER_URL"] or settings["REDIS_URL"]
            or settings["LOCAL_BROKER_FOLDER"]):
        raise ConfigError(
            f"CELERY_BROKER_URL is not set: the {config.__name__} settings need a broker for "
            "the background tasks, such as REDIS_URL=redis://localhost:6379/0")
    if not (settings["SOCKETIO_MESSAGE_QUEUE"] or settings["REDIS_URL"]
            or settings["LOCAL_BROKER_FOLDER"] or settings["CELERY_TASK_ALWAYS_EAGER"]):
        raise ConfigError(
            f"SOCKETIO_MESSAGE_QUEUE is not set: the {config.__name__} settings need one, or "
            "what the worker changes never reaches the browsers; REDIS_URL's server will do")
    if os.environ.get("SOCKETIO_ORIGINS") and not settings.get("TESTING"):
        raise ConfigError("SOCKETIO_ORIGINS is now ALLOWED_ORIGINS: since v0.20 the same "
                          "list lets other sites' pages use the API (CORS) and connect")
    if settings["SOCKETIO_ASYNC_MODE"] not in ASYNC_MODES:
        raise ConfigError(f"SOCKETIO_ASYNC_MODE: use {', '.join(ASYNC_MODES)}, "
                          f"not {settings['SOCKETIO_ASYNC_MODE']!r}")
    if settings["LOG_FORMAT"] not in LOG_FORMATS:
        raise ConfigError(f"LOG_FORMAT: use {', '.join(LOG_FORMATS)}, "
                          f"not {settings['LOG_FORMAT']!r}")
    if settings["PRESENCE_REFRESH_INTERVAL"] >= settings["PRESENCE_TIMEOUT"]:
        raise ConfigError("PRESENCE_REFRESH_INTERVAL must be shorter than PRESENCE_TIMEOUT, "
                          "or connected users would be marked offline between refreshes")
    if settings["LAST_SEEN_INTERVAL"] >= settings["PRESENCE_TIMEOUT"]:
        raise ConfigError("LAST_SEEN_INTERVAL must be shorter than PRESENCE_TIMEOUT, "
                          "or active users would be marked offline between two writes")
    if settings["LINK_PREVIEW_RESEND_AFTER"] >= settings["LINK_PREVIEW_GIVE_UP_AFTER"]:
        raise ConfigError("LINK_PREVIEW_RESEND_AFTER must be shorter than "
                          "LINK_PREVIEW_GIVE_UP_AFTER, or a lost task would never be sent again")
    return settings
