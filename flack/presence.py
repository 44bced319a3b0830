"""Presence: a user is online while a browser of theirs is connected, or they make requests.

Until v0.16 every server process ran a thread that swept the users table every
few seconds. Now one periodic task does it for the whole deployment: Celery beat
sends mark_offline_users (flack.tasks) to a worker every PRESENCE_CHECK_INTERVAL.
Since v0.17 a connected browser says it is still there every HEARTBEAT_INTERVAL
(flack.sockets), and its user goes offline as soon as their last browser leaves.
"""
from flask import current_app
from sqlalchemy import delete, func, select, update

from . import utils
from .models import Connection, User, db, next_change


def go_offline_if_disconnected(user_id):
    """Mark a user offline, unless another of their browsers is still connected."""
    # Locks the user's row (on PostgreSQL) until the commit: two browsers that leave
    # at once, in two processes, take turns, and the second sees that none is left.
    user = db.session.scalar(select(User).where(User.id == user_id).with_for_update())
    connected = db.session.scalar(
        select(func.count()).select_from(Connection).where(Connection.user_id == user_id))
    if user.online and not connected:
        user.go_offline()


def mark_offline_users():
    """Mark users offline when they have not been seen for a while; return their ids."""
    now = utils.timestamp()
    cutoff = now - current_app.config["PRESENCE_TIMEOUT"]
    # Connections that stopped saying they are there: their process died with them.
    db.session.execute(delete(Connection).where(Connection.seen_at < cutoff))
    idle = db.session.scalars(
        select(User.id).where(User.online, User.last_seen_at < cutoff)).all()
    gone = []
    for user_id in idle:
        # The conditions again, in the UPDATE itself: if a request made the user
        # active, or another sweep took them offline first, the row no longer matches.
        result = db.session.execute(
            update(User).where(User.id == user_id, User.online, User.last_seen_at < cutoff)
            .values(online=False, updated_at=now, change=next_change(db.session)))
        if result.rowcount:
            gone.append(user_id)
    db.session.commit()
    return gone
