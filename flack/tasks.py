"""The background tasks that the Celery worker runs: link previews, and the periodic
tasks that Celery beat sends: the presence sweep, the purge of expired tokens, and
the repair of previews that no task finished.

A task gets the id of a message, never the message itself: by the time the worker
runs it, the row may have changed, and only the database knows how. Running a task
twice changes nothing the first run did not, because the worker may run it twice.
"""
from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from flask import current_app
from kombu.exceptions import OperationalError
from sqlalchemy import select, update

from . import presence, sockets, utils
from .models import Message, Token, User, db, next_changes
from .previews import PageUnavailable
from .rendering import add_link_previews
from .sessions import close_ended_connections, end_sessions


def retry_delay(retries):
    """Return the seconds to wait before the next try: 1, 2, 4, ... as tries fail."""
    return 2 ** retries


# Each link's fetch has its own deadline (LINK_PREVIEW_TIMEOUT); these are for a task
# that hangs anyway. At the soft limit the task gives up on its previews; at the hard
# limit the worker kills the process that runs it.
@shared_task(bind=True, soft_time_limit=30, time_limit=40)
def fetch_link_previews(self, message_id):
    """Add the previews of a message's links to it, unless it has changed meanwhile."""
    message = db.session.get(Message, message_id)
    if message is None or not message.previews_pending:
        return  # deleted, or done by an earlier run of this task
    html = message.html
    db.session.rollback()  # no transaction stays open while the pages are fetched
    try:
        with_previews = add_link_previews(html)
    except PageUnavailable as error:
        retries = current_app.config["LINK_PREVIEW_RETRIES"]
        if self.request.retries < retries:
            # max_retries too: Celery's own default (3) would end the tries early.
            raise self.retry(countdown=retry_delay(self.request.retries),
                             max_retries=retries) from error
        current_app.logger.info("no previews for message %s: %s", message_id, error)
        with_previews = html
    except SoftTimeLimitExceeded:
        current_app.logger.warning("no previews for message %s: out of time", message_id)
        with_previews = html
    store_previews(message_id, html, with_previews)


def store_previews(message_id, html, with_previews):
    """Replace a message's HTML with the one that has previews, if it is still pending."""
    # One UPDATE that checks and writes: if the author edited the message while
    # its pages were fetched, its html differs, nothing matches, and the newer
    # text stays (its own task brings its previews).
    result = db.session.execute(
        update(Message)
        .where(Message.id == message_id, Message.html == html, Message.previews_pending)
        .values(html=with_previews, previews_pending=False, updated_at=utils.timestamp(),
                change=next_changes(db.session)))
    db.session.commit()
    if result.rowcount:  # an UPDATE statement: the session did not see what it changed
        sockets.push_rows([db.session.get(Message, message_id)])


def request_link_previews(message_id):
    """Send the task that fetches a saved message's previews; the repair resends a lost one."""
    try:
        fetch_link_previews.delay(message_id)
    except OperationalError as error:
        current_app.logger.warning("previews of message %s not requested yet, the broker is "
                                   "away: %s", message_id, error)


def give_up_previews(message_ids):
    """Let messages go on without their previews, and push them."""
    now = utils.timestamp()
    first = next_changes(db.session, len(message_ids))
    for number, message_id in enumerate(message_ids, first):
        # Still pending in the UPDATE itself: a task may have finished meanwhile.
        db.session.execute(update(Message).where(Message.id == message_id,
                                                 Message.previews_pending)
                           .values(previews_pending=False, updated_at=now, change=number))
    db.session.commit()
    current_app.logger.warning("no previews for messages %s: pending for too long", message_ids)
    sockets.push_rows(db.session.scalars(select(Message).where(Message.id.in_(message_ids))))


@shared_task
def repair_pending_previews():
    """Send the previews' tasks again that may be lost, and give up on those pending too long.

    A task can be lost: a broker that restarts without saving its queue, a worker
    killed halfway. After LINK_PREVIEW_RESEND_AFTER seconds of pending, a message's
    task is sent again (a second run of it changes nothing); after
    LINK_PREVIEW_GIVE_UP_AFTER seconds, the message goes on without previews.
    """
    config, now = current_app.config, utils.timestamp()
    pending = select(Message.id).where(Message.previews_pending).order_by(Message.id)
    give_up = db.session.scalars(pending.where(
        Message.updated_at < now - config["LINK_PREVIEW_GIVE_UP_AFTER"])).all()
    if give_up:
        give_up_previews(give_up)
    resend = db.session.scalars(pending.where(
        Message.updated_at < now - config["LINK_PREVIEW_RESEND_AFTER"])).all()
    db.session.rollback()  # no transaction stays open while the tasks are sent
    for message_id in resend:
        request_link_previews(message_id)


@shared_task
def mark_offline_users():
    """Mark the users who have been idle too long offline: one sweep for every process."""
    gone = presence.mark_offline_users()
    sockets.push_rows(db.session.scalars(select(User).where(User.id.in_(gone))))


@shared_task
def purge_expired_tokens():
    """End the sessions whose token has expired, which nobody can use any more."""
    end_sessions(Token.expires_at <= utils.timestamp())
    db.session.commit()
    close_ended_connections()
