"""API v1 routes: services (see docs/api.md)."""

from __future__ import annotations

from ldis.api.v1 import bp

__all__ = ["bp"]
