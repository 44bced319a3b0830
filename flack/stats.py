"""Request statistics: how many requests per second the whole deployment handles.

With REDIS_URL set, every server process counts its requests in Redis, in one counter
per second, so /api/stats gives one figure for all of them. Without Redis, the counts
live in this process's memory, which is right when there is one process, as with
`make run`. Until v0.16 that was the only way: scalability problem 3.
"""
import threading
from collections import deque

import redis
from flask import current_app, request

from . import utils


class LocalCounts:
    """The arrival times of this process's recent requests."""

    def __init__(self):
        self.times = deque()
        self.lock = threading.Lock()

    def add(self, now, window):
        """Count a request that arrived at now."""
        with self.lock:
            self.times.append(now)
            self.forget_before(now - window)

    def count(self, now, window):
        """Return the number of requests in the window that ends at now."""
        with self.lock:
            self.forget_before(now - window)
            return len(self.times)

    def forget_before(self, cutoff):
        """Drop the request times that fell out of the window."""
        while self.times and self.times[0] <= cutoff:
            self.times.popleft()


class RedisCounts:
    """Requests counted in Redis by every process, one counter for each second."""

    def __init__(self, url, prefix):
        # A Redis that stops answering costs a request one second, not a hang.
        self.redis = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        self.prefix = f"{prefix}requests:"

    def add(self, now, window):
        """Count a request that arrived at now, in its second's counter."""
        key = f"{self.prefix}{int(now)}"
        with self.redis.pipeline() as pipe:  # one round trip for both commands
            pipe.incr(key)
            pipe.expire(key, window + 1)  # Redis forgets the counter once it is too old
            pipe.execute()

    def count(self, now, window):
        """Return the number of requests in the whole seconds of the window that ends at now."""
        last = int(now)
        keys = [f"{self.prefix}{second}" for second in range(last - window + 1, last + 1)]
        return sum(int(value) for value in self.redis.mget(keys) if value is not None)


def init_app(app):
    """Give an application its request counts, and count each of its requests."""
    if app.config["REDIS_URL"]:
        counts = RedisCounts(app.config["REDIS_URL"], app.config["REDIS_PREFIX"])
    else:
        counts = LocalCounts()
    app.extensions["flack_stats"] = counts
    app.before_request(count_request)  # every request counts, not only the API's


def request_counts():
    """Return the request counts of the current application."""
    return current_app.extensions["flack_stats"]


def count_request():
    """Count each request as it arrives, but not the health checks (flack.health)."""
    if request.blueprint == "health":  # a platform's, every few seconds: not the chat's traffic
        return
    try:
        request_counts().add(utils.timestamp(), current_app.config["STATS_WINDOW"])
    except redis.RedisError as error:  # the request matters more than its statistics
        current_app.logger.warning("request not counted: %s", error)


def requests_per_second():
    """Return the average number of requests per second over the window."""
    window = current_app.config["STATS_WINDOW"]
    return request_counts().count(utils.timestamp(), window) / window


def summary():
    """Return the statistics as the API and the pushes show them."""
    return {"requests_per_second": round(requests_per_second(), 2)}
