"""The routes of API v1 (see CONTRACT.md). Each one: who may call it, parse, call a use case."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from ldis.api.body import json_body
from ldis.domain.errors import ValidationFailed
from ldis.domain.roles import Role
from ldis.services import alerts, intake, recipients
from ldis.web.access import api_roles, current_principal
from ldis.web.extensions import container

bp = Blueprint("api_v1", __name__, url_prefix="/api/v1")


def created(body: dict[str, Any]) -> ResponseReturnValue:
    return jsonify(body), 201


@bp.post("/areas")
@api_roles(Role.admin)
def create_area() -> ResponseReturnValue:
    return created(recipients.create_area(container().db, current_principal(), json_body()))


@bp.post("/services")
@api_roles(Role.admin)
def create_service() -> ResponseReturnValue:
    return created(recipients.create_service(container().db, current_principal(), json_body()))


@bp.post("/services/<int:service_id>/contacts")
@api_roles(Role.admin)
def add_contact(service_id: int) -> ResponseReturnValue:
    return created(
        recipients.add_contact(container().db, current_principal(), service_id, json_body())
    )


@bp.post("/reports")
@api_roles(Role.reporter, Role.panel, Role.admin)
def file_report() -> ResponseReturnValue:
    return created(intake.file_report(container().db, current_principal(), json_body()))


@bp.get("/reports/<int:report_id>")
@api_roles(Role.reporter, Role.panel, Role.admin)
def get_report(report_id: int) -> ResponseReturnValue:
    return jsonify(intake.get_report(container().db, current_principal(), report_id))


@bp.post("/alerts")
@api_roles(Role.panel)
def draft_alert() -> ResponseReturnValue:
    c = container()
    return created(
        alerts.draft_alert(c.db, current_principal(), json_body(), templates=c.templates())
    )


@bp.post("/alerts/<int:alert_id>/submit")
@api_roles(Role.panel)
def submit_alert(alert_id: int) -> ResponseReturnValue:
    json_body(optional=True)
    return jsonify(alerts.submit_alert(container().db, current_principal(), alert_id))


@bp.post("/alerts/<int:alert_id>/approve")
@api_roles(Role.panel)
def approve_alert(alert_id: int) -> ResponseReturnValue:
    json_body(optional=True)
    c = container()
    return jsonify(
        alerts.approve_alert(
            c.db,
            current_principal(),
            alert_id,
            required=c.settings.approvals_required,
            queue=c.queue,
        )
    )


@bp.post("/alerts/<int:alert_id>/reject")
@api_roles(Role.panel)
def reject_alert(alert_id: int) -> ResponseReturnValue:
    body = json_body()
    reason = body.get("reason") if isinstance(body, dict) else None
    if not isinstance(reason, str):
        raise ValidationFailed({"reason": "say why the alert is rejected"})
    return jsonify(alerts.reject_alert(container().db, current_principal(), alert_id, reason))


@bp.get("/alerts/<int:alert_id>")
@api_roles(Role.panel, Role.admin)
def get_alert(alert_id: int) -> ResponseReturnValue:
    return jsonify(alerts.get_alert(container().db, current_principal(), alert_id))
