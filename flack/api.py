"""Flack's API: the views under /api, and the functions that read their requests.

They are a blueprint: a set of views that is written without an application and
registered on an application later, by create_app(), which also gives them their /api
prefix.
"""
import math
import re
import threading

from flask import Blueprint, abort, current_app, g, request
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException

from . import stats, utils
from .auth import basic_auth, token_auth, token_optional
from .models import Message, Token, User, db
from .rendering import render_message

api = Blueprint("api", __name__)

NICKNAME_PATTERN = re.compile(r"[\w.-]{1,32}")
PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 128
MAX_ID = 2**31 - 1  # the largest value of an INTEGER column in PostgreSQL


# Errors: every one is JSON, the web page's too, since the browser client reads them

@api.app_errorhandler(HTTPException)
def http_error(error):
    """Turn Flask's and Werkzeug's HTML errors into JSON ones."""
    response = utils.error_response(error.code, error.description)
    for name, value in error.get_headers():  # such as Allow on a 405
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


# Reading requests

def json_object():
    """Return the request's JSON body, which must be an object."""
    if not request.is_json:
        abort(415, "the request body must be JSON, sent as application/json")
    data = request.get_json(silent=True)  # None if malformed; a body too large is a 413
    if not isinstance(data, dict):
        abort(400, "the request body must be a JSON object")
    return data


def text_field(data, name, max_length, min_length=1):
    """Return a string field of a JSON body, or None when it is absent."""
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        abort(400, f"{name} must be a string")
    if not utils.storable(value):
        abort(400, f"{name} contains characters that are not allowed")
    if not min_length <= len(value) <= max_length:
        abort(400, f"{name} must be {min_length} to {max_length} characters long")
    return value


def required(value, name):
    """Return a field's value, or stop with a 400 if it was missing."""
    if value is None:
        abort(400, f"{name} is required")
    return value


def nickname_field(data):
    """Return a valid nickname from a JSON body, or None when it is absent."""
    nickname = text_field(data, "nickname", 32)
    if nickname is not None and not NICKNAME_PATTERN.fullmatch(nickname):
        abort(400, "nickname may only contain letters, digits, '_', '.' and '-'")
    return nickname


def password_field(data):
    """Return a valid password from a JSON body, or None when it is absent."""
    return text_field(data, "password", PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH)


def source_field(data):
    """Return the Markdown source of a message from a JSON body."""
    source = required(text_field(data, "source", current_app.config["MESSAGE_MAX_LENGTH"]),
                      "source")
    if not source.strip():
        abort(400, "source must not be blank")
    return source


def number_arg(name):
    """Return a numeric query argument, or None when it is absent."""
    value = request.args.get(name)
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        abort(400, f"{name} must be a number")
    if not math.isfinite(number):
        abort(400, f"{name} must be a finite number")
    return number


def limit_arg():
    """Return the limit query argument, capped at the configured maximum."""
    value = request.args.get("limit")
    if value is None:
        return current_app.config["MESSAGES_DEFAULT_LIMIT"]
    try:
        limit = int(value)
    except ValueError:
        abort(400, "limit must be an integer")
    if limit < 1:
        abort(400, "limit must be at least 1")
    return min(limit, current_app.config["MESSAGES_MAX_LIMIT"])


def get_or_404(model, id, message):
    """Return the row of a model with this id, or stop with a 404."""
    # A larger id cannot be in an INTEGER column, and asking would be an error.
    row = db.session.get(model, id) if id <= MAX_ID else None
    if row is None:
        abort(404, message)
    return row


def nickname_taken(nickname):
    """Tell whether some user already has this nickname."""
    return db.session.scalar(select(User.id).where(User.nickname == nickname)) is not None


def commit_or_400(message):
    """Commit, or roll back and answer 400 when a unique constraint fails."""
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        abort(400, message)


# The API: users

@api.post("/users")
def new_user():
    """Register a new user."""
    data = json_object()
    nickname = required(nickname_field(data), "nickname")
    if nickname_taken(nickname):
        abort(400, "nickname is already taken")
    password = required(password_field(data), "password")
    user = User(nickname=nickname)
    user.set_password(password)
    db.session.add(user)
    commit_or_400("nickname is already taken")
    return user.to_dict(), 201, {"Location": utils.url_for("api.get_user", id=user.id)}


@api.get("/users")
@token_optional
def get_users():
    """Return the users, optionally only those online or recently updated."""
    query = select(User).order_by(User.nickname)
    online = request.args.get("online")
    if online is not None:
        if online not in ("0", "1"):
            abort(400, "online must be 0 or 1")
        query = query.where(User.online == (online == "1"))
    updated_since = number_arg("updated_since")
    if updated_since is not None:
        query = query.where(User.updated_at > updated_since)
    return {"users": [user.to_dict() for user in db.session.scalars(query)]}


@api.get("/users/<int:id>")
@token_optional
def get_user(id):
    """Return one user."""
    return get_or_404(User, id, "user not found").to_dict()


@api.put("/users/<int:id>")
@token_auth.login_required
def edit_user(id):
    """Change the caller's own nickname or password."""
    user = get_or_404(User, id, "user not found")
    if user != token_auth.current_user():
        abort(403, "you can only edit your own user")
    data = json_object()
    nickname = nickname_field(data)
    password = password_field(data)
    if nickname is None and password is None:
        abort(400, "give a nickname or a password to change")
    if nickname is not None and nickname != user.nickname:
        if nickname_taken(nickname):
            abort(400, "nickname is already taken")
        user.nickname = nickname
    if password is not None:
        user.set_password(password)
        # Whoever knew the old password may hold a token: revoke them all.
        db.session.execute(delete(Token).where(Token.user_id == user.id))
    user.updated_at = utils.timestamp()
    commit_or_400("nickname is already taken")
    return user.to_dict()


# The API: tokens

@api.post("/tokens")
@basic_auth.login_required
def new_token():
    """Give the caller a new token in exchange for nickname and password."""
    token, row = Token.issue(basic_auth.current_user())
    db.session.add(row)
    db.session.commit()
    return {"token": token, "expires_at": row.expires_at}


@api.delete("/tokens")
@token_auth.login_required
def revoke_token():
    """Revoke the token of this request, which logs the caller out."""
    user = token_auth.current_user()
    db.session.delete(g.token)
    user.online = False
    user.updated_at = utils.timestamp()
    db.session.commit()
    return "", 204


# The API: messages

# One message at a time is stamped and committed, so messages reach the database
# in the order of their updated_at: a client polling with updated_since can never
# see a message before an older one is saved, and skip the older one.
message_commit_lock = threading.Lock()


def save_message(message):
    """Stamp a new or edited message with the current time, and commit it."""
    with message_commit_lock:
        message.updated_at = utils.timestamp()
        if message.id is None:
            message.created_at = message.updated_at
            db.session.add(message)
        db.session.commit()


@api.post("/messages")
@token_auth.login_required
def new_message():
    """Post a message."""
    source = source_field(json_object())
    message = Message(source=source, html=render_message(source),
                      author=token_auth.current_user())
    save_message(message)
    return message.to_dict(), 201, {"Location": utils.url_for("api.get_message", id=message.id)}


@api.get("/messages")
@token_optional
def get_messages():
    """Return the latest messages, or those updated since a given time."""
    limit = limit_arg()
    updated_since = number_arg("updated_since")
    if updated_since is None:
        latest = db.session.scalars(select(Message).order_by(
            Message.updated_at.desc(), Message.id.desc()).limit(limit)).all()
        messages = list(reversed(latest))
    else:
        messages = db.session.scalars(
            select(Message).where(Message.updated_at > updated_since)
            .order_by(Message.updated_at, Message.id).limit(limit)).all()
    return {"messages": [message.to_dict() for message in messages]}


@api.get("/messages/<int:id>")
@token_optional
def get_message(id):
    """Return one message."""
    return get_or_404(Message, id, "message not found").to_dict()


@api.put("/messages/<int:id>")
@token_auth.login_required
def edit_message(id):
    """Change the text of one of the caller's messages."""
    message = get_or_404(Message, id, "message not found")
    if message.author != token_auth.current_user():
        abort(403, "you can only edit your own messages")
    message.source = source_field(json_object())
    message.html = render_message(message.source)
    save_message(message)
    return message.to_dict()


# The API: statistics

@api.get("/stats")
@token_optional
def get_stats():
    """Return how many requests per second this server process handles."""
    return {"requests_per_second": round(stats.requests_per_second(), 2)}
