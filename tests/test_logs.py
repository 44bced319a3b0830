"""Logs: one line for each request, JSON lines that a machine reads, a request id that
travels to the worker, and never a password or a token in any line."""
import base64
import io
import json
import logging
import re
import runpy
import sys
import threading
import time
import urllib.request
import warnings
from types import SimpleNamespace

import pytest
from celery import signals
from celery.worker.request import Request
from werkzeug.serving import make_server

import config
from flack import logs, stats, tasks
from tests.helpers import (
    PASSWORD,
    ROOT,
    Accounts,
    LocalWeb,
    app_with_tables,
    free_port,
    html_page,
    post_message,
)
from tests.test_servers import Browser, Web, Worker, prepare_database, production_env

ID = "0123456789abcdef0123456789abcdef"  # as nginx's $request_id looks


def settings(**values):
    """Return the testing settings, changed."""
    return type("Changed", (config.TestingConfig,), values)


@pytest.fixture(params=["json", "text"])
def log_format(request):
    """Each log format in turn."""
    return request.param


@pytest.fixture
def json_app():
    """An app that writes JSON lines, in its app context, with its tables."""
    with app_with_tables(settings(LOG_FORMAT="json")) as app:
        yield app


def json_lines(capsys):
    """Return the lines written to stderr since the last call, each of them parsed."""
    return [json.loads(line) for line in capsys.readouterr().err.splitlines()]


def request_line(lines, path):
    """Return the one line of the requests for a path."""
    [line] = [line for line in lines if line["logger"] == "flack.requests"
              and line["path"] == path]
    return line


@pytest.fixture
def durations(monkeypatch):
    """Make every request take 12.3 ms by the clock of flack.logs."""
    times = iter([100.0, 100.0123] * 20)
    monkeypatch.setattr(logs, "time", SimpleNamespace(perf_counter=lambda: next(times)))


def test_a_json_line_for_each_request(json_app, capsys, durations):
    response = json_app.test_client().get("/api/users?after=0", headers={"X-Request-Id": ID})
    line = request_line(json_lines(capsys), "/api/users")
    time = line.pop("time")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", time)  # ISO 8601, UTC
    assert line == {"level": "INFO", "logger": "flack.requests",
                    "message": "127.0.0.1 GET /api/users 200 12.3 ms", "request_id": ID,
                    "method": "GET", "path": "/api/users", "status": 200,
                    "duration_ms": 12.3, "remote_addr": "127.0.0.1"}
    assert response.headers["X-Request-Id"] == ID


def test_a_text_line_for_each_request(capsys, durations):
    with app_with_tables(settings(LOG_FORMAT="text")) as app:
        app.test_client().get("/api/users?after=0", headers={"X-Request-Id": ID})
    [line] = capsys.readouterr().err.splitlines()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO flack.requests "
                        rf"\[{ID}\]: 127.0.0.1 GET /api/users 200 12.3 ms", line)


def test_the_json_fields_of_any_line():
    record = logging.makeLogRecord({"name": "flack", "levelname": "WARNING", "msg": "%s went",
                                    "args": ("it",), "created": 1_800_000_000.25,
                                    "message_id": 3})
    assert json.loads(logs.JsonFormatter().format(record)) == {
        "time": "2027-01-15T08:00:00.250Z", "level": "WARNING", "logger": "flack",
        "message": "it went", "message_id": 3}


def test_an_exception_is_a_field_of_its_line(json_app, capsys):
    try:
        raise ValueError("broken")
    except ValueError:
        json_app.logger.exception("it failed")
    [line] = json_lines(capsys)
    assert line["message"] == "it failed"
    assert line["exception"].startswith("Traceback") and "ValueError: broken" in line["exception"]


def test_each_line_is_written_once_to_the_stderr_of_the_moment(monkeypatch):
    for _ in range(2):  # as the tests do: many apps in one process
        with app_with_tables(settings(LOG_FORMAT="json")) as app:
            pass
    stderr = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    app.logger.warning("once")
    [line] = stderr.getvalue().splitlines()
    assert json.loads(line)["message"] == "once"


def test_python_warnings_are_lines_too(capsys):
    logging.captureWarnings(False)  # pytest catches the warnings of each test its own way
    with app_with_tables(settings(LOG_FORMAT="json")), warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("deprecated", DeprecationWarning, stacklevel=1)
    [line] = json_lines(capsys)
    assert line["logger"] == "py.warnings" and "DeprecationWarning: deprecated" in line["message"]


def test_each_answer_has_a_new_request_id(json_app, capsys):
    client = json_app.test_client()
    ids = [client.get("/healthz").headers["X-Request-Id"] for _ in range(2)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", sent) for sent in ids)
    assert ids[0] != ids[1]
    assert [line["request_id"] for line in json_lines(capsys)] == ids


@pytest.mark.parametrize("sent", ["", "x" * 65, "two words", "<script>", "zoë", "a/b"])
def test_a_malformed_request_id_is_replaced(json_app, capsys, sent):
    response = json_app.test_client().get("/healthz", headers={"X-Request-Id": sent})
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-Id"])
    assert request_line(json_lines(capsys), "/healthz")["request_id"] == (
        response.headers["X-Request-Id"])


def test_every_line_of_a_request_carries_its_id(json_app, capsys):
    json_app.extensions["flack_stats"] = stats.RedisCounts(
        f"redis://127.0.0.1:{free_port()}/0", "flack:")  # away: each request logs a warning
    json_app.test_client().get("/api/users", headers={"X-Request-Id": ID})
    json_app.logger.warning("after the request")
    warning, request, after = json_lines(capsys)
    assert warning["message"].startswith("request not counted")
    assert warning["request_id"] == request["request_id"] == ID
    assert "request_id" not in after


def test_socket_io_requests_have_a_line_and_an_id(json_app, capsys):
    response = json_app.test_client().get("/socket.io/?EIO=4&transport=polling")
    assert response.status_code == 200
    line = request_line(json_lines(capsys), "/socket.io/")
    assert line["status"] == 200 and line["request_id"] == response.headers["X-Request-Id"]


def test_the_address_is_the_one_the_app_sees_behind_a_proxy(capsys):
    with app_with_tables(settings(LOG_FORMAT="json", PROXIES=1)) as app:
        app.test_client().get("/healthz", headers={"X-Forwarded-For": "203.0.113.7"})
    assert request_line(json_lines(capsys), "/healthz")["remote_addr"] == "203.0.113.7"


def test_a_path_cannot_write_a_line_of_its_own(capsys):
    with app_with_tables(settings(LOG_FORMAT="text")) as app:
        app.test_client().get("/nothing%0A2026-01-01 00:00:00,000 INFO forged")
    [line] = capsys.readouterr().err.splitlines()
    assert "/nothing\\x0a2026-01-01" in line


@pytest.mark.parametrize("error, environ, status", [
    (StopIteration, {"HTTP_UPGRADE": "websocket"}, 101),  # as engineio ends a WebSocket
    (RuntimeError, {}, 500),
])
def test_a_request_that_ends_in_an_exception_has_a_line(json_app, capsys, error, environ,
                                                        status):
    def wsgi_app(environ, start_response):
        raise error()

    with pytest.raises(error):
        logs.RequestLog(wsgi_app)({"REQUEST_METHOD": "GET", "PATH_INFO": "/socket.io/",
                                   **environ}, None)
    assert request_line(json_lines(capsys), "/socket.io/")["status"] == status


def test_the_development_server_writes_no_line_of_its_own(json_app, capsys):
    server = make_server("127.0.0.1", 0, json_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,))
    thread.start()
    try:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"http://127.0.0.1:{server.port}/healthz?token=s3cret", timeout=10):
            pass
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
    logging.getLogger("werkzeug").warning("its other lines stay")
    lines = json_lines(capsys)
    assert [line["logger"] for line in lines] == ["flack.requests", "werkzeug"]
    assert request_line(lines, "/healthz")["status"] == 200


def test_socketio_errors_are_written_once_in_the_log_format(json_app, capsys):
    response = json_app.test_client().get("/socket.io/?EIO=4&transport=polling",
                                          headers={"Origin": "https://evil.example"})
    assert response.status_code == 400
    [refusal] = [line for line in json_lines(capsys) if line["logger"] == "engineio.server"]
    assert refusal["message"].startswith("https://evil.example is not an accepted origin.")
    # Given no logger, Socket.IO would add a handler that writes each line again.
    assert logging.getLogger("engineio.server").handlers == []
    assert logging.getLogger("socketio.server").handlers == []


def test_no_password_or_token_in_any_line(log_format, capsys, caplog):
    caplog.set_level(logging.DEBUG)  # every logger that has no level of its own writes all
    with app_with_tables(settings(LOG_FORMAT=log_format)) as app:
        client = app.test_client()
        accounts = Accounts(client)
        susan = accounts.login("susan", PASSWORD)  # the password in JSON, then in Basic auth
        user = client.get("/api/users", headers=susan).json["users"][0]
        client.put(f"/api/users/{user['id']}", json={"password": "another secret"},
                   headers=susan)
        david = accounts.login("david", PASSWORD)
        client.get(f"/api/users?token={token_of(david)}")
        client.delete("/api/tokens", headers=david)
        response = client.post("/api/tokens", auth=("david", PASSWORD))
        browser = response.json["token"]
        # A browser's Socket.IO login, the token in its connect packet, as engineio gets it.
        polling = "/socket.io/?EIO=4&transport=polling"
        sid = json.loads(client.get(polling).text[1:])["sid"]
        client.post(f"{polling}&sid={sid}", data="40" + json.dumps({"token": browser}))
        assert '40{"sid"' in client.get(f"{polling}&sid={sid}").text  # connected
        client.post(f"{polling}&sid={sid}", data="1")  # closed
    output = capsys.readouterr().err + caplog.text
    assert "/api/tokens" in output and "/socket.io/" in output
    basic = base64.b64encode(f"susan:{PASSWORD}".encode()).decode()
    for secret in (PASSWORD, "another secret", basic, token_of(susan), token_of(david), browser):
        assert secret not in output


def token_of(auth):
    """Return the token of an Authorization header."""
    return auth["Authorization"].removeprefix("Bearer ")


def test_a_task_carries_the_request_id_to_the_worker(json_app, capsys, caplog):
    caplog.set_level(logging.INFO)  # Celery's own lines too
    celery = json_app.extensions["celery"]
    celery.conf.task_always_eager = False  # to the broker, in this process's memory
    json_app.config["LINK_PREVIEWS"] = True
    client = json_app.test_client()
    auth = Accounts(client).login()
    with celery.connection_for_read() as connection:
        queue = connection.SimpleQueue(celery.conf.task_default_queue)
        queue.clear()  # what other tests sent
        post_message(client, {**auth, "X-Request-Id": ID}, "see http://127.0.0.1:9/")
        message = queue.get(timeout=1)
        queue.close()
    assert message.headers[logs.TASK_HEADER] == ID
    capsys.readouterr()
    assert logs.request_id.get() is None  # the request is over: only the message has it
    Request(message, app=celery).execute()  # as the worker runs a task it received
    lines = json_lines(capsys)
    assert any(line["logger"] == "flack" and line["message"].startswith("no preview for")
               for line in lines)
    assert any(line["logger"] == "celery.app.trace" and "succeeded" in line["message"]
               for line in lines)
    assert {line.get("request_id") for line in lines} == {ID}
    assert logs.request_id.get() is None  # and the worker's next task starts without


def test_a_task_sent_outside_a_request_carries_no_id(json_app):
    celery = json_app.extensions["celery"]
    celery.conf.task_always_eager = False
    with celery.connection_for_read() as connection:
        queue = connection.SimpleQueue(celery.conf.task_default_queue)
        queue.clear()
        tasks.request_link_previews(1)  # as the repair sends it, from Celery beat
        message = queue.get(timeout=1)
        queue.close()
    assert logs.TASK_HEADER not in message.headers


def test_a_task_run_inside_its_request_keeps_the_request_id(json_app, capsys):
    json_app.config["LINK_PREVIEWS"] = True  # and each task runs at once (the tests' settings)
    client = json_app.test_client()
    post_message(client, {**Accounts(client).login(), "X-Request-Id": ID},
                 "see http://127.0.0.1:9/")
    [preview] = [line for line in json_lines(capsys) if line["logger"] == "flack"]
    assert preview["message"].startswith("no preview for") and preview["request_id"] == ID


@pytest.fixture
def worker_signals():
    """Disconnect what flack.logs.init_worker connects, after the test."""
    yield
    for signal in (signals.after_setup_logger, signals.after_setup_task_logger):
        signal.disconnect(dispatch_uid=f"flack.logs:{signal.name}")
    signals.celeryd_init.disconnect(dispatch_uid="flack.logs")


@pytest.mark.parametrize("log_format, quiet", [("json", True), ("text", False)])
def test_the_worker_writes_in_the_log_format(worker_signals, log_format, quiet):
    with app_with_tables(settings(LOG_FORMAT=log_format)) as app:
        logs.init_worker(app)
    # What Celery does as the worker starts: a banner unless quiet, then its own handlers.
    worker = SimpleNamespace(quiet=False)
    signals.celeryd_init.send(sender="celery@test", instance=worker, conf=None, options={})
    assert worker.quiet is quiet  # no text among the JSON
    logger = logging.getLogger("celery.test")
    logger.propagate = False  # only Celery's handler, as for its task logger
    logger.addHandler(logging.StreamHandler(io.StringIO()))
    try:
        signals.after_setup_logger.send(sender=None, logger=logger, loglevel=logging.INFO,
                                        logfile=None, format="%(message)s", colorize=False)
        logger.warning("ready")
        [line] = logger.handlers[0].stream.getvalue().splitlines()
    finally:
        logger.handlers.clear()
    if log_format == "json":
        assert json.loads(line)["message"] == "ready"
    else:
        assert line.endswith(" WARNING celery.test: ready")



def gunicorn_settings(monkeypatch, tmp_path, **environ):
    """Return the settings that gunicorn reads from gunicorn.conf.py, in this environment."""
    monkeypatch.setattr(config, "ENV_FILE", str(tmp_path / ".env"))
    for name in ("FLACK_CONFIG", "LOG_FORMAT", "SECRET_KEY", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(ROOT / "gunicorn.conf.py"))


def test_gunicorn_writes_no_access_log_of_its_own(monkeypatch, tmp_path):
    assert gunicorn_settings(monkeypatch, tmp_path)["accesslog"] is None


@pytest.mark.parametrize("environ", [
    {"LOG_FORMAT": "json"},
    {"FLACK_CONFIG": "production", "SECRET_KEY": "x", "REDIS_URL": "redis://localhost:6379/0"},
])
def test_gunicorn_writes_json_lines_as_the_app_does(monkeypatch, tmp_path, environ):
    gunicorn = gunicorn_settings(monkeypatch, tmp_path, **environ)
    logging_config = gunicorn["logconfig_dict"]
    assert logging_config["root"] == {"handlers": []}  # the app's lines, once, in the worker
    handler = logging_config["loggers"]["gunicorn.error"]["handlers"][0]
    formatter = logging_config["formatters"][logging_config["handlers"][handler]["formatter"]]
    try:
        raise OSError("worker failed to boot")
    except OSError:
        record = logging.makeLogRecord({"name": "gunicorn.error", "levelname": "ERROR",
                                        "msg": "Exception in worker process %s", "args": (42,),
                                        "created": 1_800_000_000.25, "exc_info": sys.exc_info()})
    assert formatter["()"]().format(record) == logs.JsonFormatter().format(record)


@pytest.mark.parametrize("log_format", ["text", "xml"])  # xml: the worker says it is wrong
def test_gunicorn_keeps_its_own_lines_otherwise(monkeypatch, tmp_path, log_format):
    assert "logconfig_dict" not in gunicorn_settings(monkeypatch, tmp_path,
                                                     LOG_FORMAT=log_format)


def lines_of(path):
    """Return the lines of a process's output, each of them parsed as JSON."""
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def production(tmp_path):
    """The Procfile's web process and Celery worker, as in production, where logs are json."""
    env = production_env(tmp_path, LINK_PREVIEW_ALLOW_PRIVATE="1")
    prepare_database(env)
    web = Web(tmp_path, env, "Procfile")
    worker = Worker(tmp_path, env, "Procfile")
    yield web, worker
    worker.kill()
    web.kill()


@pytest.mark.servers
def test_gunicorn_and_the_worker_write_json_and_share_the_request_id(production):
    web, worker = production
    page = LocalWeb()
    try:
        page.page("/article", html_page("An article").encode())
        auth = web.client.login("poster")
        browser = Browser(web.client.base, auth)  # its token in the WebSocket's first packet
        status, _ = web.client.call("POST", "/api/messages", {"source": page.url("/article")},
                                    {**auth, "X-Request-Id": ID})
        assert status == 201
        browser.next("message_changed")  # the post, pushed by the web process
        assert "An article" in browser.next("message_changed")["html"]  # the worker's previews
        browser.close()
        deadline = time.monotonic() + 20
        while '"path": "/socket.io/"' not in web.errors.read_text():
            assert time.monotonic() < deadline, "the WebSocket's line was not written"
            time.sleep(0.1)  # a connection closing in another process
    finally:
        page.close()
    worker.kill()  # every line written, before they are read
    web.kill()
    web_lines, worker_lines = lines_of(web.errors), lines_of(worker.errors)  # all of them JSON
    assert web.log.read_text() == worker.log.read_text() == ""  # no access log, no banner
    assert web_lines[0]["message"].startswith("Starting gunicorn")
    [posted] = [line for line in web_lines if line.get("path") == "/api/messages"]
    assert (posted["request_id"], posted["status"]) == (ID, 201)
    [websocket] = [line for line in web_lines if line.get("path") == "/socket.io/"]
    assert websocket["status"] == 101
    assert any(line.get("request_id") == ID and "fetch_link_previews" in line["message"]
               and "succeeded" in line["message"] for line in worker_lines)
    output = web.errors.read_text() + worker.errors.read_text()
    assert PASSWORD not in output and auth["Authorization"].removeprefix("Bearer ") not in output
    assert "Traceback" not in output
