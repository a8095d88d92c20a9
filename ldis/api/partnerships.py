"""API v1 routes for partnerships: list them (a panel needs a neighbour's code to share an
alert), create one (host operators only), and share an alert with a neighbour."""

from __future__ import annotations

from typing import Any

from flask import jsonify
from flask.typing import ResponseReturnValue

from ldis.api.body import json_body
from ldis.api.v1 import bp, created
from ldis.domain.errors import Forbidden, ValidationFailed
from ldis.domain.roles import Role
from ldis.services import partnerships
from ldis.web.access import api_roles, current_principal
from ldis.web.extensions import container

__all__ = ["bp"]


def _fields(*names: str) -> dict[str, str]:
    """The JSON object body with exactly these string fields (unknown ones refused)."""
    body: Any = json_body()
    if not isinstance(body, dict):
        raise ValidationFailed({"body": "send a JSON object"})
    problems = {k: "unknown field" for k in body if k not in names}
    problems |= {n: "give it as a string" for n in names if not isinstance(body.get(n), str)}
    if problems:
        raise ValidationFailed(problems)
    return {n: str(body[n]) for n in names}


@bp.get("/partnerships")
@api_roles(Role.panel, Role.admin)
def list_partnerships() -> ResponseReturnValue:
    return jsonify({"items": partnerships.list_all(container().db)})


@bp.post("/partnerships")
@api_roles(Role.admin)
def create_partnership() -> ResponseReturnValue:
    """Body {"code": "york-north-yorks", "name": "York and North Yorkshire"}."""
    if current_principal().partnership_id is not None:
        raise Forbidden("Only a host operator (a user of no partnership) adds partnerships.")
    body = _fields("code", "name")
    return created(partnerships.create(container().db, body["code"], body["name"]))


@bp.post("/alerts/<int:alert_id>/shares")
@api_roles(Role.panel)
def share_alert(alert_id: int) -> ResponseReturnValue:
    """Body {"partnership": "durham-darlington"}: that partnership may read the alert and its
    services get its versions; only the alert's own panel shares it."""
    c = container()
    partnership = _fields("partnership")["partnership"]
    return created(
        partnerships.share_alert(c.db, current_principal(), alert_id, partnership, queue=c.queue)
    )
