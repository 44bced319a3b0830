"""Link previews, fetched from a web server on this machine, and the SSRF guard."""
import ipaddress
import socket
import time

import pytest
from bs4 import BeautifulSoup

from flack import previews, rendering
from tests.helpers import assert_inert, html_page, post_message


def html_after_previews(client, message):
    """Return a message's HTML once its previews have arrived, which they have by the
    time the POST returns: the tests run each task at once (CELERY_TASK_ALWAYS_EAGER)."""
    message = client.get(f"/api/messages/{message['id']}").json
    assert message["previews_pending"] is False
    return message["html"]


@pytest.fixture
def preview_of(client, accounts):
    """A function that posts a message with a link and returns the link's preview."""
    auth = accounts.login("linker")  # now, so that no test times the login

    def preview_of(url):
        """Return the preview in the HTML of a message with this link, or None."""
        html = html_after_previews(client, post_message(client, auth, f"look: {url}"))
        assert_inert(html)
        preview = BeautifulSoup(html, "html.parser").blockquote
        if preview is None:  # nothing at all follows the message's paragraph
            assert html.endswith("</a></p>\n"), html
        return preview
    return preview_of


def test_preview_title_and_description(web, preview_of):
    web.page("/article", html_page("A fine article", "All about it").encode())
    preview = preview_of(web.url("/article"))
    assert preview.a["href"] == web.url("/article")
    assert preview.a.get_text() == "A fine article"
    assert "All about it" in preview.get_text()
    assert web.headers[0]["Accept"] == "text/html"  # the page, not an image or an API


def test_preview_of_an_xhtml_page(web, preview_of):
    web.page("/x", html_page("Strict").encode(), "application/xhtml+xml")
    assert preview_of(web.url("/x")).a.get_text() == "Strict"


def test_long_titles_are_shortened(web, preview_of):
    web.page("/200", html_page("t" * 200).encode())
    web.page("/201", html_page("t" * 201, "d" * 301).encode())
    assert preview_of(web.url("/200")).a.get_text() == "t" * 200
    preview = preview_of(web.url("/201"))
    assert preview.a.get_text() == "t" * 199 + "…"
    assert preview.get_text().endswith("d" * 299 + "…")


def test_preview_of_a_page_in_many_pieces(web, preview_of):
    # The title comes first, in a page longer than one read of the body.
    web.page("/long", html_page("Long page", extra="<p>words</p>" * 5000).encode())
    assert preview_of(web.url("/long")).a.get_text() == "Long page"


def test_previews_ignore_proxy_settings(web, monkeypatch, preview_of):
    # A proxy would connect for us, out of the reach of the peer address check.
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    web.page("/direct", html_page("Direct").encode())
    assert preview_of(web.url("/direct")).a.get_text() == "Direct"


def test_preview_prefers_open_graph(web, preview_of):
    head = ('<meta property="og:title" content="OG title">'
            '<meta property="og:description" content="OG text">')
    web.page("/og", f"<html><head><title>plain</title>{head}</head></html>".encode())
    preview = preview_of(web.url("/og"))
    assert preview.a.get_text() == "OG title"
    assert "OG text" in preview.get_text()


def test_preview_is_escaped(web, preview_of):
    page = html_page("&lt;script&gt;alert(1)&lt;/script&gt;", '"><img src=x onerror=alert(1)>')
    web.page("/evil", page.encode())
    preview = preview_of(web.url("/evil"))
    assert preview.a.get_text() == "<script>alert(1)</script>"
    assert preview.find("script") is None and preview.find("img") is None


@pytest.mark.parametrize("body, content_type", [
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (html_page("Plain text, not a page").encode(), "text/plain"),
    (b'{"title": "json"}', "application/json"),
    (html_page("").encode(), "text/html"),
    (html_page("   \n ").encode(), "text/html"),
    (b"<html><head></head><body>no title here</body></html>", "text/html"),
    (b"", "text/html"),
])
def test_no_preview_without_html_title(web, body, content_type, preview_of):
    web.page("/page", body, content_type)
    assert preview_of(web.url("/page")) is None


def test_no_preview_for_error_pages(web, preview_of):
    web.page("/gone", html_page("Not found").encode(), status=404)
    assert preview_of(web.url("/gone")) is None


def test_preview_with_bad_encoding(web, preview_of):
    web.page("/latin", html_page("Caf\xe9 cr\xe8me").encode("latin-1"),
             "text/html; charset=no-such-charset")
    preview = preview_of(web.url("/latin"))
    assert preview is not None
    assert preview.a.get_text().startswith("Caf")


@pytest.mark.parametrize("title, charset", [("Caf\xe9", "latin-1"), ("Привет, мир", "koi8-r")])
def test_preview_declared_charset(web, preview_of, title, charset):
    web.page("/page", html_page(title).encode(charset), f"text/html; charset={charset}")
    assert preview_of(web.url("/page")).a.get_text() == title


def test_preview_slow_server_times_out(web, preview_of):
    web.pages["/slow"] = (200, {}, None)
    assert preview_of(web.url("/slow")) is None
    assert web.requested == ["/slow"]


def test_preview_download_has_a_deadline(web, preview_of):
    # Each piece arrives well within the read timeout, but the whole page does not.
    web.pages["/drip"] = (200, {}, [b"<html><head>" + b" " * 5000] * 20 + [b"<title>Late</title>"])
    assert preview_of(web.url("/drip")) is None


def test_preview_slow_headers_time_out(web, preview_of):
    def drip_headers(handler):
        handler.wfile.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\nX-Slow: ")
        for _ in range(50):
            handler.wfile.write(b"x")
            handler.wfile.flush()
            if web.release.wait(0.1):
                return

    web.pages["/slow-headers"] = (200, {}, drip_headers)
    started = time.monotonic()
    assert preview_of(web.url("/slow-headers")) is None
    assert time.monotonic() - started < 2.5  # the page would take 5 s


def test_preview_reads_a_limited_number_of_bytes(web, app, preview_of):
    app.config["LINK_PREVIEW_MAX_BYTES"] = 4096
    padding = "<!-- " + "x" * 8192 + " -->"
    web.page("/big", f"<html><head>{padding}<title>Too far</title></head></html>".encode())
    web.page("/small", f"<html><head><title>Near</title>{padding}</head></html>".encode())
    assert preview_of(web.url("/big")) is None
    assert preview_of(web.url("/small")).a.get_text() == "Near"


def test_preview_follows_redirects(web, preview_of):
    web.redirect("/old", web.url("/new"))
    web.page("/new", html_page("Moved here").encode())
    preview = preview_of(web.url("/old"))
    assert preview.a.get_text() == "Moved here"
    assert preview.a["href"] == web.url("/old")


def test_preview_stops_after_too_many_redirects(web, app, preview_of):
    for number in range(5):
        web.redirect(f"/hop{number}", f"/hop{number + 1}")
    web.page("/hop5", html_page("The end").encode())
    assert preview_of(web.url("/hop0")) is None
    assert len(web.requested) == app.config["LINK_PREVIEW_MAX_REDIRECTS"] + 1


def test_a_link_twice_gets_one_preview(client, web, accounts):
    web.page("/once", html_page("Once").encode())
    twice = f"{web.url('/once')} {web.url('/once')}"
    html = html_after_previews(client, post_message(client, accounts.login(), twice))
    assert len(BeautifulSoup(html, "html.parser").find_all("blockquote")) == 1
    assert web.requested == ["/once"]


def test_previews_per_message_are_limited(client, web, accounts):
    for number in range(5):
        web.page(f"/{number}", html_page(f"Page {number}").encode())
    links = " ".join(web.url(f"/{number}") for number in range(5))
    html = html_after_previews(client, post_message(client, accounts.login(), links))
    # The message's paragraph, then one block per preview, and nothing in between.
    nodes = [node.name or node.strip() for node in BeautifulSoup(html, "html.parser").contents]
    assert [node for node in nodes if node] == ["p", "blockquote", "blockquote", "blockquote"]
    assert web.requested == ["/0", "/1", "/2"]


def test_private_address_refused(web, app, preview_of):
    app.config["LINK_PREVIEW_ALLOW_PRIVATE"] = False
    web.page("/", html_page("Internal").encode())
    assert preview_of(web.url("/")) is None
    assert web.requested == []


def test_redirect_to_private_address_refused(web, app, monkeypatch, preview_of):
    # Pretend that 127.0.0.1 is a public web site, and that it redirects to
    # an address on the private network.
    app.config["LINK_PREVIEW_ALLOW_PRIVATE"] = False
    public = ipaddress.ip_address("127.0.0.1")
    monkeypatch.setattr(previews, "address_allowed", lambda address: address == public)
    web.redirect("/go", "http://10.0.0.1/admin")
    web.page("/ok", html_page("Public page").encode())
    assert preview_of(web.url("/go")) is None
    assert web.requested == ["/go"]
    assert preview_of(web.url("/ok")).a.get_text() == "Public page"


def test_dns_rebinding_refused(web, app, monkeypatch, preview_of):
    # The name check is told a public address; the connection reaches loopback.
    app.config["LINK_PREVIEW_ALLOW_PRIVATE"] = False
    monkeypatch.setattr(previews, "resolve_addresses",
                        lambda host: {ipaddress.ip_address("93.184.216.34")})
    web.page("/", html_page("Internal").encode())
    assert preview_of(web.url("/")) is None
    assert web.requested == []


def test_dns_rebinding_refused_over_https_before_the_handshake(app, monkeypatch):
    # An https:// name that passes the name check but connects to loopback: the peer
    # check itself refuses it, before any TLS, so no handshake error can hide it.
    app.config["LINK_PREVIEW_ALLOW_PRIVATE"] = False
    monkeypatch.setattr(previews, "resolve_addresses",
                        lambda host: {ipaddress.ip_address("93.184.216.34")})
    with socket.create_server(("127.0.0.1", 0)) as listener:  # accepts, says nothing
        url = f"https://127.0.0.1:{listener.getsockname()[1]}/"
        with pytest.raises(previews.PreviewRefused, match="non-public address 127.0.0.1"):
            previews.fetch_page(url)


@pytest.mark.parametrize("url", [
    "http://localhost/", "http://127.0.0.1/", "http://[::1]/", "http://10.1.2.3/",
    "http://192.168.0.1/", "http://172.16.0.1/", "http://169.254.169.254/latest/",
    "http://100.64.0.1/", "http://0.0.0.0/", "http://[::ffff:127.0.0.1]/",
    "http://224.0.0.1/", "http://[::ffff:224.0.0.1]/", "ftp://example.com/",
    "file:///etc/passwd", "http:///nohost",
])
def test_check_link_refuses(app, url):
    with pytest.raises(previews.PreviewRefused):
        previews.check_link(url)


def test_check_link_allows_public_address(app):
    previews.check_link("https://93.184.216.34/")
    previews.check_link("https://[::ffff:93.184.216.34]/")  # the same, written as IPv6
    app.config["LINK_PREVIEW_ALLOW_PRIVATE"] = True
    previews.check_link("http://127.0.0.1/")


def test_unresolvable_link_gets_no_preview(client, app, accounts):
    app.config["LINK_PREVIEWS"] = True
    html = html_after_previews(client, post_message(client, accounts.login(), "see https://nowhere.invalid/"))
    assert "<blockquote>" not in html
    assert 'href="https://nowhere.invalid/"' in html


def test_previews_are_sanitised_with_the_message(client, app, monkeypatch, accounts):
    # Previews escape what they take from a page; the message's HTML is cleaned once
    # more with them, so that a mistake in a preview cannot reach a reader's browser.
    app.config["LINK_PREVIEWS"] = True
    monkeypatch.setattr(rendering, "link_previews",
                        lambda html: ['<script>alert(1)</script><b onclick="alert(1)">hi</b>'])
    html = html_after_previews(client, post_message(client, accounts.login(), "see https://example.com/"))
    assert_inert(html)
    assert "<b>hi</b>" in html
