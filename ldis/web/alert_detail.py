"""The panel's alert pages, part two: one alert with its exact messages, audience,
approvals, deliveries and timing; its e-mail alone for a sandboxed frame; the actions its
state allows (each a POST with CSRF); its history; and the timing and acknowledgements
report. The routes attach to the `alerts` blueprint of `ldis.web.alerts`, so their
endpoints are `alerts.show`, `alerts.approve` and so on."""

from __future__ import annotations

from typing import Any

from flask import Response, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from ldis.domain.errors import Conflict, Forbidden, NotFound, ValidationFailed
from ldis.domain.principal import Principal
from ldis.domain.roles import Role
from ldis.services import alert_messages, alert_views, alerts
from ldis.web import alert_forms as words
from ldis.web import alert_shares
from ldis.web.access import confirm_second_factor, second_factor_is_fresh, web_roles
from ldis.web.alerts import (
    EDITABLE,
    REVISABLE,
    Errors,
    approvals_required,
    bp,
    current_actor,
    load_alert,
    not_found,
    version_of,
)
from ldis.web.extensions import container

APPROVABLE = ("awaiting_approval", "withdrawal_requested")
# The e-mail HTML is shown alone in a sandboxed frame: no scripts, no loads, only styles.
EMAIL_CSP = "default-src 'none'; style-src 'unsafe-inline'"


def _participants(view: dict[str, Any]) -> list[str]:
    """The names of an exercise's participating services."""
    if not view["exercise"]:
        return []
    return alert_views.service_names(container().db, current_actor(), view["participants"])


# One alert.


def _approval(view: dict[str, Any], actor: Principal) -> str | None:
    """Whether the actor may approve the current version: "yes", or why not."""
    if not actor.has_any(Role.panel) or view["status"] not in APPROVABLE:
        return None
    if actor.user_id in view["author_ids"]:
        return "author"
    if actor.user_id in view["approver_ids"]:
        return "already"
    return "yes"


def _actions(view: dict[str, Any], actor: Principal) -> dict[str, Any]:
    if alert_shares.shared_in(view, actor):
        # Shared with the actor's partnership by another: read it, change nothing.
        return {"shared_in": True, "any": False, "share_choices": []}
    panel = actor.has_any(Role.panel)
    status = view["status"]
    return {
        "share_choices": alert_shares.share_choices(view, actor),
        "edit": panel and status in EDITABLE and view["purpose"] != "withdrawal",
        "submit": panel and status == "draft" and actor.user_id in view["author_ids"],
        "submit_not_author": panel
        and status == "draft"
        and actor.user_id not in view["author_ids"],
        "approve": _approval(view, actor),
        "reject": panel and status in APPROVABLE,
        "revise": panel and status in REVISABLE,
        "withdraw": panel and view["active"] and status != "withdrawal_requested",
        "any": panel,
    }


def _detail(
    alert_id: int,
    *,
    errors: Errors | None = None,
    reasons: dict[str, str] | None = None,
    code: int = 200,
) -> ResponseReturnValue:
    actor = current_actor()
    view = load_alert(alert_id)
    if view is None:
        return not_found()
    raw = request.args.get("version", "")
    shown = int(raw) if raw.isdigit() else view["version"]
    c = container()
    try:
        preview = alert_messages.preview_alert(
            c.db,
            actor,
            alert_id,
            renderer=c.renderer,
            public_url=c.settings.public_url,
            version=shown,
        )
    except ValidationFailed:
        return not_found()
    version = version_of(view, preview["version"])
    people = set(view["approver_ids"]) | set(view["author_ids"])
    for v in view["versions"]:
        people |= set(v["author_ids"])
    names = alert_views.people_names(c.db, actor, people)
    return render_template(
        "alerts/detail.html",
        view=view,
        preview=preview,
        shown=version,
        current=preview["version"] == view["version"],
        latest=version_of(view, view["version"]),
        names=names,
        participants=_participants(view),
        actions=_actions(view, actor),
        required=approvals_required(),
        errors=errors or {},
        reasons=reasons or {},
        # Approving or withdrawing asks for a new code when the last is older than
        # LDIS_FRESH_2FA_MINUTES (docs/accounts.md).
        code_needed=not second_factor_is_fresh(),
        timing=_timing(view["timing"]),
        status_words=words.STATUS_WORDS,
        state_words=words.STATE_WORDS,
        purpose_words=words.PURPOSE_WORDS,
        priority_words=words.PRIORITY_WORDS,
        level_labels=words.LEVEL_LABELS,
        kind_labels=words.ALL_KIND_LABELS,
    ), code


def _timing(timing: dict[str, Any]) -> dict[str, Any]:
    seconds = timing["seconds"]
    return {
        "milestones": [
            ("First report received", timing["first_report_at"]),
            ("Signal raised (case first seen)", timing["signal_at"]),
            ("Panel decision", timing["decided_at"]),
            ("Approved", timing["approved_at"]),
            ("First message sent", timing["first_delivery_at"]),
            ("Last message sent", timing["last_delivery_at"]),
        ],
        "steps": [
            (label, words.duration_words(seconds[key]))
            for label, key in (
                ("First report to signal", "report_to_signal"),
                ("Signal to panel decision", "signal_to_decision"),
                ("Panel decision to approval", "decision_to_approval"),
                ("Approval to first message sent", "approval_to_first_delivery"),
                ("Approval to last message sent", "approval_to_last_delivery"),
            )
        ],
    }


@bp.get("/alerts/<int:alert_id>")
@web_roles(Role.panel, Role.admin)
def show(alert_id: int) -> ResponseReturnValue:
    return _detail(alert_id)


@bp.get("/alerts/<int:alert_id>/versions/<int:version>/email.html")
@web_roles(Role.panel, Role.admin)
def email_html(alert_id: int, version: int) -> ResponseReturnValue:
    """A version's e-mail HTML exactly as rendered, alone, for the page's sandboxed frame."""
    c = container()
    try:
        preview = alert_messages.preview_alert(
            c.db,
            current_actor(),
            alert_id,
            renderer=c.renderer,
            public_url=c.settings.public_url,
            version=version,
        )
    except (NotFound, ValidationFailed):
        return not_found()
    html = ((preview["messages"].get("channels") or {}).get("email") or {}).get("html")
    if not html:
        return render_template(
            "error.html",
            title="No e-mail to show",
            message=preview["render_error"] or "This version has no e-mail.",
        ), 404
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = EMAIL_CSP
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


def _back(alert_id: int, anchor: str | None = None) -> ResponseReturnValue:
    return redirect(url_for("alerts.show", alert_id=alert_id, _anchor=anchor))


@bp.post("/alerts/<int:alert_id>/submit")
@web_roles(Role.panel)
def submit(alert_id: int) -> ResponseReturnValue:
    try:
        alerts.submit_alert(container().db, current_actor(), alert_id)
    except NotFound:
        return not_found()
    except (Forbidden, Conflict) as exc:
        flash(exc.message, "error")
        return _back(alert_id)
    needed = approvals_required()
    flash(
        f"Submitted for approval: it now needs {needed} "
        f"{'approval' if needed == 1 else 'approvals'} from panel members who did not write it.",
        "changed",
    )
    return _back(alert_id)


@bp.post("/alerts/<int:alert_id>/approve")
@web_roles(Role.panel)
def approve(alert_id: int) -> ResponseReturnValue:
    raw = request.form.get("revision", "").strip()
    if not raw.isdigit():
        flash("Reload the alert and read it again before approving.", "error")
        return _back(alert_id)
    problem = confirm_second_factor(request.form.get("otp"), purpose="approve", doing="approve")
    if problem is not None:
        message, status = problem
        return _detail(alert_id, errors={"approve_otp": message}, code=status)
    c = container()
    try:
        view = alerts.approve_alert(
            c.db,
            current_actor(),
            alert_id,
            required=c.settings.approvals_required,
            queue=c.queue,
            seen_revision=int(raw),
        )
    except NotFound:
        return not_found()
    except (Forbidden, Conflict) as exc:
        flash(exc.message, "error")
        return _back(alert_id)
    if view["status"] == "withdrawn":
        message = "Approved: the alert is withdrawn and the withdrawal notice is being sent."
    elif view["status"] == "approved":
        total = view["deliveries"]["queued"]
        message = f"Approved: the alert is being sent ({total} messages queued)."
    else:
        message = f"Your approval is recorded: {view['approvals']} of {approvals_required()}."
    flash(message, "changed")
    return _back(alert_id)


@bp.post("/alerts/<int:alert_id>/reject")
@web_roles(Role.panel)
def reject(alert_id: int) -> ResponseReturnValue:
    reason = request.form.get("reject_reason", "")
    try:
        view = alerts.reject_alert(container().db, current_actor(), alert_id, reason)
    except NotFound:
        return not_found()
    except ValidationFailed:
        errors = {"reject_reason": "Enter why the alert is rejected"}
        return _detail(alert_id, errors=errors, reasons={"reject_reason": reason}, code=422)
    except (Forbidden, Conflict) as exc:
        flash(exc.message, "error")
        return _back(alert_id)
    if view["status"] == "approved":
        flash("The withdrawal was rejected: the alert stays live as it was.", "changed")
    else:
        flash("Rejected. Start a new version to try again.", "changed")
    return _back(alert_id)


@bp.post("/alerts/<int:alert_id>/withdraw")
@web_roles(Role.panel)
def withdraw(alert_id: int) -> ResponseReturnValue:
    reason = request.form.get("withdraw_reason", "")
    problem = confirm_second_factor(
        request.form.get("otp"), purpose="withdraw", doing="ask to withdraw the alert"
    )
    if problem is not None:
        message, status = problem
        return _detail(
            alert_id,
            errors={"withdraw_otp": message},
            reasons={"withdraw_reason": reason},
            code=status,
        )
    try:
        alerts.withdraw_alert(container().db, current_actor(), alert_id, reason)
    except NotFound:
        return not_found()
    except ValidationFailed as exc:
        message = exc.fields.get("reason", "")
        text = (
            "Reason must be 1000 characters or fewer"
            if "1000" in message
            else "Enter why the alert is withdrawn"
        )
        errors = {"withdraw_reason": text}
        return _detail(alert_id, errors=errors, reasons={"withdraw_reason": reason}, code=422)
    except (Forbidden, Conflict) as exc:
        flash(exc.message, "error")
        return _back(alert_id)
    needed = approvals_required()
    flash(
        f"Withdrawal requested: it needs {needed} "
        f"{'approval' if needed == 1 else 'approvals'} from other panel members before the "
        "withdrawal notice goes out.",
        "changed",
    )
    return _back(alert_id)


# History and timing.


@bp.get("/alerts/<int:alert_id>/history")
@web_roles(Role.panel, Role.admin)
def history(alert_id: int) -> ResponseReturnValue:
    view = load_alert(alert_id)
    if view is None:
        return not_found()
    events = alert_views.history(container().db, current_actor(), alert_id)
    return render_template(
        "alerts/history.html",
        view=view,
        events=[
            (e, words.ACTION_WORDS.get(e["action"], e["action"]), words.detail_lines(e["detail"]))
            for e in events
        ],
    )


@bp.get("/alerts/<int:alert_id>/exercise")
@web_roles(Role.panel, Role.admin)
def exercise_report(alert_id: int) -> ResponseReturnValue:
    view = load_alert(alert_id)
    if view is None:
        return not_found()
    acks = alert_views.acknowledgements(container().db, current_actor(), alert_id)
    return render_template(
        "alerts/exercise.html",
        view=view,
        title="Exercise report" if view["exercise"] else "Timing and acknowledgements",
        timing=_timing(view["timing"]),
        acks=[(a, words.duration_words(a["seconds_after_sending"])) for a in acks],
        participants=_participants(view),
        channel_words={"sms": "SMS", "email": "E-mail"},
    )
