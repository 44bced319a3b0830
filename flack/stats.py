"""Request statistics: how many requests per second this server process handles.

This is scalability problem 3 of the tutorial: the times of the requests are kept in
the memory of one process, so with several server processes each one counts only
its own requests, and /api/stats shows whichever process answers it.
"""
import threading
from collections import deque

from flask import current_app

from . import utils

request_times = deque()
request_times_lock = threading.Lock()


def forget_old_requests(now):
    """Drop the request times that fell out of the window."""
    cutoff = now - current_app.config["STATS_WINDOW"]
    while request_times and request_times[0] <= cutoff:
        request_times.popleft()


def count_request():
    """Remember when each request arrived."""
    now = utils.timestamp()
    with request_times_lock:
        request_times.append(now)
        forget_old_requests(now)


def requests_per_second():
    """Return the average number of requests per second over the window."""
    with request_times_lock:
        forget_old_requests(utils.timestamp())
        return len(request_times) / current_app.config["STATS_WINDOW"]
