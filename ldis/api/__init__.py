"""JSON API v1 under /api/v1: thin adapters from HTTP to ldis.services.

Routes live in one module per feature, all on the one blueprint defined in `v1`.
"""

from ldis.api import (  # noqa: F401  (registers routes)
    alerts,
    areas,
    audience,
    bulk,
    openapi,
    panel,
    partnerships,
    progress,
    services,
    users,
)
from ldis.api.v1 import bp

__all__ = ["bp"]
