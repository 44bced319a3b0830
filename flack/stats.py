"""Request statistics: how many requests per second a server process handles.

This is scalability problem 3 of the tutorial: the times of the requests are kept in
the memory of one process, so with several server processes each one counts only
its own requests, and /api/stats shows whichever process answers it.
"""
import threading
from collections import deque

from flask import current_app

from . import utils


class RequestTimes:
    """The arrival times of one application's recent requests."""

    def __init__(self):
        self.times = deque()
        self.lock = threading.Lock()


def init_app(app):
    """Give an application its own request times, and count each of its requests."""
    app.extensions["flack_stats"] = RequestTimes()
    app.before_request(count_request)  # every request counts, not only the API's


def request_times():
    """Return the request times of the current application."""
    return current_app.extensions["flack_stats"]


def forget_old_requests(recent, now):
    """Drop the request times that fell out of the window."""
    cutoff = now - current_app.config["STATS_WINDOW"]
    while recent.times and recent.times[0] <= cutoff:
        recent.times.popleft()


def count_request():
    """Remember when each request arrived."""
    now = utils.timestamp()
    recent = request_times()
    with recent.lock:
        recent.times.append(now)
        forget_old_requests(recent, now)


def requests_per_second():
    """Return the average number of requests per second over the window."""
    recent = request_times()
    with recent.lock:
        forget_old_requests(recent, utils.timestamp())
        return len(recent.times) / current_app.config["STATS_WINDOW"]
