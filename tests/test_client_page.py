"""The browser client: its page, its files, and what they may load."""
import pytest
from bs4 import BeautifulSoup

from config import ConfigError
from flack import main
from flack.models import NICKNAME_MAX_LENGTH, PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH
from tests.helpers import PACKAGE, assert_error


def test_index_page(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    page = BeautifulSoup(response.text, "html.parser")
    scripts = page.find_all("script")
    assert scripts and all(script.get("type") == "module" for script in scripts)
    assert all(script.get("src", "").startswith("/static/") for script in scripts)
    for link in page.find_all("link", rel="stylesheet"):
        assert link["href"].startswith("/static/")
        stylesheet = client.get(link["href"])
        assert stylesheet.status_code == 200
        stylesheet.close()


def test_static_files_are_served(client):
    for path in sorted((PACKAGE / "static").rglob("*")):
        if path.is_file():
            response = client.get("/" + path.relative_to(PACKAGE).as_posix())
            assert response.status_code == 200, path
            response.close()


def test_forms_are_limited_as_the_api_limits_them(client, app):
    app.config["MESSAGE_MAX_LENGTH"] = 500
    page = BeautifulSoup(client.get("/").text, "html.parser")
    assert page.find(id="post-source")["maxlength"] == "500"
    assert page.find(id="nickname")["maxlength"] == str(NICKNAME_MAX_LENGTH)
    assert page.find(id="password")["maxlength"] == str(PASSWORD_MAX_LENGTH)
    assert f"At least {PASSWORD_MIN_LENGTH} characters" in page.find(id="password-hint").text


def test_the_pages_errors_are_json_too(client):
    # The client reads every error as JSON, the web page's as well as the API's.
    assert_error(client.get("/no-such-page"), 404)
    response = client.post("/")
    assert_error(response, 405)
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}


def test_the_socketio_client_comes_from_the_npm_package(client):
    # make test runs `npm ci` first, which installs the version package-lock.json names.
    assert "/vendor/socket.io.esm.min.js" in (PACKAGE / "static/js/app.js").read_text()
    response = client.get("/vendor/socket.io.esm.min.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.data == (main.SOCKET_IO_CLIENT / "socket.io.esm.min.js").read_bytes()
    response.close()
    assert main.SOCKET_IO_CLIENT.parent.name == "socket.io-client"


@pytest.mark.parametrize("path", ["/vendor/socket.io.js", "/vendor/..%2Fpackage.json",
                                  "/vendor/../../package.json"])
def test_only_the_clients_files_are_served(client, path):
    assert_error(client.get(path), 404)


def test_a_missing_client_stops_the_servers_start(monkeypatch, tmp_path):
    main.check_client_files()  # installed
    monkeypatch.setattr(main, "SOCKET_IO_CLIENT", tmp_path)
    with pytest.raises(ConfigError) as error:
        main.check_client_files()
    assert error.value.message.startswith("the browser's Socket.IO client is not installed: "
                                          "run `npm ci`")
