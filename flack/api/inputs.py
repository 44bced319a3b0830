"""Reading API requests: JSON bodies, query arguments, and ids.

Each function returns a valid value or stops the request with a 400 (or a 403,
404, 409 or 415) that says what is wrong, so a view never works on bad input.
The fields of a JSON body are checked by its schema (flack.api.schemas).
"""

from flask import abort, request
from sqlalchemy.exc import IntegrityError

from ..auth import token_auth
from ..models import db

MAX_ID = 2**31 - 1  # the largest value of an INTEGER column in PostgreSQL
MAX_CHANGE = 2**63 - 1  # and of a BIGINT column, where the change numbers are


def json_object():
    """Return the request's JSON body, which must be an object."""
    if not request.is_json:
        abort(415, "the request body must be JSON, sent as application/json")
    data = request.get_json(silent=True)  # None if malformed; a body too large is a 413
    if not isinstance(data, dict):
        abort(400, "the request body must be a JSON object")
    return data


def change_arg():
    """Return the change number of the after query argument, or None when it is absent."""
    if "updated_since" in request.args:  # a client written for v0.15 or before
        abort(400, "updated_since is no longer supported: ask for after=<change number>")
    value = request.args.get("after")
    if value is None:
        return None
    try:
        after = int(value)
    except ValueError:
        abort(400, "after must be a change number, a whole number")
    if not 0 <= after <= MAX_CHANGE:
        abort(400, f"after must be from 0 to {MAX_CHANGE}")
    return after


def flag_arg(name):
    """Return a 0-or-1 query argument as True or False, or None when it is absent."""
    value = request.args.get(name)
    if value not in (None, "0", "1"):
        abort(400, f"{name} must be 0 or 1")
    return None if value is None else value == "1"


def limit_arg(default, maximum):
    """Return the limit query argument, or default when it is absent; never above maximum."""
    value = request.args.get("limit")
    if value is None:
        return default
    try:
        limit = int(value)
    except ValueError:
        abort(400, "limit must be an integer")
    if limit < 1:
        abort(400, "limit must be at least 1")
    return min(limit, maximum)


def get_or_404(model, id):
    """Return the row of a model with this id, or stop with a 404."""
    name = model.__name__.lower()
    if id > MAX_ID:  # it cannot be in the table, and asking would be an error
        abort(404, f"{name} not found")
    return db.get_or_404(model, id, description=f"{name} not found")


def get_own_or_abort(model, id):
    """Return the caller's own row of a model: 404 if there is none, 403 if it is another's."""
    row = get_or_404(model, id)
    if row.owner != token_auth.current_user():
        abort(403, f"you can only edit your own {model.__name__.lower()}")
    return row


def commit_or_409(message):
    """Commit, or roll back and answer 409 Conflict when a unique constraint fails."""
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        abort(409, message)
