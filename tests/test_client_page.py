"""The browser client: its page, its files, and what they may load."""
import re

from bs4 import BeautifulSoup

from tests.helpers import PACKAGE


def test_index_page(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
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


def test_client_loads_nothing_from_elsewhere():
    files = [PACKAGE / "templates" / "index.html", *sorted((PACKAGE / "static").rglob("*.*"))]
    for path in files:
        # An XML namespace names a standard; it is not something to download.
        text = re.sub(r'xmlns(:\w+)?="[^"]*"', "", path.read_text())
        assert "http://" not in text and "https://" not in text, path
        assert "//cdn" not in text and "@import" not in text, path
