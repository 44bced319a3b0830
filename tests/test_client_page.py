"""The browser client: its page, its files, and what they may load."""
from bs4 import BeautifulSoup

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
