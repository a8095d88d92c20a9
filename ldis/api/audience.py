"""API v1 routes: audience (see docs/api.md)."""

from __future__ import annotations

from ldis.api.v1 import bp

__all__ = ["bp"]
