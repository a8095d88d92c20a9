"""Progress routes of API v1: an alert's deliveries as the panel follows them (totals per
channel and state, failures by reason, services not yet acknowledged, escalation stages),
and resend to failed."""

from __future__ import annotations

from flask import jsonify
from flask.typing import ResponseReturnValue

from ldis.api.body import json_body
from ldis.api.v1 import bp
from ldis.domain.roles import Role
from ldis.services import progress
from ldis.web.access import api_roles, current_principal
from ldis.web.extensions import container


@bp.get("/alerts/<int:alert_id>/deliveries")
@api_roles(Role.panel, Role.admin)
def alert_deliveries(alert_id: int) -> ResponseReturnValue:
    c = container()
    return jsonify(
        progress.progress(
            c.db,
            current_principal(),
            alert_id,
            escalate_after_minutes=c.settings.escalate_after_minutes,
        )
    )


@bp.post("/alerts/<int:alert_id>/resend-failed")
@api_roles(Role.panel)
def resend_failed(alert_id: int) -> ResponseReturnValue:
    """No body needed: `{"alert_id", "version", "resent": n}`."""
    json_body(optional=True)
    c = container()
    return jsonify(progress.resend_failed(c.db, current_principal(), alert_id, queue=c.queue))
