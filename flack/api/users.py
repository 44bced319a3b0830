"""The API's users: register, list, read, and change your own nickname or password."""
import re

from flask import abort, request
from sqlalchemy import delete, select

from .. import utils
from ..auth import token_auth, token_optional
from ..models import Token, User, db
from .blueprint import api
from .inputs import commit_or_400, get_or_404, json_object, number_arg, required, text_field

NICKNAME_PATTERN = re.compile(r"[\w.-]{1,32}")
PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 128


def nickname_field(data):
    """Return a valid nickname from a JSON body, or None when it is absent."""
    nickname = text_field(data, "nickname", 32)
    if nickname is not None and not NICKNAME_PATTERN.fullmatch(nickname):
        abort(400, "nickname may only contain letters, digits, '_', '.' and '-'")
    return nickname


def password_field(data):
    """Return a valid password from a JSON body, or None when it is absent."""
    return text_field(data, "password", PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH)


def nickname_taken(nickname):
    """Tell whether some user already has this nickname."""
    return db.session.scalar(select(User.id).where(User.nickname == nickname)) is not None


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
