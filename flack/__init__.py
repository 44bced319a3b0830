"""Flack: a chat application. This package holds its server, and manage.py runs it.

It works, and it is safe, but it has four scalability problems that later
stages of the tutorial fix one by one:

1. Link previews are fetched inside the request that posts a message.
2. Presence is kept by a background thread in every server process.
3. Request statistics live in the memory of one process.
4. The browser client finds new messages by polling.
"""
import contextlib
import ipaddress
import socket
import threading
from urllib.parse import urljoin, urlsplit

import click
import nh3
import requests
from bs4 import BeautifulSoup
from flask import Flask, current_app, g, render_template
from flask.helpers import get_debug_flag
from markdown_it import MarkdownIt
from markupsafe import escape
from requests.adapters import HTTPAdapter
from sqlalchemy import inspect, select
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from werkzeug.exceptions import HTTPException
from werkzeug.http import parse_options_header
from werkzeug.serving import is_running_from_reloader, run_simple

import config

from . import stats, utils
from .models import Message, Token, User, db

app = Flask(__name__)
app.config.from_mapping(config.load())  # FLACK_CONFIG chooses the settings
db.init_app(app)
app.before_request(stats.count_request)  # every request counts, not only the API's


# Rendering messages

# Images are off: a message's picture would be fetched by every reader's browser,
# so ![text](url) shows as a link instead.
markdown = MarkdownIt("commonmark", {"html": False, "linkify": True}).enable(
    ["linkify", "strikethrough"]).disable("image")
# Link only http(s) URLs: "flack.py" is a file name, not a site in Paraguay.
markdown.linkify.set({"fuzzy_link": False, "fuzzy_email": False})
for scheme in ("mailto:", "ftp:", "//"):
    markdown.linkify.add(scheme, None)

sanitizer = nh3.Cleaner(
    tags={"a", "abbr", "b", "blockquote", "br", "code", "del", "em", "i", "p",
          "pre", "s", "strong"},
    attributes={"a": {"href", "title"}, "abbr": {"title"}},
    url_schemes={"http", "https"},
    url_relative="deny",
    link_rel="nofollow noopener noreferrer",
)


def render_markdown(source):
    """Render Markdown to HTML with bare URLs made into links, then sanitise it."""
    return sanitizer.clean(markdown.render(source))


def render_message(source):
    """Return the HTML of a message: its Markdown, then a preview of each link."""
    html = render_markdown(source)
    if current_app.config["LINK_PREVIEWS"]:
        html += "".join(link_previews(html))
    return sanitizer.clean(html)


# Link previews (scalability problem 1: fetched while the poster waits)

class PreviewRefused(Exception):
    """A link that the server must not fetch."""


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
    """Check the address a connection really reached, after it is made.

    check_link() resolves the host name before the request, but the name could
    resolve to another address when the connection is made (DNS rebinding).
    """

    def connect(self):
        """Connect, then hang up unless the peer's address is allowed."""
        super().connect()
        peer = ipaddress.ip_address(self.sock.getpeername()[0])
        if not address_allowed(peer):
            self.close()
            raise PreviewRefused(f"connected to a non-public address {peer}")
        g.preview_sockets.append(self.sock)  # for the deadline in fetch_page()


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
    g.preview_sockets = []
    deadline = threading.Timer(current_app.config["LINK_PREVIEW_TIMEOUT"], hang_up,
                               [g.preview_sockets])
    deadline.start()
    try:
        with preview_session() as session:
            return follow_redirects(session, url)
    finally:
        deadline.cancel()


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
    """Return the HTML of one link's preview, or an empty string."""
    try:
        page = fetch_page(url)
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


def link_previews(html):
    """Return the previews of the first few distinct links in some HTML."""
    links = []
    for anchor in BeautifulSoup(html, "html.parser").find_all("a", href=True):
        if anchor["href"] not in links:
            links.append(anchor["href"])
    return [link_preview(url) for url in links[:current_app.config["LINK_PREVIEW_MAX_LINKS"]]]


# Presence (scalability problem 2: one thread in every server process)

def mark_offline_users():
    """Mark users offline when they have not been seen for a while."""
    cutoff = utils.timestamp() - current_app.config["PRESENCE_TIMEOUT"]
    users = db.session.scalars(
        select(User).where(User.online, User.last_seen_at < cutoff)).all()
    for user in users:
        user.online = False
        user.updated_at = utils.timestamp()
    db.session.commit()
    return users


class PresenceThread(threading.Thread):
    """A background thread that marks idle users offline every few seconds."""

    def __init__(self, app):
        super().__init__(name="flack-presence", daemon=True)
        self.app = app
        self.stopping = threading.Event()

    def run(self):
        interval = self.app.config["PRESENCE_CHECK_INTERVAL"]
        while not self.stopping.wait(interval):
            with self.app.app_context():
                try:
                    mark_offline_users()
                except Exception:  # keep sweeping: the next round may succeed
                    self.app.logger.exception("presence sweep failed")

    def stop(self):
        """Ask the thread to finish, and wait until it has."""
        self.stopping.set()
        self.join()


# Errors: every one is JSON

@app.errorhandler(HTTPException)
def http_error(error):
    """Turn Flask's and Werkzeug's HTML errors into JSON ones."""
    response = utils.error_response(error.code, error.description)
    for name, value in error.get_headers():  # such as Allow on a 405
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


# The web page

@app.get("/")
def index():
    """Serve the browser client."""
    return render_template("index.html")


@app.after_request
def security_headers(response):
    """Allow the page to load only its own scripts and styles."""
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'")
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


# The API: its blueprint imports functions defined above, such as render_message(),
# from this module, so it can only be imported once they exist. Stage v0.10's
# application factory removes the need for an import this far down.
from .api import api as api_blueprint  # noqa: E402

app.register_blueprint(api_blueprint, url_prefix="/api")


# Commands: python manage.py <command>, or flask --app flack <command>

@app.shell_context_processor
def shell_context():
    """Preload the database and the models in `manage.py shell`."""
    return {"db": db, "User": User, "Token": Token, "Message": Message}


@app.cli.command()
@click.option("--drop-first", is_flag=True,
              help="Drop all tables first, which deletes every user and message.")
def createdb(drop_first):
    """Create the database tables that do not exist yet."""
    if drop_first:
        db.drop_all()
        click.echo("Dropped all tables.")
    db.create_all()
    click.echo(f"Created the missing tables in {db.engine.url.render_as_string()}.")


def missing_tables():
    """Return the names of the model tables that the database does not have yet."""
    return sorted(set(db.metadata.tables) - set(inspect(db.engine).get_table_names()))


@app.cli.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="The interface to listen on; 0.0.0.0 means all of them.")
@click.option("--port", type=int, default=5000, envvar="PORT", show_default=True,
              help="The port to listen on (or the PORT environment variable).")
@click.option("--debug/--no-debug", default=None,
              help="Show tracebacks, and an interactive debugger, in the browser. "
                   "[default: off, unless given before the command name]")
@click.option("--reload/--no-reload", default=None,
              help="Restart when a source file changes. [default: on with --debug]")
def runserver(host, port, debug, reload):
    """Run the chat on Werkzeug's development server, with the presence thread."""
    missing = missing_tables()
    if missing:  # every request would fail, and so would every presence sweep
        raise click.ClickException(f"the database has no {', '.join(missing)} tables yet:"
                                   " run `python manage.py createdb` first")
    if debug is None:
        debug = get_debug_flag()  # set by `manage.py --debug runserver`
    if reload is None:
        reload = debug
    app.debug = debug
    # With the reloader, this process only watches the files and a child process
    # serves the requests: the presence thread belongs in the child.
    if not reload or is_running_from_reloader():
        PresenceThread(app).start()
    run_simple(host, port, app, use_reloader=reload, use_debugger=debug, threaded=True)
