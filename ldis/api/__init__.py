"""JSON API v1 under /api/v1: thin adapters from HTTP to ldis.services."""

from ldis.api.v1 import bp

__all__ = ["bp"]
