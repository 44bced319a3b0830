"""Other sites whose pages may use Flack: one allow-list, ALLOWED_ORIGINS, for the API's
CORS headers and for Socket.IO's check of a connecting browser's origin.

A browser lets a page of another site read the API's answers only if they carry CORS
headers that name the page's origin. Flack's credentials are tokens in the
Authorization header, never cookies: an allowed page gets no cookie of Flack's, and
a page that is not allowed gets no headers, so its browser hides every answer from it.
"""
from flask_cors import CORS


def allowed_origins(config):
    """Return the origins, such as https://chat.example.com, that ALLOWED_ORIGINS names."""
    return [origin.strip() for origin in config["ALLOWED_ORIGINS"].split(",")
            if origin.strip()]


def init_app(app):
    """Answer the API's requests from pages of the allowed sites with CORS headers."""
    CORS(app, resources={"/api/*": {"origins": allowed_origins(app.config)}},
         methods=["GET", "POST", "PUT", "DELETE"],  # the API's methods, and no others
         allow_headers=["Authorization", "Content-Type"],
         # What the client reads beyond the body: where a new row is, when to try again.
         expose_headers=["Location", "Retry-After"],
         supports_credentials=False, max_age=600)
