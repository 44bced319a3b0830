"""The background tasks that the Celery worker runs: link previews, and the periodic
tasks that Celery beat sends: the presence sweep and the purge of expired tokens.

A task gets the id of a message, never the message itself: by the time the worker
runs it, the row may have changed, and only the database knows how. Running a task
twice changes nothing the first run did not, because the worker may run it twice.
"""
from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from flask import current_app
from kombu.exceptions import OperationalError
from sqlalchemy import delete, select, update

from . import presence, sockets, utils
from .models import Message, Token, User, db, next_change
from .previews import PageUnavailable
from .rendering import add_link_previews


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
        if self.request.retries < current_app.config["LINK_PREVIEW_RETRIES"]:
            raise self.retry(countdown=retry_delay(self.request.retries)) from error
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
                change=next_change(db.session)))
    db.session.commit()
    if result.rowcount:  # an UPDATE statement: the session did not see what it changed
        sockets.push_rows([db.session.get(Message, message_id)])


def request_link_previews(message):
    """Send the task that fetches a saved message's previews; return False if it failed."""
    try:
        fetch_link_previews.delay(message.id)
    except OperationalError:
        current_app.logger.exception("no previews for message %s: the broker is away",
                                     message.id)
        return False
    return True


@shared_task
def mark_offline_users():
    """Mark the users who have been idle too long offline: one sweep for every process."""
    gone = presence.mark_offline_users()
    sockets.push_rows(db.session.scalars(select(User).where(User.id.in_(gone))))


@shared_task
def purge_expired_tokens():
    """Delete the tokens that have expired, which nobody can use any more."""
    db.session.execute(delete(Token).where(Token.expires_at <= utils.timestamp()))
    db.session.commit()
