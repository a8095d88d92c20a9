"""API v1 routes: areas (see docs/api.md)."""

from __future__ import annotations

from ldis.api.v1 import bp

__all__ = ["bp"]
