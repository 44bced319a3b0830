"""Flack's settings: one class per environment, and every value from the environment.

FLACK_CONFIG chooses the environment: development (the default), testing or
production, or the dotted path of a class, such as config.ProductionConfig.
A setting is overridden by the environment variable of the same name, except
SQLALCHEMY_DATABASE_URI, whose variable is DATABASE_URL. A .env file beside
this one is read first; variables already set in the environment win.
"""
import importlib
import os
import secrets

import click
from dotenv import load_dotenv

# The project's top folder, where this file and manage.py are.
basedir = os.path.abspath(os.path.dirname(__file__))
ENV_FILE = os.path.join(basedir, ".env")
ENVIRONMENT_NAMES = {"SQLALCHEMY_DATABASE_URI": "DATABASE_URL"}
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off"}


class ConfigError(click.ClickException):
    """A configuration that the application refuses to start with."""
    # A ClickException, so that manage.py and flask print it as one line of error.


class Config:
    """Settings shared by every environment."""
    # from_environment: whether environment variables override these settings.
    # required: settings that must have a value, from the class or the environment.
    from_environment = True
    required = ()

    SECRET_KEY = None
    SQLALCHEMY_DATABASE_URI = "sqlite:///" + os.path.join(basedir, "flack.sqlite")
    MAX_CONTENT_LENGTH = 64 * 1024         # bytes in a request body
    TOKEN_LIFETIME = 24 * 60 * 60          # seconds a token stays valid
    PRESENCE_TIMEOUT = 60                  # seconds without a request before offline
    PRESENCE_CHECK_INTERVAL = 5.0          # seconds between presence sweeps
    STATS_WINDOW = 60                      # seconds the requests-per-second average covers
    MESSAGE_MAX_LENGTH = 2000              # characters of Markdown in a message
    MESSAGES_DEFAULT_LIMIT = 100
    MESSAGES_MAX_LIMIT = 500
    LINK_PREVIEWS = True                   # fetch a preview of each link in a message
    LINK_PREVIEW_ALLOW_PRIVATE = False     # True lets previews reach local addresses
    LINK_PREVIEW_TIMEOUT = 3.0             # seconds to connect, and to download a page
    LINK_PREVIEW_MAX_BYTES = 256 * 1024    # bytes of a page that are read at most
    LINK_PREVIEW_MAX_REDIRECTS = 3
    LINK_PREVIEW_MAX_LINKS = 3             # previews per message


class DevelopmentConfig(Config):
    """Working on Flack on your own computer."""
    # A new key every time the server starts is fine here: nothing lasting is signed.
    SECRET_KEY = secrets.token_hex(32)


class TestingConfig(Config):
    """The test suite: an empty database in memory, and no previews unless a test asks."""
    # Tests must not depend on the shell they run in, nor touch a real database.
    from_environment = False

    TESTING = True
    SECRET_KEY = "testing"
    SQLALCHEMY_DATABASE_URI = "sqlite://"
    LINK_PREVIEWS = False


class ProductionConfig(Config):
    """A public server: nothing secret has a default."""
    required = ("SECRET_KEY",)


ENVIRONMENTS = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def find_config_class(name):
    """Return the settings class for an environment name or a dotted class path."""
    if name in ENVIRONMENTS:
        return ENVIRONMENTS[name]
    module_name, _, class_name = name.rpartition(".")
    try:
        config_class = getattr(importlib.import_module(module_name), class_name)
    except (ValueError, ImportError, AttributeError):
        raise ConfigError(
            f"FLACK_CONFIG={name!r} is not an environment: use {', '.join(ENVIRONMENTS)}, "
            "or the dotted path of a class, such as config.ProductionConfig") from None
    return config_class


def convert(text, default, variable):
    """Convert an environment variable's text to the type of the setting's default."""
    if isinstance(default, bool):  # before int: True and False are ints too
        if text.lower() in TRUE_WORDS | FALSE_WORDS:
            return text.lower() in TRUE_WORDS
        raise ConfigError(f"{variable}={text!r} is not a yes/no value: use 1 or 0")
    for kind in (int, float):
        if isinstance(default, kind):
            try:
                return kind(text)
            except ValueError:
                raise ConfigError(
                    f"{variable}={text!r} is not a number ({kind.__name__})") from None
    return text


def settings_of(config_class):
    """Return the settings of a class, with the environment's values over its own."""
    settings = {name: getattr(config_class, name)
                for name in dir(config_class) if name.isupper()}
    if config_class.from_environment:
        for name, default in settings.items():
            variable = ENVIRONMENT_NAMES.get(name, name)
            if os.environ.get(variable):  # an empty variable counts as unset
                settings[name] = convert(os.environ[variable], default, variable)
    for name in config_class.required:
        if not settings.get(name):
            raise ConfigError(
                f"{ENVIRONMENT_NAMES.get(name, name)} is not set: the "
                f"{config_class.__name__} settings need it from the environment or .env "
                "(make one with: python -c 'import secrets; print(secrets.token_hex(32))')")
    return settings


def load(config=None):
    """Return the settings of a class, or of an environment named; FLACK_CONFIG's by default."""
    load_dotenv(ENV_FILE)
    if isinstance(config, type):
        return settings_of(config)
    return settings_of(find_config_class(config or os.environ.get("FLACK_CONFIG")
                                         or "development"))
