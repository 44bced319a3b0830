"""The JSON bodies that the API accepts, as marshmallow schemas.

A view loads its body with load(Schema): each field is checked, a field the schema
does not know is refused, and a body that does not fit stops the request with a 400
that names every bad field (flack.errors.InvalidFields). The checks that need the
database, such as a nickname that is taken, happen later, at the commit.
"""
import re

from flask import current_app
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from .. import utils
from ..errors import InvalidFields
from ..models import (
    NICKNAME_KEY_MAX_LENGTH,
    NICKNAME_MAX_LENGTH,
    PASSWORD_MAX_LENGTH,
    PASSWORD_MIN_LENGTH,
)
from ..nicknames import nickname_key
from .inputs import json_object

NICKNAME_PATTERN = re.compile(r"[\w.-]+")


def storable(text):
    """Refuse text that a database cannot store."""
    if not utils.storable(text):
        raise ValidationError("Contains characters that are not allowed.")


def valid_nickname(nickname):
    """Refuse a nickname that RFC 8266 refuses, or whose compared form is not a plain name."""
    if not nickname:
        return  # the length check says what is wrong
    if nickname != nickname.strip():  # the compared form drops them, the display would not
        raise ValidationError("Must not begin or end with a space.")
    try:
        key = nickname_key(nickname)
    except ValueError:
        raise ValidationError("Not a nickname that RFC 8266 allows.") from None
    # Checked on the form that is compared: "zoe" with a combining diaeresis is "zoë".
    if len(key) > NICKNAME_KEY_MAX_LENGTH or not NICKNAME_PATTERN.fullmatch(key):
        raise ValidationError("Only letters, digits, '_', '.' and '-' are allowed.")


def message_length(source):
    """Refuse a message longer than the settings allow, or with nothing but spaces."""
    if len(source) > current_app.config["MESSAGE_MAX_LENGTH"]:
        raise ValidationError(
            f"Longer than maximum length {current_app.config['MESSAGE_MAX_LENGTH']}.")
    if not source.strip():
        raise ValidationError("Must not be blank.")


def nickname(**options):
    """A nickname field."""
    return fields.String(validate=[storable, validate.Length(1, NICKNAME_MAX_LENGTH),
                                   valid_nickname], **options)


def password(**options):
    """A password field."""
    return fields.String(validate=[storable, validate.Length(PASSWORD_MIN_LENGTH,
                                                             PASSWORD_MAX_LENGTH)], **options)


class NewUserSchema(Schema):
    """POST /api/users: who registers."""
    nickname = nickname(required=True)
    password = password(required=True)


class UserChangesSchema(Schema):
    """PUT /api/users/<id>: a new nickname, a new password, or both."""
    nickname = nickname()
    password = password()

    @validates_schema
    def something_to_change(self, data, **kwargs):
        """Refuse a body that changes nothing."""
        if not data:
            raise ValidationError("Give a nickname or a password to change.")


class MessageSchema(Schema):
    """POST /api/messages and PUT /api/messages/<id>: the Markdown of a message."""
    source = fields.String(required=True, validate=[storable, message_length])


def load(schema_class):
    """Return the request's JSON body as a schema loads it, or stop with a 400 per field."""
    try:
        return schema_class().load(json_object())
    except ValidationError as error:
        raise InvalidFields(error.normalized_messages()) from None
