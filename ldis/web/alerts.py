"""The panel's alert pages: the lists, the draft form with a preview of every channel, one
alert with its exact messages, audience, approvals, deliveries and timing, the actions its
state allows (each a POST with CSRF), its history, and the timing and acknowledgements
report. Thin: every rule is in the use cases (`ldis.services.alerts`); the form and the
words are in `ldis.web.alert_forms`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from ldis.domain.alerts import AlertDraft, check_dates
from ldis.domain.errors import Conflict, Forbidden, NotFound, ValidationFailed
from ldis.domain.grading import DECISION_LABELS
from ldis.domain.principal import Principal
from ldis.domain.roles import Role
from ldis.domain.validation import parse
from ldis.messages.context import previous_version_of
from ldis.messages.preview import preview_version
from ldis.messages.render import TemplateError, TemplateFieldMissing
from ldis.services import alert_messages, alert_views, alerts, audience, panel_cases, signals
from ldis.store.models import Service, User
from ldis.web import alert_forms as words
from ldis.web.access import current_web_principal, web_roles
from ldis.web.alert_forms import AlertForm
from ldis.web.extensions import container
from ldis.web.forms import register_page_errors

bp = Blueprint("alerts", __name__)
register_page_errors(bp)

LISTS = {
    "active": "Active",
    "pending": "Awaiting approval and drafts",
    "ended": "Ended",
    "exercises": "Exercises",
}
EMPTY = {
    "active": "No alert is live at the moment.",
    "pending": "No alert is being drafted or waiting for approval.",
    "ended": "No alert has been withdrawn, has expired or was rejected before it was sent.",
    "exercises": "No preparedness exercise has been drafted yet.",
}
EDITABLE = ("draft", "awaiting_approval")
APPROVABLE = ("awaiting_approval", "withdrawal_requested")
REVISABLE = ("approved", "rejected")
# The e-mail HTML is shown alone in a sandboxed frame: no scripts, no loads, only styles.
EMAIL_CSP = "default-src 'none'; style-src 'unsafe-inline'"
AUDIENCE_SHOWN = 50
Errors = dict[str, str]
Summary = list[tuple[str, str]]


def _actor() -> Principal:
    principal = current_web_principal()
    assert principal is not None, "web_roles lets only signed-in people through"
    return principal


def _not_found() -> ResponseReturnValue:
    return render_template(
        "error.html", title="Alert not found", message="There is no alert with that number."
    ), 404


@bp.app_template_filter("char_code")
def _char_code(char: str) -> str:
    """A character's code point(s), e.g. U+2019, so a curly quote can be told apart."""
    return " ".join(f"U+{ord(c):04X}" for c in char)


def _required() -> int:
    return container().settings.approvals_required


# Small reads the pages need besides the use cases' views.


def _services() -> list[tuple[int, str]]:
    """Every service by name, for the exercise's participants."""
    with container().db.transaction() as session:
        rows = session.execute(select(Service.id, Service.name).order_by(Service.name, Service.id))
        return [(service_id, name) for service_id, name in rows]


def _user_names(ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    with container().db.transaction() as session:
        rows = session.execute(select(User.id, User.name).where(User.id.in_(sorted(ids))))
        return {user_id: name for user_id, name in rows}


def _service_names(ids: list[int]) -> list[str]:
    if not ids:
        return []
    with container().db.transaction() as session:
        found = session.execute(select(Service.id, Service.name).where(Service.id.in_(ids)))
        names = {service_id: name for service_id, name in found}
    return [names.get(i, f"Service {i} (no longer listed)") for i in ids]


# The lists.


@bp.get("/alerts")
@web_roles(Role.panel, Role.admin)
def index() -> ResponseReturnValue:
    which = request.args.get("show") or "active"
    if which not in LISTS:
        which = "active"
    rows = alert_views.list_alerts(container().db, _actor(), which)
    return render_template(
        "alerts/list.html",
        which=which,
        lists=LISTS,
        empty=EMPTY[which],
        rows=rows,
        required=_required(),
        may_draft=_actor().has_any(Role.panel),
        status_words=words.STATUS_WORDS,
        priority_words=words.PRIORITY_WORDS,
        level_labels=words.LEVEL_LABELS,
    )


# The draft form: new, edit and revise share it.


def _choices(form: AlertForm) -> AlertForm:
    c = container()
    form.set_choices(c.templates(), audience.form_choices(c.db, _actor()), _services())
    return form


def _case(form: AlertForm) -> dict[str, Any] | None:
    """The case the alert is for, as the panel decided it, if the form names one."""
    for subject in ("signal", "report"):
        raw = (form[f"{subject}_id"].data or "").strip()
        if not raw:
            continue
        case: dict[str, Any] = {"subject": subject, "id": raw, "found": False}
        if raw.isdigit():
            case["link"] = url_for(f"panel.{subject}_case", case_id=int(raw))
            try:
                view = panel_cases.case_view(container().db, _actor(), subject, int(raw))
            except (NotFound, ValidationFailed):
                return case
            case.update(found=True, brief=view["case"], decision=view["decision"])
        return case
    return None


def _case_area(case: dict[str, Any] | None) -> str | None:
    if not case or not case["found"]:
        return None
    if case["subject"] == "report":
        area: str | None = case["brief"].get("area")
        return area
    try:
        signal = signals.get_signal(container().db, _actor(), int(case["id"]))
    except NotFound:
        return None
    found: str | None = signal.get("area")
    return found


def _unsaved_preview(
    body: dict[str, Any],
    *,
    alert_id: int,
    version: int,
    purpose: str,
    previous: int | None,
) -> tuple[dict[str, Any] | None, Errors]:
    """The messages the unsaved values would make, the audience they would reach, and
    what is wrong with them (checked as saving would, without saving)."""
    try:
        draft = parse(AlertDraft, body)
    except ValidationFailed as exc:
        return None, exc.fields
    c = container()
    problems = check_dates(draft, datetime.now(UTC))
    if draft.template not in c.templates():
        problems["template"] = "unknown template"
        return None, problems
    result: dict[str, Any] = {}
    try:
        result["messages"] = preview_version(
            c.renderer,
            draft.content(),
            template=draft.template,
            alert_id=alert_id,
            version=version,
            purpose=purpose,
            exercise=draft.exercise,
            public_url=c.settings.public_url,
            previous_version=previous,
        ).as_dict()
    except TemplateFieldMissing as exc:
        problems[exc.field] = str(exc)
    except TemplateError as exc:
        problems["template"] = str(exc)
    query = {
        "areas": draft.areas,
        "service_types": draft.service_types,
        "level": draft.level.value,
        "kind": draft.kind.value,
        "include_neighbours": draft.include_neighbours,
        "service_ids": draft.participants if draft.exercise else [],
    }
    try:
        result["audience"] = audience.preview(c.db, _actor(), query, limit=AUDIENCE_SHOWN)
    except ValidationFailed as exc:
        problems |= exc.fields
    return (result if "messages" in result else None), problems


def _form_page(
    form: AlertForm,
    *,
    mode: str,
    view: dict[str, Any] | None = None,
    errors: Errors | None = None,
    summary: Summary | None = None,
    preview: dict[str, Any] | None = None,
    code: int = 200,
) -> ResponseReturnValue:
    if mode == "new":
        heading = "Draft an alert"
    elif mode == "edit" and view:
        heading = f"Edit alert LDIS-{view['id']}, version {view['version']}"
    else:
        heading = f"New version of alert LDIS-{view['id'] if view else ''}"
    return render_template(
        "alerts/form.html",
        heading=heading,
        form=form,
        mode=mode,
        view=view,
        case=_case(form),
        errors=errors or {},
        summary=summary or [],
        preview=preview,
        zone=words.zone_now(),
        decision_labels={d.value: label for d, label in DECISION_LABELS.items()},
        type_labels=form.type_labels,
        required=_required(),
        status_words=words.STATUS_WORDS,
    ), code


def _handle_form(
    form: AlertForm,
    *,
    mode: str,
    save: Any,
    alert_id: int,
    version: int,
    purpose: str,
    previous: int | None,
    view: dict[str, Any] | None = None,
) -> ResponseReturnValue:
    """A posted draft form: "Preview" shows the messages of the version it would be
    (`previous` is the version an update follows); "Save" calls `save(body)`."""
    body = form.body()
    if request.form.get("action") != "save":
        shown, problems = _unsaved_preview(
            body, alert_id=alert_id, version=version, purpose=purpose, previous=previous
        )
        errors, summary = form.map_errors(problems)
        return _form_page(form, mode=mode, view=view, errors=errors, summary=summary, preview=shown)
    try:
        saved = save(body)
    except NotFound:
        return _not_found()
    except ValidationFailed as exc:
        errors, summary = form.map_errors(exc.fields)
        return _form_page(form, mode=mode, view=view, errors=errors, summary=summary, code=422)
    except (Conflict, Forbidden) as exc:
        errors, summary = form.map_errors(exc.fields if isinstance(exc, Conflict) else {})
        summary.append(("", exc.message))
        return _form_page(form, mode=mode, view=view, errors=errors, summary=summary, code=409)
    flash(_saved_message(mode, saved), "changed")
    return redirect(url_for("alerts.show", alert_id=saved["id"]))


def _saved_message(mode: str, view: dict[str, Any]) -> str:
    if mode == "new":
        return (
            f"Draft saved as alert LDIS-{view['id']}. Read the messages below, then submit "
            "it for approval."
        )
    if mode == "revise":
        kind = "an UPDATE" if view["purpose"] == "update" else "a new draft"
        return f"Version {view['version']} saved as {kind}. Submit it for approval when ready."
    return "Your changes were saved."


def _templates_and_check() -> dict[str, Any]:
    c = container()
    return {
        "templates": c.templates(),
        "check_render": alert_messages.render_check(c.renderer, c.settings.public_url),
    }


@bp.route("/alerts/new", methods=["GET", "POST"])
@web_roles(Role.panel)
def new() -> ResponseReturnValue:
    if request.method == "GET":
        form = _choices(AlertForm(formdata=None))
        for name in ("signal_id", "report_id"):
            raw = request.args.get(name, "").strip()
            if raw.isdigit():
                form[name].data = raw
                break
        area = _case_area(_case(form))
        if area:
            form.areas.data = [area]
        return _form_page(form, mode="new")
    form = _choices(AlertForm())

    def save(body: dict[str, Any]) -> dict[str, Any]:
        return alerts.draft_alert(container().db, _actor(), body, **_templates_and_check())

    return _handle_form(
        form, mode="new", save=save, alert_id=0, version=1, purpose="alert", previous=None
    )


def _load(alert_id: int) -> dict[str, Any] | None:
    try:
        return alert_views.get_alert(container().db, _actor(), alert_id)
    except NotFound:
        return None


def _version(view: dict[str, Any], number: int) -> dict[str, Any]:
    return next(v for v in view["versions"] if v["version"] == number)


@bp.route("/alerts/<int:alert_id>/edit", methods=["GET", "POST"])
@web_roles(Role.panel)
def edit(alert_id: int) -> ResponseReturnValue:
    view = _load(alert_id)
    if view is None:
        return _not_found()
    if view["status"] not in EDITABLE or view["purpose"] == "withdrawal":
        state = words.STATUS_WORDS.get(view["status"], view["status"]).lower()
        flash(f"This alert cannot be edited now: it is {state}.", "error")
        return redirect(url_for("alerts.show", alert_id=alert_id))
    current = _version(view, view["version"])
    if request.method == "GET":
        form = _choices(AlertForm(formdata=None))
        form.fill(current, view)
        return _form_page(form, mode="edit", view=view)
    form = _choices(AlertForm())

    def save(body: dict[str, Any]) -> dict[str, Any]:
        return alerts.edit_alert(container().db, _actor(), alert_id, body, **_templates_and_check())

    return _handle_form(
        form,
        mode="edit",
        save=save,
        alert_id=alert_id,
        version=view["version"],
        purpose=view["purpose"],
        previous=previous_version_of(current["content"], view["version"]),
        view=view,
    )


@bp.route("/alerts/<int:alert_id>/revise", methods=["GET", "POST"])
@web_roles(Role.panel)
def revise(alert_id: int) -> ResponseReturnValue:
    """A new version, filled in from the live one (or the rejected one): an UPDATE of a
    live alert, or a fresh try after a rejection."""
    view = _load(alert_id)
    if view is None:
        return _not_found()
    if view["status"] not in REVISABLE:
        state = words.STATUS_WORDS.get(view["status"], view["status"]).lower()
        flash(f"A new version cannot be started now: the alert is {state}.", "error")
        return redirect(url_for("alerts.show", alert_id=alert_id))
    live = view["live_version"] is not None
    number = max(v["version"] for v in view["versions"]) + 1
    if request.method == "GET":
        form = _choices(AlertForm(formdata=None))
        form.fill(_version(view, view["live_version"] or view["version"]), view)
        return _form_page(form, mode="revise", view=view)
    form = _choices(AlertForm())

    def save(body: dict[str, Any]) -> dict[str, Any]:
        return alerts.revise_alert(
            container().db, _actor(), alert_id, body, **_templates_and_check()
        )

    return _handle_form(
        form,
        mode="revise",
        save=save,
        alert_id=alert_id,
        version=number,
        purpose="update" if live else "alert",
        # An update quotes the live version it replaces (as `revise_alert` stores it).
        previous=view["live_version"] if live else previous_version_of({}, number),
        view=view,
    )


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
    panel = actor.has_any(Role.panel)
    status = view["status"]
    return {
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
    actor = _actor()
    view = _load(alert_id)
    if view is None:
        return _not_found()
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
        return _not_found()
    version = _version(view, preview["version"])
    people = set(view["approver_ids"]) | set(view["author_ids"])
    for v in view["versions"]:
        people |= set(v["author_ids"])
    names = _user_names(people)
    return render_template(
        "alerts/detail.html",
        view=view,
        preview=preview,
        shown=version,
        current=preview["version"] == view["version"],
        latest=_version(view, view["version"]),
        names=names,
        participants=_service_names(view["participants"]) if view["exercise"] else [],
        actions=_actions(view, actor),
        required=_required(),
        errors=errors or {},
        reasons=reasons or {},
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
            _actor(),
            alert_id,
            renderer=c.renderer,
            public_url=c.settings.public_url,
            version=version,
        )
    except (NotFound, ValidationFailed):
        return _not_found()
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
        alerts.submit_alert(container().db, _actor(), alert_id)
    except NotFound:
        return _not_found()
    except (Forbidden, Conflict) as exc:
        flash(exc.message, "error")
        return _back(alert_id)
    needed = _required()
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
    c = container()
    try:
        view = alerts.approve_alert(
            c.db,
            _actor(),
            alert_id,
            required=c.settings.approvals_required,
            queue=c.queue,
            seen_revision=int(raw),
        )
    except NotFound:
        return _not_found()
    except (Forbidden, Conflict) as exc:
        flash(exc.message, "error")
        return _back(alert_id)
    if view["status"] == "withdrawn":
        message = "Approved: the alert is withdrawn and the withdrawal notice is being sent."
    elif view["status"] == "approved":
        total = view["deliveries"]["queued"]
        message = f"Approved: the alert is being sent ({total} messages queued)."
    else:
        message = f"Your approval is recorded: {view['approvals']} of {_required()}."
    flash(message, "changed")
    return _back(alert_id)


@bp.post("/alerts/<int:alert_id>/reject")
@web_roles(Role.panel)
def reject(alert_id: int) -> ResponseReturnValue:
    reason = request.form.get("reject_reason", "")
    try:
        view = alerts.reject_alert(container().db, _actor(), alert_id, reason)
    except NotFound:
        return _not_found()
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
    try:
        alerts.withdraw_alert(container().db, _actor(), alert_id, reason)
    except NotFound:
        return _not_found()
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
    needed = _required()
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
    view = _load(alert_id)
    if view is None:
        return _not_found()
    events = alert_views.history(container().db, _actor(), alert_id)
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
    view = _load(alert_id)
    if view is None:
        return _not_found()
    acks = alert_views.acknowledgements(container().db, _actor(), alert_id)
    return render_template(
        "alerts/exercise.html",
        view=view,
        title="Exercise report" if view["exercise"] else "Timing and acknowledgements",
        timing=_timing(view["timing"]),
        acks=[(a, words.duration_words(a["seconds_after_sending"])) for a in acks],
        participants=_service_names(view["participants"]) if view["exercise"] else [],
        channel_words={"sms": "SMS", "email": "E-mail"},
    )
