"""The API's users: register, list, read, and change your own nickname or password."""
import re

from flask import abort
from sqlalchemy import select

from .. import utils
from ..auth import token_auth, token_optional
from ..models import NICKNAME_MAX_LENGTH, PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH, Token, User, db
from ..sessions import close_ended_connections, end_sessions
from .blueprint import api
from .inputs import (
    change_arg,
    commit_or_409,
    flag_arg,
    get_or_404,
    get_own_or_abort,
    json_object,
    required,
    text_field,
)

NICKNAME_PATTERN = re.compile(r"[\w.-]+")


def nickname_field(data):
    """Return a valid nickname from a JSON body, or None when it is absent."""
    nickname = text_field(data, "nickname", NICKNAME_MAX_LENGTH)
    if nickname is not None and not NICKNAME_PATTERN.fullmatch(nickname):
        abort(400, "nickname may only contain letters, digits, '_', '.' and '-'")
    return nickname


def password_field(data):
    """Return a valid password from a JSON body, or None when it is absent."""
    return text_field(data, "password", PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH)


@api.post("/users")
def new_user():
    """Register a new user."""
    data = json_object()
    user = User(nickname=required(nickname_field(data), "nickname"))
    user.set_password(required(password_field(data), "password"))
    db.session.add(user)
    # The nickname's unique constraint decides whether it is taken: a check made
    # before the insert could be out of date by the time the insert runs.
    commit_or_409("nickname is already taken")
    return user.to_dict(), 201, {"Location": utils.url_for("api.get_user", id=user.id)}


@api.get("/users")
@token_optional
def get_users():
    """Return the users, optionally only those online or changed after a change number."""
    query = select(User).order_by(User.nickname)
    online = flag_arg("online")
    if online is not None:
        query = query.where(User.online == online)
    after = change_arg()
    if after is not None:
        query = query.where(User.change > after)
    return {"users": [user.to_dict() for user in db.session.scalars(query)]}


@api.get("/users/<int:id>")
@token_optional
def get_user(id):
    """Return one user."""
    return get_or_404(User, id).to_dict()


@api.put("/users/<int:id>")
@token_auth.login_required
def edit_user(id):
    """Change the caller's own nickname or password."""
    user = get_own_or_abort(User, id)
    data = json_object()
    nickname = nickname_field(data)
    password = password_field(data)
    if nickname is None and password is None:
        abort(400, "give a nickname or a password to change")
    if password is not None:
        user.set_password(password)
        # Whoever knew the old password may hold a token: end every session of the user.
        end_sessions(Token.user_id == user.id)
    if nickname is not None:  # after the delete, which flushes: a taken one fails at commit
        user.nickname = nickname
    user.touch()
    commit_or_409("nickname is already taken")
    changed = user.to_dict()  # before the connections close, which may end this session's use
    close_ended_connections()
    return changed
