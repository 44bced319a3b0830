"""The web page that serves the browser client, and the headers that protect it."""
from flask import Blueprint, current_app, render_template

from .models import NICKNAME_MAX_LENGTH, PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH

main = Blueprint("main", __name__)


@main.get("/")
def index():
    """Serve the browser client, its forms limited as the API limits them."""
    return render_template(
        "index.html", nickname_max_length=NICKNAME_MAX_LENGTH,
        password_min_length=PASSWORD_MIN_LENGTH, password_max_length=PASSWORD_MAX_LENGTH,
        message_max_length=current_app.config["MESSAGE_MAX_LENGTH"])


@main.after_app_request
def security_headers(response):
    """Allow the page to load only its own scripts and styles."""
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'")
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
