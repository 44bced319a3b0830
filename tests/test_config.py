"""The settings in config.py: environments, environment variables and the .env file."""
import os
import re

import pytest
from click.testing import CliRunner

import config
import manage
from tests.helpers import ROOT


class CustomConfig(config.DevelopmentConfig):
    """A settings class of the reader's own, chosen by its dotted path."""
    STATS_WINDOW = 10


@pytest.fixture
def environ(monkeypatch, tmp_path):
    """A private copy of the environment, without Flack's variables and without .env."""
    monkeypatch.setattr(os, "environ", {
        name: value for name, value in os.environ.items()
        if name not in variables_read() and name != "FLACK_CONFIG"})
    monkeypatch.setattr(config, "ENV_FILE", str(tmp_path / ".env"))
    return os.environ


def variables_read():
    """Return the names of the environment variables that override settings."""
    return {config.ENVIRONMENT_NAMES.get(name, name)
            for name in dir(config.Config) if name.isupper()}


def test_development_is_the_default(environ):
    settings = config.load()
    assert settings["SQLALCHEMY_DATABASE_URI"] == "sqlite:///" + str(ROOT / "flack.sqlite")
    assert len(settings["SECRET_KEY"]) == 64  # generated: 32 random bytes in hex
    assert settings["LINK_PREVIEWS"] is True
    assert settings["PASSWORD_HASH_METHOD"] == "scrypt"  # slow on purpose, unlike the tests'
    assert "TESTING" not in settings


def test_flack_config_chooses_the_environment(environ):
    environ["FLACK_CONFIG"] = "testing"
    settings = config.load()
    assert settings["TESTING"] is True
    assert settings["SQLALCHEMY_DATABASE_URI"] == "sqlite://"
    assert config.load("development")["LINK_PREVIEWS"] is True  # a name given wins


def test_a_dotted_path_chooses_a_class(environ):
    environ.update(SECRET_KEY="k" * 64, REDIS_URL="redis://localhost:6379/0")
    assert config.load("config.ProductionConfig")["SECRET_KEY"] == "k" * 64
    assert config.load("tests.test_config.CustomConfig")["STATS_WINDOW"] == 10


@pytest.mark.parametrize("name", ["staging", "config.NoSuchConfig", "no_such_module.Config",
                                  ".Config", "production."])
def test_unknown_environment_is_a_clear_error(environ, name):
    with pytest.raises(config.ConfigError) as error:
        config.load(name)
    assert error.value.message.startswith(f"FLACK_CONFIG={name!r} is not an environment")
    assert "development, testing, production" in error.value.message


@pytest.mark.parametrize("key", [None, ""])
def test_production_needs_a_secret_key(environ, key):
    if key is not None:
        environ["SECRET_KEY"] = key
    with pytest.raises(config.ConfigError) as error:
        config.load("production")
    assert error.value.message.startswith("SECRET_KEY is not set")


def test_environment_overrides_settings(environ):
    environ.update(DATABASE_URL="postgresql://db.example/flack", SECRET_KEY="s3cret",
                   REDIS_URL="redis://redis.example:6379/0", LINK_PREVIEW_RETRIES="5",
                   PRESENCE_TIMEOUT="120", LINK_PREVIEW_TIMEOUT="1.5",
                   LINK_PREVIEWS="off", LINK_PREVIEW_ALLOW_PRIVATE="Yes", STATS_WINDOW="")
    settings = config.load("production")
    assert settings["SQLALCHEMY_DATABASE_URI"] == "postgresql://db.example/flack"
    assert settings["SECRET_KEY"] == "s3cret"
    assert settings["PRESENCE_TIMEOUT"] == 120
    assert settings["LINK_PREVIEW_TIMEOUT"] == 1.5
    assert settings["LINK_PREVIEWS"] is False
    assert settings["LINK_PREVIEW_ALLOW_PRIVATE"] is True
    assert settings["STATS_WINDOW"] == 60  # empty counts as unset
    assert settings["REDIS_URL"] == "redis://redis.example:6379/0"
    assert settings["LINK_PREVIEW_RETRIES"] == 5


@pytest.mark.parametrize("broker", ["REDIS_URL", "LOCAL_BROKER_FOLDER"])
def test_production_needs_a_broker(environ, broker):
    environ["SECRET_KEY"] = "s3cret"
    with pytest.raises(config.ConfigError) as error:
        config.load("production")
    assert error.value.message.startswith("CELERY_BROKER_URL is not set")
    assert "REDIS_URL=" in error.value.message
    environ[broker] = "redis://localhost:6379/0"
    assert config.load("production")[broker] == "redis://localhost:6379/0"


def test_production_needs_a_message_queue_for_the_workers_pushes(environ):
    environ.update(SECRET_KEY="s3cret", CELERY_BROKER_URL="amqp://localhost//")
    with pytest.raises(config.ConfigError) as error:
        config.load("production")
    assert error.value.message.startswith("SOCKETIO_MESSAGE_QUEUE is not set")
    environ["SOCKETIO_MESSAGE_QUEUE"] = "redis://localhost:6379/0"
    assert config.load("production")["SOCKETIO_MESSAGE_QUEUE"] == "redis://localhost:6379/0"


def test_tasks_run_in_the_request_need_no_message_queue(environ):
    environ.update(SECRET_KEY="s3cret", CELERY_BROKER_URL="memory://",
                   CELERY_TASK_ALWAYS_EAGER="1")
    assert config.load("production")["SOCKETIO_MESSAGE_QUEUE"] is None


# eventlet: the mode of v0.13 to v0.20, which an old .env may still name.
@pytest.mark.parametrize("mode", ["asyncio", "eventlet"])
def test_async_mode_must_be_one_socketio_knows(environ, mode):
    environ["SOCKETIO_ASYNC_MODE"] = mode
    with pytest.raises(config.ConfigError) as error:
        config.load("development")
    assert error.value.message == f"SOCKETIO_ASYNC_MODE: use threading, gevent, not {mode!r}"


def test_log_format_is_text_for_people_and_json_in_production(environ):
    environ.update(SECRET_KEY="s3cret", REDIS_URL="redis://localhost:6379/0")
    assert config.load("development")["LOG_FORMAT"] == "text"
    assert config.load("production")["LOG_FORMAT"] == "json"
    environ["LOG_FORMAT"] = "text"
    assert config.load("production")["LOG_FORMAT"] == "text"


def test_log_format_must_be_one_flack_writes(environ):
    environ["LOG_FORMAT"] = "logfmt"
    with pytest.raises(config.ConfigError) as error:
        config.load("development")
    assert error.value.message == "LOG_FORMAT: use text, json, not 'logfmt'"


@pytest.mark.parametrize("setting", ["PRESENCE_REFRESH_INTERVAL", "LAST_SEEN_INTERVAL"])
def test_presence_is_refreshed_before_the_presence_timeout(environ, setting):
    environ.update({setting: "60", "PRESENCE_TIMEOUT": "60"})
    with pytest.raises(config.ConfigError) as error:
        config.load("development")
    assert error.value.message.startswith(f"{setting} must be shorter than PRESENCE_TIMEOUT")
    environ[setting] = "59.9"
    assert config.load("development")[setting] == 59.9


def test_a_lost_preview_task_is_sent_again_before_the_message_gives_up(environ):
    environ.update(LINK_PREVIEW_RESEND_AFTER="600", LINK_PREVIEW_GIVE_UP_AFTER="600")
    with pytest.raises(config.ConfigError) as error:
        config.load("development")
    assert error.value.message.startswith("LINK_PREVIEW_RESEND_AFTER must be shorter than")
    environ["LINK_PREVIEW_RESEND_AFTER"] = "599"
    assert config.load("development")["LINK_PREVIEW_RESEND_AFTER"] == 599


def test_development_has_a_folder_as_broker(environ):
    settings = config.load("development")
    assert settings["LOCAL_BROKER_FOLDER"] == str(ROOT / "broker")
    assert settings["CELERY_BROKER_URL"] is settings["REDIS_URL"] is None


@pytest.mark.parametrize(("variable", "text", "message"), [
    ("PRESENCE_TIMEOUT", "1 minute", "PRESENCE_TIMEOUT: '1 minute' is not a valid integer."),
    ("LINK_PREVIEW_TIMEOUT", "fast", "LINK_PREVIEW_TIMEOUT: 'fast' is not a valid float."),
    ("LINK_PREVIEWS", "maybe", "LINK_PREVIEWS: 'maybe' is not a valid boolean."),
])
def test_bad_values_are_clear_errors(environ, variable, text, message):
    environ[variable] = text
    with pytest.raises(config.ConfigError) as error:
        config.load("development")
    assert error.value.message.startswith(message)


def test_testing_ignores_the_environment(environ):
    environ.update(DATABASE_URL="sqlite:////tmp/not-for-tests.sqlite", LINK_PREVIEWS="1")
    settings = config.load("testing")
    assert settings["SQLALCHEMY_DATABASE_URI"] == "sqlite://"
    assert settings["LINK_PREVIEWS"] is False


def test_env_file_is_read_and_the_environment_wins(environ):
    with open(config.ENV_FILE, "w") as env_file:
        env_file.write("# a comment\nFLACK_CONFIG=production\nSECRET_KEY=from-the-file\n"
                       "MESSAGE_MAX_LENGTH=500\nREDIS_URL=redis://localhost:6379/0\n")
    environ["MESSAGE_MAX_LENGTH"] = "800"
    settings = config.load()
    assert settings["SECRET_KEY"] == "from-the-file"
    assert settings["MESSAGE_MAX_LENGTH"] == 800


def test_env_example_documents_every_variable():
    example = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]*)=", example, re.MULTILINE))
    # PORT and HOST are the servers': runserver reads PORT, gunicorn.conf.py both.
    assert documented == variables_read() | {"FLACK_CONFIG", "PORT", "HOST"}


def run_manage_py(*args):
    """Run manage.py's command line in this process; return click's result."""
    return CliRunner().invoke(manage.cli, [*args])


def test_production_server_refuses_to_start_without_a_key(environ):
    environ.update(FLACK_CONFIG="production", SECRET_KEY="")
    result = run_manage_py("runserver")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: SECRET_KEY is not set")
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_unknown_environment_stops_the_server(environ):
    environ["FLACK_CONFIG"] = "prod"
    result = run_manage_py("runserver")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: FLACK_CONFIG='prod' is not an environment")
