"""Presence: users are online while they make requests, and offline after a while.

Until v0.16 every server process ran a thread that swept the users table every
few seconds. Now one periodic task does it for the whole deployment: Celery beat
sends mark_offline_users (flack.tasks) to a worker every PRESENCE_CHECK_INTERVAL.
"""
from flask import current_app
from sqlalchemy import select, update

from . import utils
from .models import User, db, next_change


def mark_offline_users():
    """Mark users offline when they have not been seen for a while; return their ids."""
    now = utils.timestamp()
    cutoff = now - current_app.config["PRESENCE_TIMEOUT"]
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
