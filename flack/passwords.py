"""Password hashes, computed off the event loop.

A hash that is slow on purpose (scrypt: about 0.1 s of CPU) would stop a green-thread
server for that long: every other request and every WebSocket waits for it, and a few
wrong passwords a second stall them all. Under gevent the hash runs in a real thread
of its thread pool instead (hashlib lets go of the GIL while it hashes),
and the green threads go on meanwhile. Threads of the development server need no help.
At most PASSWORD_HASH_THREADS hashes run at once in a process; more logins wait in line.
"""
import threading

from flask import current_app
from werkzeug.security import check_password_hash, generate_password_hash


def hashing_slots():
    """Return the semaphore that lets PASSWORD_HASH_THREADS hashes run at once."""
    # Made at the first hash, after gevent patched threading: it is a green
    # semaphore there, on which a login waits its turn without stopping the others.
    return current_app.extensions.setdefault(
        "flack_hashing_slots", threading.BoundedSemaphore(
            current_app.config["PASSWORD_HASH_THREADS"]))


def in_a_thread(function, *args):
    """Run a function that holds the CPU for long in a real thread, and return its result."""
    # A few threads at most: twenty hashes at once (the thread pool's size) would take
    # every core from the one thread that runs the event loop, which is what stalled.
    with hashing_slots():
        return run_off_the_loop(function, *args)


def run_off_the_loop(function, *args):
    """Run a function in the thread pool of the green threads, if there are green threads."""
    if current_app.config["SOCKETIO_ASYNC_MODE"] == "gevent":
        import gevent  # imported here: only its workers have it running

        return gevent.get_hub().threadpool.apply(function, args)
    return function(*args)


def hash_password(password):
    """Return a salted hash of a password, made with the configured method."""
    return in_a_thread(generate_password_hash, password,
                       current_app.config["PASSWORD_HASH_METHOD"])


def password_matches(password_hash, password):
    """Tell whether a password is the one whose hash this is."""
    return in_a_thread(check_password_hash, password_hash, password)
