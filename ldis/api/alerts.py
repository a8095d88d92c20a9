"""Alert routes of API v1: draft, edit, submit, approve, reject, revise, withdraw, and the
views the panel reads before acting (preview, history, acknowledgements)."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request
from flask.typing import ResponseReturnValue

from ldis.api.body import json_body
from ldis.api.v1 import bp, created
from ldis.domain.errors import ValidationFailed
from ldis.domain.roles import Role
from ldis.services import alert_messages, alert_views, alerts, two_factor
from ldis.web.access import api_roles, current_principal
from ldis.web.extensions import container


def _render_check() -> alerts.RenderCheck:
    c = container()
    return alert_messages.render_check(c.renderer, c.settings.public_url)


def _reason(body: Any, what: str) -> str:
    reason = body.get("reason") if isinstance(body, dict) else None
    if not isinstance(reason, str):
        raise ValidationFailed({"reason": f"say why the alert is {what}"})
    return reason


def _second_factor(body: Any, purpose: str) -> None:
    """A token alone cannot approve or withdraw: the body must carry "otp", a current code
    from the token user's authenticator app (or a recovery code), each accepted once. Users
    without two-factor set up are refused (403 second_factor_required); docs/accounts.md."""
    otp = body.get("otp") if isinstance(body, dict) else None
    c = container()
    two_factor.require_for_api(
        c.db, current_principal(), otp, key=c.settings.secret(), purpose=purpose
    )


@bp.post("/alerts")
@api_roles(Role.panel)
def draft_alert() -> ResponseReturnValue:
    c = container()
    view = alerts.draft_alert(
        c.db,
        current_principal(),
        json_body(),
        templates=c.templates(),
        check_render=_render_check(),
    )
    return created(view)


@bp.get("/alerts")
@api_roles(Role.panel, Role.admin)
def list_alerts() -> ResponseReturnValue:
    which = request.args.get("state") or "active"
    return jsonify(alert_views.list_alerts(container().db, current_principal(), which))


@bp.get("/alerts/<int:alert_id>")
@api_roles(Role.panel, Role.admin)
def get_alert(alert_id: int) -> ResponseReturnValue:
    return jsonify(alert_views.get_alert(container().db, current_principal(), alert_id))


@bp.put("/alerts/<int:alert_id>")
@api_roles(Role.panel)
def edit_alert(alert_id: int) -> ResponseReturnValue:
    c = container()
    view = alerts.edit_alert(
        c.db,
        current_principal(),
        alert_id,
        json_body(),
        templates=c.templates(),
        check_render=_render_check(),
    )
    return jsonify(view)


@bp.post("/alerts/<int:alert_id>/submit")
@api_roles(Role.panel)
def submit_alert(alert_id: int) -> ResponseReturnValue:
    json_body(optional=True)
    return jsonify(alerts.submit_alert(container().db, current_principal(), alert_id))


@bp.post("/alerts/<int:alert_id>/approve")
@api_roles(Role.panel)
def approve_alert(alert_id: int) -> ResponseReturnValue:
    """Body {"otp": "123456"} (required) and optionally "revision": n, the revision the
    approver read (see the preview)."""
    body = json_body(optional=True)
    seen = body.get("revision") if isinstance(body, dict) else None
    if seen is not None and (not isinstance(seen, int) or isinstance(seen, bool)):
        raise ValidationFailed({"revision": "give the revision number you read, e.g. 2"})
    _second_factor(body, "approve")
    c = container()
    return jsonify(
        alerts.approve_alert(
            c.db,
            current_principal(),
            alert_id,
            required=c.settings.approvals_required,
            queue=c.queue,
            seen_revision=seen,
        )
    )


@bp.post("/alerts/<int:alert_id>/reject")
@api_roles(Role.panel)
def reject_alert(alert_id: int) -> ResponseReturnValue:
    reason = _reason(json_body(), "rejected")
    return jsonify(alerts.reject_alert(container().db, current_principal(), alert_id, reason))


@bp.post("/alerts/<int:alert_id>/revise")
@api_roles(Role.panel)
def revise_alert(alert_id: int) -> ResponseReturnValue:
    """Optional body: the new version's full draft; without one it copies the live one."""
    c = container()
    view = alerts.revise_alert(
        c.db,
        current_principal(),
        alert_id,
        json_body(optional=True) or None,
        templates=c.templates(),
        check_render=_render_check(),
    )
    return created(view)


@bp.post("/alerts/<int:alert_id>/withdraw")
@api_roles(Role.panel)
def withdraw_alert(alert_id: int) -> ResponseReturnValue:
    """Body {"reason": "...", "otp": "123456"}."""
    body = json_body()
    reason = _reason(body, "withdrawn")
    _second_factor(body, "withdraw")
    return jsonify(alerts.withdraw_alert(container().db, current_principal(), alert_id, reason))


@bp.get("/alerts/<int:alert_id>/preview")
@api_roles(Role.panel, Role.admin)
def preview_alert(alert_id: int) -> ResponseReturnValue:
    raw = request.args.get("version")
    if raw is not None and not raw.isdigit():
        raise ValidationFailed({"version": "give a version number, e.g. 2"})
    c = container()
    return jsonify(
        alert_messages.preview_alert(
            c.db,
            current_principal(),
            alert_id,
            renderer=c.renderer,
            public_url=c.settings.public_url,
            version=int(raw) if raw is not None else None,
        )
    )


@bp.get("/alerts/<int:alert_id>/history")
@api_roles(Role.panel, Role.admin)
def alert_history(alert_id: int) -> ResponseReturnValue:
    return jsonify(alert_views.history(container().db, current_principal(), alert_id))


@bp.get("/alerts/<int:alert_id>/acknowledgements")
@api_roles(Role.panel, Role.admin)
def alert_acknowledgements(alert_id: int) -> ResponseReturnValue:
    return jsonify(alert_views.acknowledgements(container().db, current_principal(), alert_id))
