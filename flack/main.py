"""The web page that serves the browser client, and the headers that protect it."""
from flask import Blueprint, render_template

main = Blueprint("main", __name__)


@main.get("/")
def index():
    """Serve the browser client."""
    return render_template("index.html")


@main.after_app_request
def security_headers(response):
    """Allow the page to load only its own scripts and styles."""
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'")
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
