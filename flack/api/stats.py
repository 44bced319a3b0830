"""The API's statistics: how many requests per second the server handles."""
import redis
from flask import abort

from .. import stats
from ..auth import token_optional
from .blueprint import api


@api.get("/stats")
@token_optional
def get_stats():
    """Return how many requests per second the server handles, all processes together."""
    try:
        return stats.summary()
    except redis.RedisError:
        abort(503, "the request statistics are unavailable: Redis does not answer")
