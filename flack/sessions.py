"""Ending sessions: a logout, a password change and the purge of expired tokens, one way.

A session is a token and the browser connections that logged in with it. Ending it
deletes the token, which deletes its connections (ON DELETE CASCADE) and takes users
offline whose last browser that was; once the transaction is committed, the caller
closes those connections, in whichever process holds them:

    end_sessions(Token.user_id == user.id)
    db.session.commit()
    close_ended_connections()

Closed before the commit, a browser that reconnected at once would find its token valid.
"""
from sqlalchemy import delete, event, select
from sqlalchemy.orm import Session

from . import presence, sockets
from .models import Connection, Token, db


def end_sessions(*criteria):
    """Delete the tokens that match the criteria, and remember their connections."""
    tokens = select(Token.id).where(*criteria)
    sids = db.session.scalars(select(Connection.sid).where(Connection.token_id.in_(tokens)))
    db.session.info.setdefault("ended_connections", []).extend(sids)
    user_ids = set(db.session.scalars(select(Token.user_id).where(*criteria)))
    db.session.execute(delete(Token).where(*criteria))
    for user_id in sorted(user_ids):  # always in one order: two purges cannot deadlock
        presence.go_offline_if_disconnected(user_id)


def close_ended_connections():
    """Close the connections of the sessions that the committed transaction ended."""
    sockets.close_connections(db.session.info.pop("ended_connections", []))


@event.listens_for(Session, "after_rollback")
def forget_ended_connections(session):
    """Keep the connections of sessions that a rolled back transaction did not end."""
    session.info.pop("ended_connections", None)
