"""The API's tokens: log in with nickname and password for a token, log out to revoke it."""
from flask import g

from ..auth import basic_auth, token_auth
from ..limits import login_per_address, login_per_nickname
from ..models import Token, db
from ..sessions import close_ended_connections, end_sessions
from .blueprint import api


@api.post("/tokens")
@login_per_nickname  # checked before the password is: a refused login costs no hash
@login_per_address
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
    end_sessions(Token.id == g.token.id)
    db.session.commit()
    close_ended_connections()
    return "", 204
