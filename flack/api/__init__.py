"""Flack's API: the blueprint that create_app() registers under /api.

Each resource has its module: users, tokens, messages and stats. Importing a
module registers its views on the blueprint.
"""
from . import messages, stats, tokens, users  # noqa: F401  (they register views)
from .blueprint import api

__all__ = ["api"]
