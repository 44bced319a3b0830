"""API authentication: nickname and password for a token, then the token.

Views import basic_auth or token_auth from here and protect themselves with
@basic_auth.login_required, @token_auth.login_required or @token_optional.
"""
from functools import wraps

from flask import g, request
from flask_httpauth import HTTPBasicAuth, HTTPTokenAuth
from sqlalchemy import select

from . import utils
from .errors import error_response
from .models import Token, User, db
from .nicknames import nickname_key
from .passwords import password_matches

# A custom scheme in WWW-Authenticate: with "Basic" there, browsers answer a 401 to
# the JavaScript client by popping up their own password dialog.
basic_auth = HTTPBasicAuth(scheme="Flack", realm="flack")
token_auth = HTTPTokenAuth(scheme="Bearer", realm="flack")


@basic_auth.verify_password
def verify_password(nickname, password):
    """Return the user whose nickname and password these are."""
    if not utils.storable(nickname):  # PostgreSQL would fail on a NUL in the query
        return None
    try:
        key = nickname_key(nickname)  # "ZOË" or "ｚｏë" logs zoë in
    except ValueError:  # a nickname that RFC 8266 refuses is nobody's
        return None
    user = db.session.scalar(select(User).where(User.nickname_key == key))
    if user is None:
        return None
    # The hash takes a tenth of a second, in a thread, and logins may wait in line for
    # one: the transaction ends first, so that its connection goes back to the pool
    # meanwhile. Otherwise waiting logins would hold every connection, and every
    # request would wait for one.
    password_hash = user.password_hash
    db.session.rollback()
    if not password_matches(password_hash, password):
        return None
    user.mark_seen()  # committed by the view, with the token it issues
    return user


def find_token(token):
    """Return the row of a valid token, or None; the purge deletes expired ones (flack.tasks)."""
    return db.session.scalar(select(Token).where(Token.digest == Token.digest_of(token),
                                                 Token.expires_at > utils.timestamp()))


@token_auth.verify_token
def verify_token(token):
    """Return the user a valid token belongs to; remember the token in g."""
    row = find_token(token)
    if row is None:
        return None
    g.token = row
    row.user.mark_seen()
    db.session.commit()  # a write only when the user came online or LAST_SEEN_INTERVAL passed
    return row.user


@basic_auth.error_handler
def basic_auth_error(status):
    """Explain a failed nickname/password login."""
    return error_response(status, "invalid nickname or password")


@token_auth.error_handler
def token_auth_error(status):
    """Explain a missing, invalid or expired token."""
    return error_response(status, "a valid token is required")


def token_optional(view):
    """Let requests without a token through, but reject a token that is not valid."""
    authenticated_view = token_auth.login_required(view)

    @wraps(view)
    def wrapper(*args, **kwargs):
        if "Authorization" not in request.headers:
            return view(*args, **kwargs)
        return authenticated_view(*args, **kwargs)
    return wrapper

