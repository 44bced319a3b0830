"""The API's messages: post, list or poll for new ones, read, and edit your own."""
from flask import current_app
from sqlalchemy import select

from .. import utils
from ..auth import token_auth, token_optional
from ..limits import messages_per_user
from ..models import Message, db
from ..rendering import render_markdown, wants_previews
from ..tasks import request_link_previews
from .blueprint import api
from .inputs import change_arg, get_or_404, get_own_or_abort, limit_arg
from .schemas import MessageSchema, load


def save_message(message):
    """Stamp a new or edited message with the current time, and commit it."""
    message.touch()
    if message.id is None:
        message.created_at = message.updated_at
        db.session.add(message)
    db.session.commit()  # the flush gives the message its change number


def set_text(message, source):
    """Give a message its Markdown and HTML; its link previews will follow."""
    message.source = source
    message.html = render_markdown(source)
    message.previews_pending = wants_previews(message.html)


def save_and_request_previews(message):
    """Save a message, then send the task that fetches its previews, if it has links."""
    save_message(message)
    # Only now: a worker that ran the task before the commit would not find the message.
    if message.previews_pending:
        request_link_previews(message.id)


@api.post("/messages")
@token_auth.login_required
@messages_per_user
def new_message():
    """Post a message; the previews of its links arrive later, as an update."""
    message = Message(author=token_auth.current_user())
    set_text(message, load(MessageSchema)["source"])
    save_and_request_previews(message)
    return message.to_dict(), 201, {"Location": utils.url_for("api.get_message", id=message.id)}


@api.get("/messages")
@token_optional
def get_messages():
    """Return the latest messages, or the first ones changed after a change number."""
    limit = limit_arg(current_app.config["MESSAGES_DEFAULT_LIMIT"],
                      current_app.config["MESSAGES_MAX_LIMIT"])
    after = change_arg()
    if after is None:
        latest = db.session.scalars(
            select(Message).order_by(Message.change.desc()).limit(limit)).all()
        messages = list(reversed(latest))
    else:
        messages = db.session.scalars(
            select(Message).where(Message.change > after)
            .order_by(Message.change).limit(limit)).all()
    return {"messages": [message.to_dict() for message in messages]}


@api.get("/messages/<int:id>")
@token_optional
def get_message(id):
    """Return one message."""
    return get_or_404(Message, id).to_dict()


@api.put("/messages/<int:id>")
@token_auth.login_required
@messages_per_user
def edit_message(id):
    """Change the text of one of the caller's messages."""
    message = get_own_or_abort(Message, id)
    set_text(message, load(MessageSchema)["source"])
    message.edited_at = utils.timestamp()
    save_and_request_previews(message)
    return message.to_dict()
