"""Small helpers that the rest of Flack uses and that need nothing from it."""
import time

from flask import current_app, has_request_context
from flask import url_for as flask_url_for


def timestamp():
    """Return the current time as a Unix timestamp, with sub-second precision."""
    return time.time()


def url_for(*args, **kwargs):
    """Build a URL like Flask's url_for, also where there is no request."""
    if has_request_context():
        return flask_url_for(*args, **kwargs)
    # Tasks and Socket.IO pushes have an app context but no request to take a host
    # from: the path alone is what the API shows anyway.
    endpoint, *_ = args
    return current_app.url_map.bind("").build(endpoint, kwargs)


def storable(text):
    """Tell whether a database can store this text."""
    # JSON can carry lone surrogates, which UTF-8 cannot encode, and NUL
    # characters, which PostgreSQL refuses in text columns.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text
