"""Presence: a user is online while a browser of theirs is connected, or they make requests.

Until v0.16 every server process ran a thread that swept the users table every
few seconds. Now one periodic task does it for the whole deployment: Celery beat
sends mark_offline_users (flack.tasks) to a worker every PRESENCE_CHECK_INTERVAL.
Since v0.17 a user stays online while a browser of theirs is connected. Since v0.19
the browsers no longer say so one by one: each web process keeps one row in the
processes table fresh for all the connections it holds, and the sweep forgets the
connections of a process that stopped refreshing it.
"""
from flask import current_app
from sqlalchemy import delete, exists, select, update
from sqlalchemy.dialects import postgresql, sqlite

from . import utils
from .models import Connection, Process, Token, User, db, next_changes


def lock_user(user_id):
    """Return a user's row, locked until the commit (on PostgreSQL), as the database has it now."""
    # populate_existing: the session may hold the row as an earlier read saw it.
    return db.session.scalar(select(User).where(User.id == user_id).with_for_update()
                             .execution_options(populate_existing=True))


def go_offline_if_disconnected(user_id):
    """Mark a user offline, unless another of their browsers is still connected."""
    # The lock makes two browsers that leave at once, in two processes, take turns,
    # and a browser that connects meanwhile wait: the last one sees what the others did.
    user = lock_user(user_id)
    connected = db.session.scalar(select(exists().where(Connection.user_id == user_id)))
    if user.online and not connected:
        user.go_offline()


# INSERT ... ON CONFLICT, in the dialect of each database Flack runs on.
UPSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def refresh_process(process_id):
    """Record that this web process is alive; make its row again if the sweep forgot it."""
    # One statement: two browsers that connect at once in one process, on gevent, would
    # both find no row to update, and the second insert would fail.
    now = utils.timestamp()
    upsert = UPSERTS[db.session.get_bind().dialect.name](Process).values(id=process_id,
                                                                        seen_at=now)
    db.session.execute(upsert.on_conflict_do_update(index_elements=[Process.id],
                                                    set_={"seen_at": now}))


def refresh_connections(process_id, held):
    """Refresh a web process's row and the rows of the connections it holds.

    held maps each sid the process holds to its (user_id, token_id). A row that the
    sweep forgot is written again while its token is valid: a process that was slow
    to refresh never logs anyone out. Return the sids whose token has expired or gone.
    """
    refresh_process(process_id)
    now = utils.timestamp()
    stored = set(db.session.scalars(
        select(Connection.sid).where(Connection.process_id == process_id)))
    valid_tokens = set(db.session.scalars(
        select(Token.id).where(Token.id.in_({token_id for _, token_id in held.values()}),
                               Token.expires_at > now)))
    ended = {sid for sid, (_, token_id) in held.items() if token_id not in valid_tokens}
    for sid, (user_id, token_id) in held.items():
        if sid not in stored and sid not in ended:
            db.session.add(Connection(sid=sid, user_id=user_id, token_id=token_id,
                                      process_id=process_id))
            lock_user(user_id).mark_seen()
    return ended


def mark_offline_users():
    """Mark users offline when they have not been seen for a while; return their ids."""
    now = utils.timestamp()
    cutoff = now - current_app.config["PRESENCE_TIMEOUT"]
    # Processes that stopped refreshing their row died: their connections go with
    # them (ON DELETE CASCADE).
    db.session.execute(delete(Process).where(Process.seen_at < cutoff))
    idle = db.session.scalars(
        select(User.id).where(User.online, User.last_seen_at < cutoff,
                              ~exists().where(Connection.user_id == User.id))).all()
    gone = []
    first = next_changes(db.session, len(idle)) if idle else 0
    for number, user_id in enumerate(idle, first):
        # The conditions again, in the UPDATE itself: if a request made the user
        # active, or another sweep took them offline first, the row no longer matches.
        result = db.session.execute(
            update(User).where(User.id == user_id, User.online, User.last_seen_at < cutoff,
                               ~exists().where(Connection.user_id == User.id))
            .values(online=False, updated_at=now, change=number))
        if result.rowcount:
            gone.append(user_id)
    db.session.commit()
    return gone
