"""The API's users: register, list a page of them, read one, and change your own."""
from flask import current_app
from sqlalchemy import select

from .. import utils
from ..auth import token_auth, token_optional
from ..limits import register_per_address
from ..models import Token, User, db
from ..sessions import close_ended_connections, end_sessions
from .blueprint import api
from .inputs import change_arg, commit_or_409, flag_arg, get_or_404, get_own_or_abort, limit_arg
from .schemas import NewUserSchema, UserChangesSchema, load


@api.post("/users")
@register_per_address
def new_user():
    """Register a new user."""
    fields = load(NewUserSchema)
    user = User(nickname=fields["nickname"])
    user.set_password(fields["password"])
    db.session.add(user)
    # The unique constraint on the nickname's compared form decides whether it is
    # taken: a check made before the insert could be out of date when the insert runs.
    commit_or_409("nickname is already taken")
    return user.to_dict(), 201, {"Location": utils.url_for("api.get_user", id=user.id)}


@api.get("/users")
@token_optional
def get_users():
    """Return a page of users in the order they changed, optionally only those online."""
    query = select(User).order_by(User.change)
    online = flag_arg("online")
    if online is not None:
        query = query.where(User.online == online)
    after = change_arg()
    if after is not None:
        query = query.where(User.change > after)
    limit = limit_arg(current_app.config["USERS_DEFAULT_LIMIT"],
                      current_app.config["USERS_MAX_LIMIT"])
    return {"users": [user.to_dict() for user in db.session.scalars(query.limit(limit))]}


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
    changes = load(UserChangesSchema)
    if "password" in changes:
        user.set_password(changes["password"])
        # Whoever knew the old password may hold a token: end every session of the user.
        end_sessions(Token.user_id == user.id)
    if "nickname" in changes:  # after the delete, which flushes: a taken one fails at commit
        user.nickname = changes["nickname"]
    user.touch()
    commit_or_409("nickname is already taken")
    changed = user.to_dict()  # before the connections close, which may end this session's use
    close_ended_connections()
    return changed
