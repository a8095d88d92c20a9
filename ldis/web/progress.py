"""The live progress page of a sent alert (`/alerts/<id>/deliveries`): totals per channel
and state, failures with their reasons, the services that have not acknowledged it (with
phone numbers for the panel, to ring round), escalation stages, and "Resend to failed".

No scripts: the page asks the browser to reload itself every `REFRESH_SECONDS` (the
`Refresh` header), which the reader can turn off (`?auto=off`, WCAG 2.2.1), and carries a
plain "Refresh now" link. Thin: the view is `ldis.services.progress`."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from ldis.domain.errors import Conflict, NotFound
from ldis.domain.principal import Principal
from ldis.domain.roles import Role
from ldis.services import progress
from ldis.web.access import current_web_principal, web_roles
from ldis.web.extensions import container
from ldis.web.forms import register_page_errors

bp = Blueprint("progress", __name__)
register_page_errors(bp)

REFRESH_SECONDS = 10
STATE_LABELS = {
    "queued": "Waiting to send",
    "sent": "Sent",
    "delivered": "Delivered",
    "failed": "Failed",
    "cancelled": "Cancelled",
    "acknowledged": "Acknowledged",
}
CHANNEL_LABELS = {"sms": "Text message", "email": "E-mail"}
PURPOSE_LABELS = {"alert": "First message", "update": "Update", "withdrawal": "Withdrawal notice"}
STAGE_LABELS = {"backup": "Sent to backup contacts", "panel": "Passed to the panel to ring"}
CHANNEL_STATES = {
    "receiving": "receiving",
    "unconfirmed": "not confirmed yet",
    "stopped": "stopped (opted out)",
    "failing": "not arriving",
}


def _actor() -> Principal:
    principal = current_web_principal()
    assert principal is not None, "web_roles lets only signed-in people through"
    return principal


def _not_found() -> ResponseReturnValue:
    return render_template(
        "error.html", title="Alert not found", message="There is no alert with that number."
    ), 404


@bp.get("/alerts/<int:alert_id>/deliveries")
@web_roles(Role.panel, Role.admin)
def show(alert_id: int) -> ResponseReturnValue:
    c = container()
    actor = _actor()
    try:
        view = progress.progress(
            c.db, actor, alert_id, escalate_after_minutes=c.settings.escalate_after_minutes
        )
    except NotFound:
        return _not_found()
    auto = request.args.get("auto") != "off"
    response = render_template(
        "progress/show.html",
        view=view,
        auto=auto,
        refresh_seconds=REFRESH_SECONDS,
        can_resend=actor.has_any(Role.panel),
        states=STATE_LABELS,
        channels=CHANNEL_LABELS,
        purposes=PURPOSE_LABELS,
        stages=STAGE_LABELS,
        channel_states=CHANNEL_STATES,
    )
    headers = {"Cache-Control": "no-store"}
    if auto:
        headers["Refresh"] = str(REFRESH_SECONDS)
    return response, 200, headers


@bp.post("/alerts/<int:alert_id>/deliveries/resend-failed")
@web_roles(Role.panel)
def resend_failed(alert_id: int) -> ResponseReturnValue:
    c = container()
    try:
        done = progress.resend_failed(c.db, _actor(), alert_id, queue=c.queue)
    except NotFound:
        return _not_found()
    except Conflict as exc:
        flash(exc.message, "error")
        return redirect(url_for("progress.show", alert_id=alert_id), 303)
    count = done["resent"]
    if count:
        flash(f"{count} failed message{'s' if count != 1 else ''} queued to send again.", "changed")
    else:
        flash("Nothing to resend: every failure needs the contact's details fixed first.", "error")
    return redirect(url_for("progress.show", alert_id=alert_id), 303)
