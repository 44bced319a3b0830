"""Presence: users are online while they make requests, and offline after a while.

This is scalability problem 2 of the tutorial: a background thread marks idle
users offline, and every server process runs one, all sweeping the same table.
"""
import threading

from flask import current_app
from sqlalchemy import select

from . import utils
from .models import User, db


def mark_offline_users():
    """Mark users offline when they have not been seen for a while."""
    cutoff = utils.timestamp() - current_app.config["PRESENCE_TIMEOUT"]
    users = db.session.scalars(
        select(User).where(User.online, User.last_seen_at < cutoff)).all()
    for user in users:
        user.go_offline()
    db.session.commit()
    return users


class PresenceThread(threading.Thread):
    """A background thread that marks idle users offline every few seconds."""

    def __init__(self, app):
        super().__init__(name="flack-presence", daemon=True)
        self.app = app
        self.stopping = threading.Event()

    def run(self):
        interval = self.app.config["PRESENCE_CHECK_INTERVAL"]
        while not self.stopping.wait(interval):
            with self.app.app_context():
                try:
                    mark_offline_users()
                except Exception:  # keep sweeping: the next round may succeed
                    self.app.logger.exception("presence sweep failed")

    def stop(self):
        """Ask the thread to finish, and wait until it has."""
        self.stopping.set()
        self.join()
