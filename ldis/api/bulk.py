"""API v1 routes: CSV import and export of services and contacts (see docs/api.md)."""

from __future__ import annotations

from ldis.api.v1 import bp

__all__ = ["bp"]
