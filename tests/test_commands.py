"""The commands of manage.py and of the flask command."""
import json
import os
import re
import subprocess
import sys
import urllib.request

import flask.cli
import pytest
from click.testing import CliRunner
from flask.cli import ScriptInfo

import manage
from flack import main
from flack.models import Message, Token, User, db
from tests.helpers import PASSWORD, ROOT, free_port, wait_for_server


def manage_py(*args, **kwargs):
    """Run `python manage.py ...` in a new process and return the finished process."""
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, text=True,
                          capture_output=True, timeout=60, **kwargs)


@pytest.mark.servers  # a real development server: `make test-all` runs it
def test_db_upgrade_and_runserver_serve_the_chat(tmp_path):
    # A real process imports the package from scratch, as `make run` does.
    env = dict(os.environ, FLACK_CONFIG="development",
               DATABASE_URL=f"sqlite:///{tmp_path}/chat.sqlite",
               LOCAL_BROKER_FOLDER=str(tmp_path / "broker"))
    upgraded = manage_py("db", "upgrade", env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "Running upgrade  -> " in upgraded.stderr  # env.py shows Alembic's progress
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--port", str(port)], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        opener = wait_for_server(f"{base}/api/stats", server)
        body = json.dumps({"nickname": "susan", "password": PASSWORD}).encode()
        request = urllib.request.Request(f"{base}/api/users", data=body,
                                         headers={"Content-Type": "application/json"})
        with opener.open(request, timeout=5) as response:
            assert response.status == 201
            assert json.load(response)["nickname"] == "susan"
    finally:
        server.terminate()
        _, errors = server.communicate(timeout=10)
    assert "Traceback" not in errors


def test_runserver_refuses_a_database_without_the_latest_migration(app, fake_server):
    runner = app.test_cli_runner()
    # The tables exist, but no migration is recorded, as after an older stage's createdb.
    assert runner.invoke(args=["db", "stamp", "--purge", "base"]).exit_code == 0
    result = runner.invoke(args=["runserver"])
    assert result.exit_code == 1
    assert "run `python manage.py db upgrade` first" in result.output
    db.drop_all()  # and with no tables at all
    assert runner.invoke(args=["runserver"]).exit_code == 1
    assert fake_server.runs == []


class FakeServer:
    """A stand-in for run_simple() that records how it was called."""

    def __init__(self):
        self.runs = []

    def run_simple(self, host, port, app, use_reloader, use_debugger, **options):
        self.runs.append({"host": host, "port": port, "app": app,
                          "reloader": use_reloader, "debugger": use_debugger})


@pytest.fixture
def fake_server(app, monkeypatch):
    """Run runserver without a server, and record what it would have started."""
    # The app fixture made the tables; this records them as the latest migration's.
    assert app.test_cli_runner().invoke(args=["db", "stamp", "head"]).exit_code == 0
    fake = FakeServer()
    monkeypatch.setattr(flask.cli, "run_simple", fake.run_simple)
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    return fake


def runserver(app, *args):
    """Run `manage.py runserver` with this app, in this process; return click's result."""
    result = CliRunner().invoke(manage.cli, [*args], obj=ScriptInfo(create_app=lambda: app))
    assert result.exit_code == 0, result.output
    return result


def test_runserver_defaults(app, fake_server, monkeypatch):
    monkeypatch.delenv("PORT", raising=False)
    runserver(app, "runserver")
    assert fake_server.runs == [{"host": "127.0.0.1", "port": 5000, "app": app,
                                 "reloader": False, "debugger": False}]


def test_runserver_takes_flask_runs_options(app, fake_server, monkeypatch):
    monkeypatch.setenv("FLASK_DEBUG", "0")  # --debug sets it; restored afterwards
    monkeypatch.setenv("PORT", "8003")  # the option wins over the variable
    runserver(app, "runserver", "--host", "0.0.0.0", "--port", "8001", "--debug")
    run = fake_server.runs[0]
    assert (run["host"], run["port"], run["reloader"], run["debugger"]) == (
        "0.0.0.0", 8001, True, True)
    runserver(app, "runserver", "--debug", "--no-reload")
    assert (fake_server.runs[1]["port"], fake_server.runs[1]["reloader"]) == (8003, False)
    # manage.py's own --debug, before the command name, reaches runserver too.
    runserver(app, "--debug", "runserver", "--no-reload")
    assert fake_server.runs[2]["debugger"] is True


def test_shell_preloads_the_models(app):
    context = app.make_shell_context()
    assert context["app"] is app
    assert context["db"] is db
    assert {context[name] for name in ("User", "Token", "Message")} == {User, Token, Message}


def test_manage_test_runs_pytest_in_a_new_process(monkeypatch):
    calls = []

    def call(command, cwd):
        calls.append((command, cwd))
        return 3

    monkeypatch.setattr(subprocess, "call", call)
    result = CliRunner().invoke(manage.cli, ["test", "-k", "users", "-x"])
    assert result.exit_code == 3  # pytest's exit status is passed on
    assert calls == [([sys.executable, "-m", "pytest", "-k", "users", "-x"], ROOT)]


def test_code_passes_lint():
    result = manage_py("lint")
    assert result.returncode == 0, result.stdout + result.stderr


def test_flask_command_finds_the_app_commands():
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "flack", "--help"],
                            cwd=ROOT, text=True, capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    commands = re.findall(r"^  (\w+) ", result.stdout, re.MULTILINE)
    assert {"db", "runserver", "shell", "routes"} <= set(commands)
    assert not {"test", "lint"} & set(commands)  # those two belong to manage.py


def test_runserver_refuses_to_start_without_the_socketio_client(app, fake_server,
                                                                monkeypatch, tmp_path):
    monkeypatch.setattr(main, "SOCKET_IO_CLIENT", tmp_path)  # as before `npm ci`
    result = app.test_cli_runner().invoke(args=["runserver"])
    assert result.exit_code == 1
    assert "run `npm ci`" in result.output
    assert fake_server.runs == []
