"""The panel's alert pages, part one: the blueprint and what the pages share, the lists,
and the draft form with a preview of every channel (new, edit and revise share it). One
alert's page, its actions, history and report are in `ldis.web.alert_detail`, on the same
blueprint. Thin: every rule is in the use cases (`ldis.services.alerts`); the form and the
words are in `ldis.web.alert_forms`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

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
REVISABLE = ("approved", "rejected")
AUDIENCE_SHOWN = 50
Errors = dict[str, str]
Summary = list[tuple[str, str]]


@bp.app_template_filter("char_code")
def _char_code(char: str) -> str:
    """A character's code point(s), e.g. U+2019, so a curly quote can be told apart."""
    return " ".join(f"U+{ord(c):04X}" for c in char)


# What both modules' pages use.


def current_actor() -> Principal:
    principal = current_web_principal()
    assert principal is not None, "web_roles lets only signed-in people through"
    return principal


def not_found() -> ResponseReturnValue:
    return render_template(
        "error.html", title="Alert not found", message="There is no alert with that number."
    ), 404


def approvals_required() -> int:
    return container().settings.approvals_required


def load_alert(alert_id: int) -> dict[str, Any] | None:
    try:
        return alert_views.get_alert(container().db, current_actor(), alert_id)
    except NotFound:
        return None


def version_of(view: dict[str, Any], number: int) -> dict[str, Any]:
    return next(v for v in view["versions"] if v["version"] == number)


# The lists.


@bp.get("/alerts")
@web_roles(Role.panel, Role.admin)
def index() -> ResponseReturnValue:
    which = request.args.get("show") or "active"
    if which not in LISTS:
        which = "active"
    rows = alert_views.list_alerts(container().db, current_actor(), which)
    return render_template(
        "alerts/list.html",
        which=which,
        lists=LISTS,
        empty=EMPTY[which],
        rows=rows,
        required=approvals_required(),
        may_draft=current_actor().has_any(Role.panel),
        status_words=words.STATUS_WORDS,
        priority_words=words.PRIORITY_WORDS,
        level_labels=words.LEVEL_LABELS,
    )


# The draft form: new, edit and revise share it.


def _choices(form: AlertForm) -> AlertForm:
    c = container()
    actor = current_actor()
    form.set_choices(
        c.templates(),
        audience.form_choices(c.db, actor),
        alert_views.participant_choices(c.db, actor),
    )
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
                view = panel_cases.case_view(container().db, current_actor(), subject, int(raw))
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
        signal = signals.get_signal(container().db, current_actor(), int(case["id"]))
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
        result["audience"] = audience.preview(c.db, current_actor(), query, limit=AUDIENCE_SHOWN)
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
        required=approvals_required(),
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
        return not_found()
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
        return alerts.draft_alert(container().db, current_actor(), body, **_templates_and_check())

    return _handle_form(
        form, mode="new", save=save, alert_id=0, version=1, purpose="alert", previous=None
    )


@bp.route("/alerts/<int:alert_id>/edit", methods=["GET", "POST"])
@web_roles(Role.panel)
def edit(alert_id: int) -> ResponseReturnValue:
    view = load_alert(alert_id)
    if view is None:
        return not_found()
    if view["status"] not in EDITABLE or view["purpose"] == "withdrawal":
        state = words.STATUS_WORDS.get(view["status"], view["status"]).lower()
        flash(f"This alert cannot be edited now: it is {state}.", "error")
        return redirect(url_for("alerts.show", alert_id=alert_id))
    current = version_of(view, view["version"])
    if request.method == "GET":
        form = _choices(AlertForm(formdata=None))
        form.fill(current, view)
        return _form_page(form, mode="edit", view=view)
    form = _choices(AlertForm())

    def save(body: dict[str, Any]) -> dict[str, Any]:
        return alerts.edit_alert(
            container().db, current_actor(), alert_id, body, **_templates_and_check()
        )

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
    view = load_alert(alert_id)
    if view is None:
        return not_found()
    if view["status"] not in REVISABLE:
        state = words.STATUS_WORDS.get(view["status"], view["status"]).lower()
        flash(f"A new version cannot be started now: the alert is {state}.", "error")
        return redirect(url_for("alerts.show", alert_id=alert_id))
    live = view["live_version"] is not None
    number = max(v["version"] for v in view["versions"]) + 1
    if request.method == "GET":
        form = _choices(AlertForm(formdata=None))
        form.fill(version_of(view, view["live_version"] or view["version"]), view)
        return _form_page(form, mode="revise", view=view)
    form = _choices(AlertForm())

    def save(body: dict[str, Any]) -> dict[str, Any]:
        return alerts.revise_alert(
            container().db, current_actor(), alert_id, body, **_templates_and_check()
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
