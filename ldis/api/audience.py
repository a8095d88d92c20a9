"""API v1 routes: audience (see docs/api.md and docs/audience.md)."""

from __future__ import annotations

from flask import jsonify
from flask.typing import ResponseReturnValue

from ldis.api.body import json_body
from ldis.api.v1 import bp
from ldis.domain.roles import Role
from ldis.services import audience
from ldis.web.access import api_roles, current_principal
from ldis.web.extensions import container

__all__ = ["bp"]


@bp.post("/audience/preview")
@api_roles(Role.panel, Role.admin)
def preview_audience() -> ResponseReturnValue:
    """Who an alert with these areas, types, level and kind would reach, and who it misses."""
    return jsonify(audience.preview(container().db, current_principal(), json_body()))
