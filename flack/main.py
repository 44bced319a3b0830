"""The web page that serves the browser client, and the headers that protect it."""
from pathlib import Path

from flask import Blueprint, abort, current_app, render_template, send_from_directory

from config import ConfigError

from .models import NICKNAME_MAX_LENGTH, PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH

main = Blueprint("main", __name__)

# The Socket.IO client for the browser, as `npm ci` installs it from package-lock.json.
SOCKET_IO_CLIENT = Path(__file__).resolve().parent.parent / "node_modules/socket.io-client/dist"
VENDOR_FILES = {"socket.io.esm.min.js", "socket.io.esm.min.js.map"}


def check_client_files():
    """Stop with a one-line error if `npm ci` has not installed the Socket.IO client."""
    if not (SOCKET_IO_CLIENT / "socket.io.esm.min.js").is_file():
        raise ConfigError("the browser's Socket.IO client is not installed: run `npm ci` "
                          "(make run, make serve and make test run it for you)")


@main.get("/")
def index():
    """Serve the browser client, its forms limited as the API limits them."""
    return render_template(
        "index.html", nickname_max_length=NICKNAME_MAX_LENGTH,
        password_min_length=PASSWORD_MIN_LENGTH, password_max_length=PASSWORD_MAX_LENGTH,
        message_max_length=current_app.config["MESSAGE_MAX_LENGTH"])


@main.get("/vendor/<name>")
def vendor(name):
    """Serve the browser's Socket.IO client from the npm package."""
    if name not in VENDOR_FILES:
        abort(404)
    return send_from_directory(SOCKET_IO_CLIENT, name)


@main.after_app_request
def security_headers(response):
    """Allow the page to load only its own scripts and styles."""
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'")
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
