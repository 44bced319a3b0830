"""The API's tokens: log in with nickname and password for a token, log out to revoke it."""
from flask import g
from sqlalchemy import delete, select

from .. import presence, sockets
from ..auth import basic_auth, token_auth
from ..models import Connection, Token, db
from .blueprint import api


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
    """Revoke the token of this request, which logs the caller out of its browsers too."""
    token = g.token
    sids = db.session.scalars(select(Connection.sid).where(Connection.token_id == token.id)).all()
    db.session.execute(delete(Connection).where(Connection.token_id == token.id))
    db.session.delete(token)
    # Offline only if no browser logged in with another token is still connected.
    presence.go_offline_if_disconnected(token.user_id)
    db.session.commit()
    sockets.disconnect_all(sids)
    return "", 204
