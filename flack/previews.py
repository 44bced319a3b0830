"""Link previews: the title and description of the pages that a message links to.

A background task fetches them (flack.tasks), so that the poster no longer waits for
other people's servers. Fetching a URL that a user chose is dangerous (server-side
request forgery): the checks below keep the worker away from loopback and private
addresses.
"""
import contextlib
import contextvars
import ipaddress
import socket
import threading
from urllib.parse import urljoin, urlsplit

import requests
from bs4 import BeautifulSoup
from flask import current_app
from markupsafe import escape
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from werkzeug.http import parse_options_header


class PreviewRefused(Exception):
    """A link that the server must not fetch."""


class PageUnavailable(Exception):
    """A page that did not answer this time, and may on a later try."""


# The sockets that the fetch in progress has opened, for its deadline to hang up.
# A context variable, not flask.g: each thread (and each green thread) sees its own
# list, with or without a request, so a background worker can fetch previews too.
open_sockets = contextvars.ContextVar("open_sockets")


def resolve_addresses(host):
    """Return the IP addresses a host name resolves to."""
    return {ipaddress.ip_address(info[4][0])
            for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)}


def address_allowed(address):
    """Tell whether link previews may connect to an IP address."""
    if current_app.config["LINK_PREVIEW_ALLOW_PRIVATE"]:
        return True
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def check_link(url):
    """Refuse a URL that is not http(s) or whose host is not a public address."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PreviewRefused(f"not an http(s) URL: {url}")
    addresses = resolve_addresses(parts.hostname)
    if not all(address_allowed(address) for address in addresses):
        raise PreviewRefused(f"{parts.hostname} is not a public address")


class PublicPeerCheck:
    """Check the address a connection really reached, before anything is sent on it.

    check_link() resolves the host name before the request, but the name could
    resolve to another address when the connection is made (DNS rebinding). The
    check comes before the TLS handshake too: an https:// link to a private
    address is refused by this check, not by a handshake that happens to fail.
    """

    def _new_conn(self):
        """Open the TCP connection, then hang up unless the peer's address is allowed."""
        # urllib3 opens every connection here, HTTP and HTTPS alike.
        sock = super()._new_conn()
        peer = ipaddress.ip_address(sock.getpeername()[0])
        if not address_allowed(peer):
            sock.close()
            raise PreviewRefused(f"connected to a non-public address {peer}")
        open_sockets.get().append(sock)  # for the deadline in fetch_page()
        return sock


class PublicHTTPConnection(PublicPeerCheck, HTTPConnection):
    """An HTTP connection that refuses to talk to a non-public address."""


class PublicHTTPSConnection(PublicPeerCheck, HTTPSConnection):
    """An HTTPS connection that refuses to talk to a non-public address."""


class PublicHTTPConnectionPool(HTTPConnectionPool):
    """A pool of HTTP connections that check their peer."""
    ConnectionCls = PublicHTTPConnection


class PublicHTTPSConnectionPool(HTTPSConnectionPool):
    """A pool of HTTPS connections that check their peer."""
    ConnectionCls = PublicHTTPSConnection


class PublicOnlyAdapter(HTTPAdapter):
    """A requests transport whose connections check their peer address."""

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": PublicHTTPConnectionPool, "https": PublicHTTPSConnectionPool}


def preview_session():
    """Return a requests session that can only reach allowed addresses."""
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment: we check the peer
    session.mount("http://", PublicOnlyAdapter())
    session.mount("https://", PublicOnlyAdapter())
    return session


def read_limited(response, max_bytes):
    """Read at most max_bytes of a response body."""
    body = b""
    for chunk in response.iter_content(chunk_size=16 * 1024):
        body += chunk
        if len(body) >= max_bytes:
            return body[:max_bytes]
    return body


def hang_up(sockets):
    """Shut sockets down, which ends any read that is waiting on them."""
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def fetch_page(url):
    """Fetch an HTML page; return its bytes and declared charset, or None."""
    # A read timeout starts again with every byte that arrives, so a server that
    # sends a byte a second could hold the request for ever. A timer hangs up
    # on the page at the deadline instead.
    sockets = []
    reset = open_sockets.set(sockets)
    deadline = threading.Timer(current_app.config["LINK_PREVIEW_TIMEOUT"], hang_up, [sockets])
    deadline.start()
    try:
        with preview_session() as session:
            return follow_redirects(session, url)
    finally:
        deadline.cancel()
        open_sockets.reset(reset)


def follow_redirects(session, url):
    """Get a page, checking every URL that a redirect leads to."""
    config = current_app.config
    for _ in range(config["LINK_PREVIEW_MAX_REDIRECTS"] + 1):
        check_link(url)
        with session.get(url, timeout=config["LINK_PREVIEW_TIMEOUT"], stream=True,
                         allow_redirects=False, headers={"Accept": "text/html"}) as response:
            if response.is_redirect:
                url = urljoin(url, response.headers["Location"])
                continue
            if response.status_code >= 500:  # the server's trouble, often brief
                raise PageUnavailable(f"{url} answered {response.status_code}")
            content_type, options = parse_options_header(
                response.headers.get("Content-Type", ""))
            if response.status_code != 200 or content_type not in (
                    "text/html", "application/xhtml+xml"):
                return None
            body = read_limited(response, config["LINK_PREVIEW_MAX_BYTES"])
            return body, options.get("charset")
    return None


def clean_text(text, max_length):
    """Collapse the white space of a page's text and shorten it."""
    text = " ".join((text or "").split())
    return text if len(text) <= max_length else text[:max_length - 1] + "…"


def meta_content(soup, *names):
    """Return the content of the first <meta> tag with one of the given names."""
    for name in names:
        tag = soup.find("meta", attrs={"property": name}) or soup.find(
            "meta", attrs={"name": name})
        if tag and tag.get("content"):
            return tag["content"]
    return None


def parse_preview(body, charset):
    """Return the title and description of an HTML page, or None without a title."""
    # A charset that Python does not know is ignored and the parser guesses.
    soup = BeautifulSoup(body, "html.parser", from_encoding=charset)
    title = meta_content(soup, "og:title") or (soup.title.get_text() if soup.title else "")
    title = clean_text(title, 200)
    if not title:
        return None
    description = clean_text(meta_content(soup, "og:description", "description"), 300)
    return title, description


def link_preview(url):
    """Return the HTML of one link's preview, or an empty string.

    Raise PageUnavailable when the page did not answer: a later try may get it.
    """
    try:
        page = fetch_page(url)
    except (requests.ConnectionError, requests.Timeout) as error:
        raise PageUnavailable(f"{url}: {error}") from error
    except (PreviewRefused, requests.RequestException, OSError, ValueError) as error:
        current_app.logger.info("no preview for %s: %s", url, error)
        return ""
    preview = parse_preview(*page) if page else None
    if preview is None:
        return ""
    title, description = preview
    html = f'<blockquote><p><a href="{escape(url)}">{escape(title)}</a>'
    if description:
        html += f"<br>{escape(description)}"
    return html + "</p></blockquote>"


def links_in(html):
    """Return the first few distinct links in some HTML: those that get a preview."""
    links = []
    for anchor in BeautifulSoup(html, "html.parser").find_all("a", href=True):
        if anchor["href"] not in links:
            links.append(anchor["href"])
    return links[:current_app.config["LINK_PREVIEW_MAX_LINKS"]]


def link_previews(html):
    """Return the previews of the first few distinct links in some HTML."""
    return [link_preview(url) for url in links_in(html)]
