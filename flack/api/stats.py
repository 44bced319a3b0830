"""The API's statistics: how many requests per second this server process handles."""
from .. import stats
from ..auth import token_optional
from .blueprint import api


@api.get("/stats")
@token_optional
def get_stats():
    """Return how many requests per second this server process handles."""
    return {"requests_per_second": round(stats.requests_per_second(), 2)}
