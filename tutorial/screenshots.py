"""Take the screenshots the docs show, checking on the way that the chat works.

    python tutorial/screenshots.py --python /path/to/app/venv/bin/python [--out docs/img]

It starts the app on a free loopback port with a new SQLite database, then
drives Chromium with Playwright: two users, in two separate browser contexts,
log in and chat. If either does not see the other's messages, or does not see
the other online, it stops with an error and exit status 1, so this script is
also the tutorial's end-to-end test. The server is always stopped at the end.

Needs Debian's /usr/bin/chromium (apt-get install chromium) and playwright
from tutorial/requirements-screenshots.txt. Nothing here reaches the internet:
the messages hold no links, so the server fetches no link previews.
"""
import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
LOGIN_SIZE = {"width": 1200, "height": 800}
DESKTOP_SIZE = {"width": 1280, "height": 800}
PHONE_SIZE = {"width": 375, "height": 740}
SERVER_START_SECONDS = 30
WAIT_MS = 15_000  # the page polls every 2 seconds, so this leaves plenty of room
PASSWORD = "correct horse battery"

# (author, Markdown source, plain words the reader must see). No links: a
# link would make the server fetch a preview from the internet.
CONVERSATION = [
    ("susan", "Hi David! Is the new chat server up and running?",
     "Is the new chat server up"),
    ("david", "Hi Susan, it is! Messages are Markdown, so **bold** and `code` work.",
     "Messages are Markdown"),
    ("susan", "Nice. And I can see you are online, right there in the People list.",
     "right there in the People list"),
    ("david", "For now every page polls the server every two seconds. "
              "We will fix that later in the tutorial.",
     "We will fix that later"),
]


class CheckFailed(Exception):
    """The app did not do what a user expects."""


def parse_args():
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", required=True,
                        help="the Python of a venv with the app's requirements")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img",
                        help="folder for the PNG files (default: docs/img)")
    return parser.parse_args()


def free_port():
    """Return a loopback TCP port that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_commands(python):
    """Return the commands that set up and start the app at the checked-out stage."""
    if (ROOT / "migrations").exists():  # v0.12 and later: the migrations make the tables
        return [[python, "manage.py", "db", "upgrade"], [python, "manage.py", "runserver"]]
    if (ROOT / "manage.py").exists():  # v0.4 to v0.11
        return [[python, "manage.py", "createdb"], [python, "manage.py", "runserver"]]
    return [[python, "flack.py"]]  # v0.1 to v0.3: the script creates its tables


def start_server(python, port, database, log):
    """Set up and start the app from the repository top, logging to a file."""
    # The broker's folder (v0.15 and later) beside the database, not in the checkout.
    env = dict(os.environ, PORT=str(port), DATABASE_URL=f"sqlite:///{database}",
               LOCAL_BROKER_FOLDER=str(database.parent / "broker"))
    *setup, start = server_commands(python)
    for command in setup:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise CheckFailed(f"{' '.join(command[1:])} failed:\n{done.stdout}{done.stderr}")
    return subprocess.Popen(start, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_for_server(base_url, server):
    """Wait until the server answers, or fail if it exits or takes too long."""
    # An empty ProxyHandler: a proxy from the environment must not see loopback requests.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise CheckFailed(f"the server exited with status {server.returncode}")
        try:
            with opener.open(f"{base_url}/api/stats", timeout=2):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise CheckFailed(f"the server did not answer within {SERVER_START_SECONDS} seconds")


def stop_server(server):
    """Stop the server, forcefully if it does not stop by itself."""
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def wait_until(locator, what):
    """Wait for a locator to be visible, or fail saying what did not happen."""
    try:
        locator.first.wait_for(state="visible", timeout=WAIT_MS)
    except PlaywrightTimeoutError:
        raise CheckFailed(f"{what}, not within {WAIT_MS // 1000} seconds") from None


def record_errors(page, errors):
    """Collect the page's JavaScript errors and console errors into a list."""
    def on_console(message):
        # Logging in as a new nickname gets a 401 before signing up: that one is expected.
        expected = "status of 401" in message.text and "/api/tokens" in message.location["url"]
        if message.type == "error" and not expected:
            errors.append(message.text)
    # Console errors include Content-Security-Policy violations and failed loads.
    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(str(error)))


def new_page(browser, base_url, size, errors, **options):
    """Open a page in a new browser context (its own sessionStorage, its own user)."""
    context = browser.new_context(base_url=base_url, viewport=size, **options)
    page = context.new_page()
    record_errors(page, errors)
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


def chat(pages):
    """Play the conversation; each message must reach the other user."""
    for author, source, words in CONVERSATION:
        reader = next(name for name in pages if name != author)
        post(pages[author], source)
        wait_until(message_by(pages[reader], author, words),
                   f"{reader} did not see {author}'s message {words!r}")


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
    page.wait_for_timeout(300)  # let the last poll's layout and scrolling finish


def take_screenshots(browser, base_url, out, errors):
    """Drive two users through a chat, checking it and photographing it."""
    login = new_page(browser, base_url, LOGIN_SIZE, errors)
    login.goto("/")
    wait_until(login.locator("#login-form"), "the login form did not appear")
    login.fill("#nickname", "susan")
    login.screenshot(path=out / "login.png")
    login.context.close()

    pages = {name: new_page(browser, base_url, DESKTOP_SIZE, errors)
             for name in ("susan", "david")}
    for nickname, page in pages.items():
        log_in(page, nickname)
    chat(pages)
    check_markdown(pages["susan"])
    check_presence(pages)
    settle(pages["susan"], len(pages))
    pages["susan"].screenshot(path=out / "chat.png")

    # A phone-sized tab, logged in afresh: it opens scrolled to the newest message.
    phone = new_page(browser, base_url, PHONE_SIZE, errors, is_mobile=True, has_touch=True)
    log_in(phone, "david")
    wait_until(message_by(phone, "david", "We will fix that later"),
               "the phone did not show the conversation")
    settle(phone, len(pages))
    phone.screenshot(path=out / "chat-phone.png")


def run(python, out):
    """Start the server, take the screenshots, and always stop the server."""
    out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="flack-shots-") as tmp:
        log_path = Path(tmp) / "server.log"
        with open(log_path, "w") as log:
            server = start_server(python, port, Path(tmp) / "flack.sqlite", log)
        try:
            wait_for_server(base_url, server)
            errors = []
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    take_screenshots(browser, base_url, out, errors)
                finally:
                    browser.close()
            if errors:
                raise CheckFailed("the browser reported errors:\n  " + "\n  ".join(errors))
        except (CheckFailed, PlaywrightError):
            print(f"--- server log ({log_path.name}) ---", file=sys.stderr)
            print(log_path.read_text(errors="replace")[-4000:], file=sys.stderr)
            raise
        finally:
            stop_server(server)


def main():
    """Run everything; print what failed and exit 1 on failure."""
    args = parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit(f"screenshots: {CHROMIUM} is missing: apt-get install chromium")
    try:
        run(args.python, args.out.resolve())
    except (CheckFailed, PlaywrightError) as error:
        sys.exit(f"screenshots: FAILED: {error}")
    for name in ("login.png", "chat.png", "chat-phone.png"):
        print(f"screenshots: wrote {args.out / name}")
    print("screenshots: OK: two users chatted, saw each other's messages and saw each other online")


if __name__ == "__main__":
    main()
