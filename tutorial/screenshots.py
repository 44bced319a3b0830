"""Take the screenshots the docs show, checking on the way that the chat works.

    python tutorial/screenshots.py --python /path/to/app/venv/bin/python \
        [--root DIR] [--out DIR] [--timings FILE] [--serve | --compose COMMAND]

It starts the app of a checkout (--root: this one unless told) on a free loopback
port with a new SQLite database, then drives Chromium with Playwright: two users, in
two separate browser contexts, log in and chat. Each must see the other's messages,
with their Markdown, and see the other online. After the screenshots, HTML sent in
messages must reach the other user as harmless text, and the login form must refuse
a nickname with HTML in it. A failed check, a JavaScript error or a console error (a
Content-Security-Policy violation is one) stops it with exit status 1, so this script
is also the tutorial's end-to-end test. The server is always stopped at the end.

On the way it measures each message's delivery: the time from the author's Enter to
the message appearing in the other user's page. It prints the median and the slowest,
and --timings FILE saves them all as JSON. No timing is checked: a busy machine is
slower, not wrong.

With --serve (v0.18 and later), `make serve` runs the chat instead, as in production:
two web processes, a Celery worker, beat, and nginx in front, with Redis between them
(FLACK_TEST_REDIS_URL's server, or this machine's). The browsers go through nginx,
each web process must answer on its own port, and a message posted through nginx
must reach a page opened on each web process directly: whichever process nginx
chose, the others get the message through Redis.

With --compose COMMAND (v0.23 and later), the same checks run on the containers of
compose.yaml, started as tests/containers.py starts them (a project of its own, on
free ports, with PostgreSQL) and removed at the end.

From v0.20 (a config.py with ALLOWED_ORIGINS), in both modes, a page of its own on two
more loopback ports checks CORS: Flack allows one of them. From the allowed site, a
browser page can sign up, log in and post through the API, read every answer, a
refused login's too, and be pushed its message over Socket.IO. From the other, the
browser hides the API's answers and the server refuses its sockets, WebSocket included
(which browsers never check); the API's headers name the one allowed origin only.

It drives any stage: from v0.17, the checkout needs the browser's npm packages first
(make -C DIR node_modules/.installed; `make screenshots` does it for this checkout).
Needs Debian's /usr/bin/chromium (apt-get install chromium) and playwright from
tutorial/requirements-screenshots.txt. Nothing here reaches the internet: the
messages hold no http(s) links, so the server fetches no link previews.
"""
import argparse
import base64
import functools
import http.server
import json
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import sync_playwright
from ports import free_port, free_ports_in_a_row

HERE = Path(__file__).resolve().parent.parent  # the checkout this script is in
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
LOGIN_SIZE = {"width": 1200, "height": 800}
DESKTOP_SIZE = {"width": 1280, "height": 800}
PHONE_SIZE = {"width": 375, "height": 740}
SERVER_START_SECONDS = 30
SERVE_START_SECONDS = 60  # make serve upgrades the database first, then starts five processes
SERVER_STOP_SECONDS = 15  # honcho gives its processes 5 seconds before it kills them
WAIT_MS = 15_000  # pages poll every 2 seconds before v0.17: this leaves plenty of room
PASSWORD = "correct horse battery"

# --serve: as many web processes as it takes to show that they behave as one chat.
WEB_PROCESSES = 2
# make serve's Redis, and the one CI starts, unless FLACK_TEST_REDIS_URL says otherwise.
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
# A REDIS_PREFIX of its own keeps this run's keys and Socket.IO channel apart from
# other users of the server, but Celery's queue has the same name in every Flack: on
# another's database, another's worker could take this run's tasks. make serve uses
# database 0 and the test suite's processes count up from 1, so this run takes the
# last of Redis's 16.
REDIS_DATABASE = 15
# Variables that a make running this script (make browsers-nginx) leaves in the
# environment: they would hand its command line on to make serve.
OUTER_MAKE_VARIABLES = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")

# (author, Markdown source, plain words the reader must see). No links: a
# link would make the server fetch a preview from the internet.
CONVERSATION = [
    ("susan", "Hi David! Is the new chat server up and running?",
     "Is the new chat server up"),
    ("david", "Hi Susan, it is! Messages are Markdown, so **bold** and `code` work.",
     "Messages are Markdown"),
    ("susan", "Nice. And I can see you are online, right there in the People list.",
     "right there in the People list"),
    ("david", "I can see you too. Shall we invite the rest of the team?",
     "invite the rest of the team"),
]
# More messages after the screenshots, so that there are more delivery times to sum up.
TIMED_MESSAGES = [
    (author, f"Timing message {number}: nothing to read here.", f"Timing message {number}:")
    for number, author in enumerate(["susan", "david"] * 4, start=1)
]
# Sent as soon as the previous one arrives, every message would meet a polling page
# (before v0.17) at the same point of its cycle, and every delivery would take about
# as long. Pauses that grow by a step, wrapping at the poll interval, spread them out.
POLL_INTERVAL_MS = 2000
PAUSE_STEP_MS = 250

# Messages that would run a script if a page ever inserted them as HTML. Each starts
# with a label in plain text, which the reader waits for, whatever becomes of the rest.
HTML_MESSAGES = [
    ("HTML test 1", '<img src=x onerror="window.__pwned=1">'),
    ("HTML test 2", "<script>window.__pwned=1</script>"),
    ("HTML test 3", '<b onmouseover="window.__pwned=1">bold?</b>'),
    ("HTML test 4", "[click](javascript:window.__pwned=1)"),
]
HTML_NICKNAME = "<b>x</b>"

# --serve: posted through nginx, the first before and the second after a page opens on
# each web process, as (Markdown source, plain words the reader must see).
BEFORE_THE_PAGES = ("Through nginx, before the pages on each process.", "before the pages")
AFTER_THE_PAGES = ("Through nginx, pushed to a page on each process.", "pushed to a page")

# Failed requests that a page makes on purpose, as (status, API path): logging in as
# a new nickname is refused a token before it signs up, and a nickname the API does
# not allow is then refused by the sign-up too. The other site's page (v0.20 and later)
# logs in with a wrong password on purpose.
NEW_NICKNAME = [(401, "/api/tokens")]
REFUSED_NICKNAME = [(401, "/api/tokens"), (400, "/api/users")]
WRONG_PASSWORD = [(401, "/api/tokens")]

# The cross-origin check (v0.20 and later): a user of another site, and their message.
OTHER_SITE_NICKNAME = "carol"
OTHER_SITE_MESSAGE = "Hello from another site, through the API."
# The other site's page: the same on both of its origins. It takes the Socket.IO client
# from the checkout's npm package: Flack serves it only as a module, which a page of
# another origin may import only with CORS headers, and /vendor has none.
OTHER_SITE_PAGE = """<!doctype html>
<meta charset="utf-8">
<title>Another site</title>
<link rel="icon" href="data:,">
<script type="module">
import { io } from "./socket.io.esm.min.js";

const flack = new URLSearchParams(location.search).get("flack");
const pushed = [];
let connects = 0;

window.otherSite = {
  pushed,
  connects: () => connects,
  // Call Flack's API: return what this page may read of the answer, or why it may not.
  async call(method, path, body, authorization) {
    const headers = {};
    if (body !== null) headers["Content-Type"] = "application/json";
    if (authorization !== null) headers.Authorization = authorization;
    try {
      const response = await fetch(flack + path, {
        method, headers, body: body === null ? undefined : JSON.stringify(body) });
      return { status: response.status, location: response.headers.get("Location"),
               body: await response.json() };
    } catch (error) {
      return { failed: `${error.name}: ${error.message}` };
    }
  },
  // Connect with a token, by one transport or as Flack's page does; tell how it went.
  connect(token, transport) {
    const options = { auth: { token }, reconnection: false };
    if (transport !== null) options.transports = [transport];
    const socket = io(flack, options);
    socket.on("message_changed", (message) => pushed.push(message));
    return new Promise((resolve) => {
      socket.on("connect", () => resolve({ connected: ++connects }));
      socket.on("connect_error", (error) => resolve({ refused: error.message }));
    });
  },
};
</script>
"""
OTHER_SITE_CALL = "([method, path, body, auth]) => otherSite.call(method, path, body, auth)"
OTHER_SITE_CONNECT = "([token, transport]) => otherSite.connect(token, transport)"
OTHER_SITE_PUSHED = "source => otherSite.pushed.some((message) => message.source === source)"
# Browsers never apply CORS to WebSockets: refused, that transport proves the server's check.
REFUSED_TRANSPORTS = ("polling", "websocket")
REFUSED_SOCKET_MS = 1000  # how long a refused page waits to see that nothing connects after all

# Run in every page before its own scripts. It notes, on the one clock that all the
# browser's pages share, when Enter is pressed in the post box and when a message is
# added to the list.
DELIVERY_CLOCK = """{
  const now = () => performance.timeOrigin + performance.now();
  window.__delivery = { pressed: [], shown: [] };
  // The capture phase runs before the page's own handler, which sends the message.
  window.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && event.target.id === "post-source") {
      window.__delivery.pressed.push({ text: event.target.value, at: now() });
    }
  }, true);
  new MutationObserver((records) => {
    const at = now();
    for (const record of records) {
      for (const node of record.addedNodes) {
        if (node.nodeType === Node.ELEMENT_NODE && node.matches("#message-list .message")) {
          window.__delivery.shown.push({ text: node.textContent.replace(/\\s+/g, " "), at });
        }
      }
    }
  }).observe(document, { childList: true, subtree: true });
}"""
PRESSED_AT = "source => window.__delivery.pressed.findLast(e => e.text === source)?.at ?? null"
SHOWN_AT = "words => window.__delivery.shown.find(e => e.text.includes(words))?.at ?? null"
# Elements under the message list with an event handler attribute (onclick, onerror...).
HANDLER_ATTRIBUTES = """() => Array.from(document.querySelectorAll("#message-list *"))
  .flatMap((element) => Array.from(element.attributes)
    .filter((attribute) => attribute.name.startsWith("on"))
    .map((attribute) => `<${element.localName} ${attribute.name}>`))"""


class CheckFailed(Exception):
    """The app did not do what a user expects."""


@dataclass
class Server:
    """A started chat: a process that leads a process group, and where it answers."""
    process: subprocess.Popen  # None when containers run the chat
    url: str  # where the browsers go
    web_urls: list  # with --serve, each web process on its own port behind nginx
    stop: object = None  # with --compose, what removes the containers


@dataclass
class OtherSites:
    """The origins of the cross-origin check's page: one that Flack allows, one it refuses."""
    allowed: str
    refused: str


def parse_args():
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", required=True,
                        help="the Python of a venv with the app's requirements")
    parser.add_argument("--root", type=Path, default=HERE,
                        help="the checkout whose app to drive (default: this one)")
    parser.add_argument("--out", type=Path,
                        help="folder for the PNG files (default: docs/img in the checkout)")
    parser.add_argument("--timings", type=Path,
                        help="a JSON file to write the delivery times to")
    parser.add_argument("--compose", metavar="COMMAND",
                        help="run the chat in containers with this compose command (v0.23 "
                             "and later), as `make containers` does, behind nginx")
    parser.add_argument("--serve", action="store_true",
                        help="run the chat with `make serve`: web processes behind nginx")
    return parser.parse_args()


def serves_behind_nginx(root):
    """Tell whether a checkout's `make serve` runs nginx (v0.18 and later)."""
    procfile = root / "Procfile"
    return procfile.exists() and any(line.startswith("proxy:")
                                     for line in procfile.read_text().splitlines())


def check_browser_packages(root):
    """Fail early, saying what to run, when the page's npm packages are not installed."""
    if (root / "package.json").exists() and not (root / "node_modules" / ".installed").exists():
        raise CheckFailed(f"the page needs npm packages: make -C {root} node_modules/.installed")


def server_commands(root, python):
    """Return the commands that set up and start the app at a checkout's stage."""
    if (root / "migrations").exists():  # v0.12 and later: the migrations make the tables
        return [[python, "manage.py", "db", "upgrade"], [python, "manage.py", "runserver"]]
    if (root / "manage.py").exists():  # v0.4 to v0.11
        return [[python, "manage.py", "createdb"], [python, "manage.py", "runserver"]]
    return [[python, "flack.py"]]  # v0.1 to v0.3: the script creates its tables


def start_server(root, python, folder, log, settings):
    """Set up and start the app from the checkout's top on a free port, logging to a file."""
    port = free_port()
    # The database and the broker's folder (v0.15 and later) in folder, not in the checkout.
    env = dict(os.environ, PORT=str(port), DATABASE_URL=f"sqlite:///{folder / 'flack.sqlite'}",
               LOCAL_BROKER_FOLDER=str(folder / "broker"), **settings)
    *setup, start = server_commands(root, python)
    for command in setup:
        done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise CheckFailed(f"{' '.join(command[1:])} failed:\n{done.stdout}{done.stderr}")
    # A process group of its own, so that stop_server() finds whatever it starts.
    process = subprocess.Popen(start, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    return Server(process, f"http://127.0.0.1:{port}", web_urls=[])


def redis_url():
    """Return the URL of this run's Redis database, on FLACK_TEST_REDIS_URL's server."""
    url = urllib.parse.urlsplit(os.environ.get("FLACK_TEST_REDIS_URL") or DEFAULT_REDIS_URL)
    return url._replace(path=f"/{REDIS_DATABASE}").geturl()


def production_env(folder):
    """Return the environment of a chat in production settings, with its files in folder."""
    env = {name: value for name, value in os.environ.items()
           if name not in OUTER_MAKE_VARIABLES}
    return {**env, "FLACK_CONFIG": "production", "SECRET_KEY": secrets.token_hex(32),
            "DATABASE_URL": f"sqlite:///{folder / 'flack.sqlite'}",
            "BEAT_SCHEDULE_FILE": str(folder / "celerybeat-schedule"),
            "REDIS_URL": redis_url(), "REDIS_PREFIX": f"{folder.name}:"}


def start_behind_nginx(root, python, folder, log, settings):
    """Start the chat with `make serve` on free ports: web processes behind nginx."""
    first_web_port = free_ports_in_a_row(WEB_PROCESSES)
    web_ports = range(first_web_port, first_web_port + WEB_PROCESSES)
    proxy_port = free_port()
    while proxy_port in web_ports:  # free now, but a web process will take it
        proxy_port = free_port()
    venv = Path(python).parent.parent  # so that make builds no venv of its own
    command = ["make", "serve", f"VENV={venv}", f"WEB_PROCESSES={WEB_PROCESSES}",
               f"WEB_PORT={first_web_port}", f"PROXY_PORT={proxy_port}",
               f"SERVE_FOLDER={folder / 'serve'}"]
    # make, honcho, the web processes, the worker, beat and nginx: one process group.
    process = subprocess.Popen(command, cwd=root, env={**production_env(folder), **settings},
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return Server(process, f"http://127.0.0.1:{proxy_port}",
                  web_urls=[f"http://127.0.0.1:{port}" for port in web_ports])


def start_in_containers(root, compose, folder, settings):
    """Start the chat with compose.yaml (v0.23 and later), as tests/containers.py does."""
    sys.path.insert(0, str(root))  # the checkout's own tests.containers
    from tests.containers import ContainerStack
    stack = ContainerStack(root, compose, folder, settings)
    try:
        stack.up()
    except BaseException:
        stack.down()
        raise
    return Server(None, stack.proxy.base, web_urls=[web.base for web in stack.webs],
                  stop=stack.down)


def loopback_opener():
    """Return a URL opener for this machine's servers, which ignores any proxy settings."""
    # An empty ProxyHandler: a proxy from the environment must not see loopback requests.
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def wait_for_answer(url, process, seconds):
    """Wait until a URL's server answers, or fail if the process exits or it takes too long."""
    opener = loopback_opener()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process and process.poll() is not None:
            raise CheckFailed(f"the server exited with status {process.returncode}")
        try:
            with opener.open(f"{url}/api/stats", timeout=2):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise CheckFailed(f"{url} did not answer within {seconds} seconds")


def wait_for_server(server):
    """Wait until each web process answers on its own port, and then the browsers' URL."""
    # nginx answers as soon as one web process does: the others are waited for first.
    seconds = SERVE_START_SECONDS if server.web_urls else SERVER_START_SECONDS
    for url in [*server.web_urls, server.url]:
        wait_for_answer(url, server.process, seconds)


def signal_group(process, signal_number):
    """Send a signal to every process left in a process's group."""
    try:
        os.killpg(process.pid, signal_number)
    except ProcessLookupError:
        pass  # none is left


def stop_server(server):
    """Stop the server's whole process group, forcefully if it does not stop by itself."""
    if server.stop:
        server.stop()
        return
    signal_group(server.process, signal.SIGTERM)
    try:
        server.process.wait(timeout=SERVER_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        pass
    signal_group(server.process, signal.SIGKILL)  # whatever did not stop in time
    server.process.wait()


def wait_until(locator, what):
    """Wait for a locator to be visible, or fail saying what did not happen."""
    try:
        locator.first.wait_for(state="visible", timeout=WAIT_MS)
    except PlaywrightTimeoutError:
        raise CheckFailed(f"{what}, not within {WAIT_MS // 1000} seconds") from None


def names_server(message, url):
    """Tell whether a console message is about a request to the server at a URL."""
    host = urllib.parse.urlsplit(url).netloc
    return (f"//{host}/" in message.text
            or urllib.parse.urlsplit(message.location["url"]).netloc == host)


def record_errors(page, errors, expected_failures, refused_by=None):
    """Collect the page's JavaScript errors and console errors into a list."""
    # expected_failures: the (status, API path) of the requests the page fails on purpose;
    # refused_by: a server that the page only calls to be refused, every call an error.
    def is_expected(message):
        if refused_by is not None and names_server(message, refused_by):
            return True
        return any(f"status of {status}" in message.text and path in message.location["url"]
                   for status, path in expected_failures)

    def on_console(message):
        if message.type == "error" and not is_expected(message):
            errors.append(message.text)
    # Console errors include Content-Security-Policy violations and failed loads.
    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(str(error)))


def new_page(browser, base_url, size, errors, expected_failures=NEW_NICKNAME, refused_by=None,
             **options):
    """Open a page in a new browser context (its own sessionStorage, its own user)."""
    context = browser.new_context(base_url=base_url, viewport=size, **options)
    context.add_init_script(DELIVERY_CLOCK)
    page = context.new_page()
    record_errors(page, errors, expected_failures, refused_by)
    return page


def log_in(page, nickname):
    """Fill in the login form (which signs a new nickname up) and wait for the chat."""
    page.goto("/")
    page.fill("#nickname", nickname)
    page.fill("#password", PASSWORD)
    page.click("#login-button")
    wait_until(page.locator("#me", has_text=re.compile(f"^{nickname}$")),
               f"{nickname} could not log in")


def message_by(page, author, words):
    """Return a locator for the messages by author that contain some words."""
    author_name = page.locator(".author", has_text=re.compile(f"^{author}$"))
    return page.locator("#message-list .message").filter(has=author_name).filter(has_text=words)


def online_user(page, nickname):
    """Return a locator for a user shown as online in the People list."""
    name = page.locator(".nickname", has_text=re.compile(f"^{nickname}$"))
    return page.locator("#user-list .user.online").filter(has=name)


def post(page, source):
    """Type a message and send it with Enter, as a user would."""
    page.fill("#post-source", source)
    page.press("#post-source", "Enter")
    wait_until(page.locator("#post-source:not([disabled])"), "the post box stayed disabled")
    error = page.locator("#post-error")
    if error.is_visible():
        raise CheckFailed(f"posting failed: {error.text_content()}")


def delivery_ms(author_page, reader_page, source, words):
    """Return the milliseconds from the author's Enter to the message in the reader's page."""
    pressed = author_page.evaluate(PRESSED_AT, source)
    shown = reader_page.evaluate(SHOWN_AT, words)
    if pressed is None or shown is None:
        return None  # not measured; the message did arrive, which is what is checked
    return round(shown - pressed, 1)


def deliver(pages, author, source, words):
    """Send a message, which must reach the other user; return how it went, with its timing."""
    reader = next(name for name in pages if name != author)
    post(pages[author], source)
    wait_until(message_by(pages[reader], author, words),
               f"{reader} did not see {author}'s message {words!r}")
    return {"author": author, "words": words,
            "ms": delivery_ms(pages[author], pages[reader], source, words)}


def chat(pages, messages):
    """Play a list of messages, one after the other; return their deliveries."""
    return [deliver(pages, author, source, words) for author, source, words in messages]


def chat_with_pauses(pages, messages):
    """Play a list of messages like chat(), each after a different pause."""
    deliveries = []
    for number, (author, source, words) in enumerate(messages):
        pages[author].wait_for_timeout(number * PAUSE_STEP_MS % POLL_INTERVAL_MS)
        deliveries.append(deliver(pages, author, source, words))
    return deliveries


def check_markdown(page):
    """Check that the Markdown message shows bold text and a code span."""
    body = message_by(page, "david", "Messages are Markdown").locator(".body")
    wait_until(body.locator("strong", has_text="bold"), "**bold** was not shown in bold")
    wait_until(body.locator("code", has_text="code"), "`code` was not shown as code")


def check_presence(pages):
    """Check that each user sees the other one marked online."""
    for reader, page in pages.items():
        for other in pages:
            if other != reader:
                wait_until(online_user(page, other), f"{reader} did not see {other} online")


def settle(page, users):
    """Wait until a page shows every user and has scrolled to its newest message."""
    wait_until(page.locator(f"#user-list .user:nth-child({users})"), "the People list is short")
    page.wait_for_timeout(300)  # let the last layout and scrolling finish


def take_login_screenshot(browser, base_url, out, errors):
    """Photograph the login form with a nickname typed in."""
    login = new_page(browser, base_url, LOGIN_SIZE, errors)
    login.goto("/")
    wait_until(login.locator("#login-form"), "the login form did not appear")
    login.fill("#nickname", "susan")
    login.screenshot(path=out / "login.png")
    login.context.close()


def take_phone_screenshot(browser, base_url, out, errors, users):
    """Photograph the chat in a phone-sized tab, logged in afresh as david."""
    # Opened after the conversation, it must start scrolled to the newest message.
    phone = new_page(browser, base_url, PHONE_SIZE, errors, is_mobile=True, has_touch=True)
    log_in(phone, "david")
    last_words = CONVERSATION[-1][2]
    wait_until(message_by(phone, "david", last_words), "the phone did not show the conversation")
    settle(phone, users)
    phone.screenshot(path=out / "chat-phone.png")
    phone.context.close()


def signs_of_live_html(page):
    """Return what shows that HTML from a message came alive in a page: nothing, we hope."""
    signs = []
    if page.evaluate("() => window.__pwned !== undefined"):
        signs.append("a script from a message ran")
    for selector in ("#message-list img", "#message-list script",
                     '#message-list a[href^="javascript:" i]'):
        if page.locator(selector).count():
            signs.append(f"there is a {selector}")
    signs.extend(f"there is a {tag}" for tag in page.evaluate(HANDLER_ATTRIBUTES))
    return signs


def check_html_stays_inert(pages):
    """Check that HTML in messages reaches the other user as harmless text."""
    author, reader = "susan", "david"
    for label, html in HTML_MESSAGES:
        post(pages[author], f"{label}: {html}")
        message = message_by(pages[reader], author, label)
        wait_until(message, f"{reader} did not see {author}'s message {label!r}")
        # As a curious reader would: a handler or link that had survived would run now.
        message.first.locator(".body").hover()
        message.first.locator(".body").click()
    for name, page in pages.items():
        signs = signs_of_live_html(page)
        if signs:
            raise CheckFailed(f"HTML in a message came alive in {name}'s page: {'; '.join(signs)}")


def check_html_nickname_refused(browser, base_url, errors):
    """Check that the login form refuses a nickname with HTML in it, explaining in text."""
    page = new_page(browser, base_url, LOGIN_SIZE, errors, expected_failures=REFUSED_NICKNAME)
    page.goto("/")
    page.fill("#nickname", HTML_NICKNAME)
    page.fill("#password", PASSWORD)
    page.click("#login-button")
    error = page.locator("#login-error")
    wait_until(error, f"the login form showed no error for the nickname {HTML_NICKNAME!r}")
    if not error.text_content().strip():
        raise CheckFailed(f"the login form's error for {HTML_NICKNAME!r} is empty")
    if error.locator("b").count() or page.evaluate("() => window.__pwned !== undefined"):
        raise CheckFailed(f"the nickname {HTML_NICKNAME!r} came alive as HTML on the login form")
    if page.locator("#me").is_visible():
        raise CheckFailed(f"the nickname {HTML_NICKNAME!r} could log in")
    page.context.close()


def check_chat(browser, base_url, out, errors):
    """Drive two users through a chat, checking and photographing it; return its deliveries."""
    take_login_screenshot(browser, base_url, out, errors)

    pages = {name: new_page(browser, base_url, DESKTOP_SIZE, errors)
             for name in ("susan", "david")}
    for nickname, page in pages.items():
        log_in(page, nickname)
    deliveries = chat(pages, CONVERSATION)
    check_markdown(pages["susan"])
    check_presence(pages)
    settle(pages["susan"], len(pages))
    pages["susan"].screenshot(path=out / "chat.png")
    take_phone_screenshot(browser, base_url, out, errors, len(pages))

    # The photographs are taken: what follows would only clutter them.
    deliveries += chat_with_pauses(pages, TIMED_MESSAGES)
    check_html_stays_inert(pages)
    check_html_nickname_refused(browser, base_url, errors)
    return deliveries


def check_every_process_pushes(browser, server, errors):
    """Check that a message posted through nginx reaches a page on each web process."""
    # nginx's ip_hash sends every browser of this machine to one web process; these
    # pages go to each process directly, so the others can only be pushed the
    # message through Redis.
    author = new_page(browser, server.url, DESKTOP_SIZE, errors)
    log_in(author, "susan")
    post(author, BEFORE_THE_PAGES[0])
    readers = {url: new_page(browser, url, DESKTOP_SIZE, errors) for url in server.web_urls}
    for url, reader in readers.items():
        log_in(reader, "david")
        # A page fetches the messages once its connection is open: showing this one,
        # it is connected, and what comes next can only be pushed to it.
        wait_until(message_by(reader, "susan", BEFORE_THE_PAGES[1]),
                   f"the page on {url} did not show the messages")
    post(author, AFTER_THE_PAGES[0])
    for url, reader in readers.items():
        wait_until(message_by(reader, "susan", AFTER_THE_PAGES[1]),
                   f"the page on {url} was not pushed a message posted through nginx")
    for page in [author, *readers.values()]:
        page.context.close()


def has_allowed_origins(root):
    """Tell whether a checkout's settings have ALLOWED_ORIGINS (v0.20 and later)."""
    config = root / "config.py"
    return config.exists() and re.search(r"^\s*ALLOWED_ORIGINS\s*=", config.read_text(),
                                         re.MULTILINE) is not None


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serve a folder's files without logging each request."""

    def log_message(self, format, *args):
        """Say nothing: the browser's requests are not this script's output."""


def write_other_site(root, folder):
    """Write the cross-origin check's page, with the checkout's Socket.IO client, to a folder."""
    folder.mkdir()
    (folder / "index.html").write_text(OTHER_SITE_PAGE)
    client = root / "node_modules" / "socket.io-client" / "dist" / "socket.io.esm.min.js"
    shutil.copy(client, folder)


def serve_folder(folder):
    """Serve a folder on a free loopback port from a thread; return the started server."""
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@contextmanager
def other_sites(root, folder):
    """Serve the other site's page on two ports, for a checkout with ALLOWED_ORIGINS, or none."""
    if not has_allowed_origins(root):
        yield None
        return
    write_other_site(root, folder / "other-site")
    servers = [serve_folder(folder / "other-site") for _ in range(2)]
    try:
        yield OtherSites(*(f"http://127.0.0.1:{server.server_port}" for server in servers))
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def basic_auth(nickname, password):
    """Return the Authorization header that logs a nickname in with a password."""
    return "Basic " + base64.b64encode(f"{nickname}:{password}".encode()).decode()


def open_other_site(browser, origin, flack_url, errors, **options):
    """Open the other site's page at an origin, in a new browser context, calling flack_url."""
    page = new_page(browser, origin, DESKTOP_SIZE, errors, **options)
    page.goto("/?" + urllib.parse.urlencode({"flack": flack_url}))
    return page


def call_api(page, method, path, body=None, authorization=None):
    """Call the API from the other site's page; return what the page may read of the answer."""
    return page.evaluate(OTHER_SITE_CALL, [method, path, body, authorization])


def expect_answer(answer, status, what, field=None):
    """Check that the page read an answer with a status and, if named, a field in its JSON."""
    body = answer.get("body")
    if answer.get("status") != status or (field and not (isinstance(body, dict) and field in body)):
        raise CheckFailed(f"from the allowed origin, {what} should read {status}"
                          f"{f' with {field!r}' if field else ''}, not {answer}")
    return body


def expect_location(answer, what):
    """Check that the page could read the Location header of a 201 answer (it is exposed)."""
    if not answer.get("location"):
        raise CheckFailed(f"from the allowed origin, {what}'s answer had no readable Location")


def use_api_from(page):
    """Sign up, log in and fail a login from the other site's page; return the token."""
    signup = call_api(page, "POST", "/api/users",
                      {"nickname": OTHER_SITE_NICKNAME, "password": PASSWORD})
    expect_answer(signup, 201, "signing up", "nickname")
    expect_location(signup, "signing up")
    login = call_api(page, "POST", "/api/tokens",
                     authorization=basic_auth(OTHER_SITE_NICKNAME, PASSWORD))
    token = expect_answer(login, 200, "logging in", "token")["token"]
    wrong = call_api(page, "POST", "/api/tokens",
                     authorization=basic_auth(OTHER_SITE_NICKNAME, PASSWORD + " staple"))
    expect_answer(wrong, 401, "logging in with a wrong password", "error")
    return token


def check_pushed_from(page, token):
    """Connect the other site's page with a token, post, and wait for the push of the post."""
    connection = page.evaluate(OTHER_SITE_CONNECT, [token, None])
    if "connected" not in connection:
        raise CheckFailed(f"from the allowed origin, the socket was refused: {connection}")
    posted = call_api(page, "POST", "/api/messages", {"source": OTHER_SITE_MESSAGE},
                      f"Bearer {token}")
    expect_answer(posted, 201, "posting a message", "source")
    expect_location(posted, "posting a message")
    try:
        page.wait_for_function(OTHER_SITE_PUSHED, arg=OTHER_SITE_MESSAGE, timeout=WAIT_MS)
    except PlaywrightTimeoutError:
        raise CheckFailed("from the allowed origin, the socket was not pushed the message it"
                          f" posted, not within {WAIT_MS // 1000} seconds") from None


def check_allowed_origin(browser, flack_url, origin, errors):
    """Use the API and a socket from a page of the allowed origin; return the token and lines."""
    page = open_other_site(browser, origin, flack_url, errors, expected_failures=WRONG_PASSWORD)
    token = use_api_from(page)
    check_pushed_from(page, token)
    page.context.close()
    return token, [
        f"cross-origin: a page of the allowed {origin} signed up, logged in and posted through"
        " the API, reading each answer (201 and Location, 200 and a token, 201 and Location)",
        f"cross-origin: a page of the allowed {origin} read a wrong password's answer: 401 with"
        " an error",
        f"cross-origin: a page of the allowed {origin} connected its socket and was pushed the"
        " message it posted",
    ]


def refused_sockets(page, token):
    """Connect the refused page's sockets, one transport each; return the errors they got."""
    refusals = {}
    for transport in REFUSED_TRANSPORTS:
        connection = page.evaluate(OTHER_SITE_CONNECT, [token, transport])
        if "refused" not in connection:
            raise CheckFailed(f"from the refused origin, a {transport} socket connected")
        refusals[transport] = connection["refused"]
    page.wait_for_timeout(REFUSED_SOCKET_MS)  # a late connect would show up here
    if page.evaluate("() => otherSite.connects()"):
        raise CheckFailed("from the refused origin, a socket connected after its connect_error")
    return refusals


def check_refused_origin(browser, flack_url, origin, token, errors):
    """Check that a page of another origin can read no answer and open no socket; return lines."""
    # Every call this page makes to Flack is refused: its console errors are expected.
    page = open_other_site(browser, origin, flack_url, errors, refused_by=flack_url)
    login = call_api(page, "POST", "/api/tokens",
                     authorization=basic_auth(OTHER_SITE_NICKNAME, PASSWORD))
    if login != {"failed": "TypeError: Failed to fetch"}:
        raise CheckFailed(f"from the refused origin, logging in should fail to fetch, not {login}")
    refusals = refused_sockets(page, token)
    page.context.close()
    said = ", ".join(f"{transport} ({error})" for transport, error in refusals.items())
    return [f"cross-origin: from the refused {origin}, the login's fetch failed"
            f" ({login['failed']}), and each socket got a connect_error: {said}"]


def cors_probes(flack_url, origin):
    """Return requests to the API as a page of an origin sends them, by name."""
    preflight = {"Origin": origin, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization"}
    return {
        "GET /api/stats": urllib.request.Request(f"{flack_url}/api/stats",
                                                 headers={"Origin": origin}),
        "a login's preflight": urllib.request.Request(f"{flack_url}/api/tokens",
                                                      method="OPTIONS", headers=preflight),
    }


def cors_headers(request):
    """Return the origin and the credentials that the API's answer to a request allows."""
    with loopback_opener().open(request, timeout=10) as response:
        return (response.headers.get("Access-Control-Allow-Origin"),
                response.headers.get("Access-Control-Allow-Credentials"))


def check_cors_headers(flack_url, sites):
    """Check that the API's CORS headers name the allowed origin, and no other; return a line."""
    for origin in (sites.allowed, sites.refused):
        expected = (sites.allowed if origin == sites.allowed else None, None)
        for name, request in cors_probes(flack_url, origin).items():
            found = cors_headers(request)
            if found != expected:
                raise CheckFailed(f"the API's answer to {name} from {origin} allows origin and"
                                  f" credentials {found}, not {expected}")
    return [f"cross-origin: the API's answers (a GET, a login's preflight) name {sites.allowed}"
            f" in Access-Control-Allow-Origin, with no credentials, and give {sites.refused}"
            " none"]


def check_cross_origin(browser, flack_url, sites, errors):
    """Check CORS and Socket.IO's origin check from both other origins; return what passed."""
    token, passed = check_allowed_origin(browser, flack_url, sites.allowed, errors)
    passed += check_refused_origin(browser, flack_url, sites.refused, token, errors)
    return passed + check_cors_headers(flack_url, sites)


def sum_up(deliveries):
    """Return the median and the slowest of the measured delivery times, and their count."""
    times = [delivery["ms"] for delivery in deliveries if delivery["ms"] is not None]
    if not times:
        return {"messages": 0, "p50_ms": None, "max_ms": None}
    return {"messages": len(times), "p50_ms": round(statistics.median(times), 1),
            "max_ms": max(times)}


def run(root, python, out, serve, compose=None):
    """Start the server, check the chat, always stop the server; return deliveries, OK lines."""
    check_browser_packages(root)
    out.mkdir(parents=True, exist_ok=True)
    start = start_behind_nginx if serve else start_server
    if compose:
        serve = True  # behind nginx too, and checked as such

        def start(root, python, folder, log, settings):
            """Start the containers (the log stays empty: each container keeps its own)."""
            return start_in_containers(root, compose, folder, settings)
    with (tempfile.TemporaryDirectory(prefix="flack-shots-") as tmp,
          other_sites(root, Path(tmp)) as sites):
        settings = {"ALLOWED_ORIGINS": sites.allowed} if sites else {}
        log_path = Path(tmp) / "server.log"
        with open(log_path, "w") as log:
            server = start(root, python, Path(tmp), log, settings)
        try:
            wait_for_server(server)
            errors = []
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    deliveries = check_chat(browser, server.url, out, errors)
                    if serve:
                        check_every_process_pushes(browser, server, errors)
                    passed = (check_cross_origin(browser, server.url, sites, errors)
                              if sites else [])
                finally:
                    browser.close()
            if errors:
                raise CheckFailed("the browser reported errors:\n  " + "\n  ".join(errors))
            return deliveries, passed
        except (CheckFailed, PlaywrightError):
            print(f"--- server log ({log_path.name}) ---", file=sys.stderr)
            print(log_path.read_text(errors="replace")[-4000:], file=sys.stderr)
            raise
        finally:
            stop_server(server)


def describe_timing(summary):
    """Say in one line how fast messages reached the other browser."""
    if not summary["messages"]:
        return "no delivery could be timed"
    return (f"p50 {summary['p50_ms']:.0f} ms, max {summary['max_ms']:.0f} ms"
            f" over {summary['messages']} messages")


def main():
    """Run everything; print what failed and exit 1 on failure."""
    args = parse_args()
    root = args.root.resolve()
    out = (args.out or root / "docs" / "img").resolve()
    if not Path(CHROMIUM).exists():
        sys.exit(f"screenshots: {CHROMIUM} is missing: apt-get install chromium")
    if args.serve and not serves_behind_nginx(root):
        sys.exit("screenshots: --serve needs a checkout whose `make serve` runs nginx (a"
                 f" Procfile with a proxy: process, v0.18 and later), and {root} has none")
    try:
        deliveries, cross_origin = run(root, args.python, out, args.serve, args.compose)
    except (CheckFailed, PlaywrightError) as error:
        sys.exit(f"screenshots: FAILED: {error}")
    summary = sum_up(deliveries)
    if args.timings:
        timings = {"root": str(root), **summary, "deliveries": deliveries}
        args.timings.write_text(json.dumps(timings, indent=2) + "\n")
    for name in ("login.png", "chat.png", "chat-phone.png"):
        print(f"screenshots: wrote {out / name}")
    print(f"screenshots: delivery to the other browser: {describe_timing(summary)}")
    print("screenshots: OK: two users chatted, saw each other's messages, Markdown and"
          " presence, HTML in messages stayed text, and an HTML nickname was refused")
    if args.compose:
        print(f"screenshots: OK: the chat ran in containers ({args.compose}), through nginx"
              f" in front of {WEB_PROCESSES} web processes; each answered on its own port,"
              " and a message posted through nginx was pushed to a page on each")
    elif args.serve:
        print(f"screenshots: OK: the chat ran through nginx in front of {WEB_PROCESSES} web"
              " processes; each answered on its own port, and a message posted through"
              " nginx was pushed to a page on each")
    for line in cross_origin:
        print(f"screenshots: OK: {line}")


if __name__ == "__main__":
    main()
