"""The least a Flask-SocketIO chat server can do: the broadcast scenario's bare Python server.

    BARE_MESSAGE_QUEUE=redis://127.0.0.1:6379/0 gunicorn -k gevent -w 1 bare_socketio:app

It lets any client connect, and on POST /api/messages it gives the JSON message it
was sent a new id, pushes it to every connected client as "message_changed", as
Flack does, then answers it. No database, no login, no statistics: what is left is
the cost of Flask-SocketIO's broadcast itself, through the same message queue as
Flack's when BARE_MESSAGE_QUEUE is set. It runs in the venv of the stage it is
compared with, on the same gunicorn worker. BARE_FRAME_ONCE=1 turns on an
experiment that frames each broadcast once (framed_once.py).
"""
import itertools
import os

from flask import Flask, request
from flask_socketio import SocketIO

app = Flask(__name__)
queue_url = os.environ.get("BARE_MESSAGE_QUEUE") or None
channel = os.environ.get("BARE_CHANNEL", "bare-socketio")
options = {}
if os.environ.get("BARE_FRAME_ONCE") and queue_url:  # an experiment: see framed_once.py
    from framed_once import FramedOnceRedisManager
    options["client_manager"] = FramedOnceRedisManager(queue_url, channel=channel)
socketio = SocketIO(app, async_mode=os.environ.get("BARE_ASYNC_MODE", "gevent"),
                    message_queue=queue_url, channel=channel, **options)
ids = itertools.count(1)


@app.post("/api/messages")
def new_message():
    """Give the message an id, push it to every client, and answer it."""
    message = {**request.get_json(), "id": next(ids)}
    socketio.emit("message_changed", message)
    return message, 201


@app.get("/api/stats")
def stats():
    """Answer, so that the harness knows the server is up."""
    return {"requests_per_second": 0}
