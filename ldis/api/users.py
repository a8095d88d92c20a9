"""API v1 routes for user accounts an admin manages: `PATCH /users/{id}` sets the service a
reporter files for (which decides whose reports they read; docs/privacy.md)."""

from __future__ import annotations

from flask import jsonify
from flask.typing import ResponseReturnValue

from ldis.api.body import json_body
from ldis.api.v1 import bp
from ldis.domain.roles import Role
from ldis.services import user_admin
from ldis.web.access import api_roles, current_principal
from ldis.web.extensions import container

__all__ = ["bp"]


@bp.patch("/users/<int:user_id>")
@api_roles(Role.admin)
def update_user(user_id: int) -> ResponseReturnValue:
    """Body {"service_id": 3} (or null to unlink)."""
    return jsonify(
        user_admin.update_user(container().db, current_principal(), user_id, json_body())
    )
