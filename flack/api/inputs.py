"""Reading API requests: JSON bodies, their fields and query arguments, and ids.

Each function returns a valid value or stops the request with a 400 (or a 404,
a 415) that says what is wrong, so a view never works on bad input.
"""
import math

from flask import abort, request
from sqlalchemy.exc import IntegrityError

from .. import utils
from ..models import db

MAX_ID = 2**31 - 1  # the largest value of an INTEGER column in PostgreSQL


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


def get_or_404(model, id, message):
    """Return the row of a model with this id, or stop with a 404."""
    # A larger id cannot be in an INTEGER column, and asking would be an error.
    row = db.session.get(model, id) if id <= MAX_ID else None
    if row is None:
        abort(404, message)
    return row


def commit_or_400(message):
    """Commit, or roll back and answer 400 when a unique constraint fails."""
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        abort(400, message)
