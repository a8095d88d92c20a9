"""The panel's signal queue: most severe and longest waiting first; one signal with its
reports, a timeline of daily counts against the expected line, a map of plain points (no
tile server), and forms to change its status or merge it. Thin: the rules are in the use
cases (`ldis.services.signals`)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from markupsafe import Markup
from wtforms import SelectField, StringField, TextAreaField

from ldis.domain.errors import Conflict, NotFound, ValidationFailed
from ldis.domain.principal import Principal
from ldis.domain.roles import Role
from ldis.services import intake, signals
from ldis.store.models.signals import OPEN_STATUSES
from ldis.web import charts
from ldis.web import report_display as display
from ldis.web.access import current_web_principal, web_roles
from ldis.web.extensions import container
from ldis.web.forms import LONDON, WebForm, register_page_errors

bp = Blueprint("signals", __name__)
register_page_errors(bp)

LIVE = "live"
STATUS_TITLES = {
    "open": "Open",
    "monitoring": "Monitoring",
    "alerted": "Alerted",
    "dismissed": "Dismissed",
}
QUEUE_CHOICES = {LIVE: "Open and monitoring", **STATUS_TITLES, "all": "All"}
KIND_TITLES = {
    "red_list": "Red-list substance",
    "mismatch": "Not what it was sold as",
    "presentation": "Same appearance",
    "cluster": "Cluster",
    "public": "Public reports (unverified)",
}
TIMELINE_MARGIN = timedelta(days=3)
MAX_TIMELINE_DAYS = 120
MAX_REPORTS_SHOWN = 200


class QueueForm(WebForm):
    """The queue's filter (GET: no CSRF token needed, nothing changes)."""

    status = SelectField("Status", choices=QUEUE_CHOICES, default=LIVE, validate_choice=False)


class StatusForm(WebForm):
    status = SelectField("New status", choices={}, validate_choice=False)
    reason = TextAreaField("Reason")


class MergeForm(WebForm):
    into = StringField("Merge into signal number")


def _actor() -> Principal:
    principal = current_web_principal()
    assert principal is not None, "web_roles lets only signed-in people through"
    return principal


def _not_found() -> ResponseReturnValue:
    return render_template(
        "error.html", title="Signal not found", message="There is no signal with that number."
    ), 404


def _moment(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def age(value: str | None, now: datetime | None = None) -> str:
    """How long ago, briefly: "just now", "25 min ago", "3 h ago", "4 days ago"."""
    moment = _moment(value)
    if moment is None:
        return ""
    seconds = max(0, int(((now or datetime.now(UTC)) - moment).total_seconds()))
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 48 * 3600:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} days ago"


def kind_title(kind: str) -> str:
    return KIND_TITLES.get(kind, kind.replace("_", " ").capitalize())


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:]


@bp.get("/signals")
@web_roles(Role.panel, Role.admin)
def index() -> ResponseReturnValue:
    form = QueueForm(request.args, meta={"csrf": False})
    chosen = request.args.get("status") or LIVE
    errors: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    try:
        if chosen == LIVE:
            rows = [
                s
                for s in signals.list_signals(container().db, _actor(), None)
                if s["status"] in OPEN_STATUSES
            ]
        else:
            status = None if chosen == "all" else chosen
            rows = signals.list_signals(container().db, _actor(), status)
    except ValidationFailed:
        errors[form.status.id] = "Select a status from the list"
    now = datetime.now(UTC)
    return render_template(
        "signals/list.html",
        form=form,
        errors=errors,
        rows=[(s, age(s["detected_at"], now)) for s in rows],
        kind_title=kind_title,
        status_titles=STATUS_TITLES,
    ), 200


def _reports(actor: Principal, report_ids: list[int]) -> list[dict[str, Any]]:
    found = []
    for report_id in report_ids[:MAX_REPORTS_SHOWN]:
        try:
            found.append(intake.get_report(container().db, actor, report_id))
        except NotFound:
            continue
    return found


def _day(moment: datetime) -> date:
    return moment.astimezone(LONDON).date()


def timeline_days(view: dict[str, Any], reports: list[dict[str, Any]]) -> list[tuple[date, int]]:
    """Daily counts (UK days) of the linked reports over the signal's window ±3 days."""
    moments = [m for m in (_moment(r.get("occurred_at")) for r in reports) if m is not None]
    start = _moment(view["window"]["start"]) or (min(moments) if moments else None)
    end = _moment(view["window"]["end"]) or (max(moments) if moments else None)
    if start is None or end is None:
        return []
    first, last = _day(start - TIMELINE_MARGIN), _day(end + TIMELINE_MARGIN)
    if (last - first).days >= MAX_TIMELINE_DAYS:
        first = last - timedelta(days=MAX_TIMELINE_DAYS - 1)
    counts: dict[date, int] = {}
    for moment in moments:
        counts[_day(moment)] = counts.get(_day(moment), 0) + 1
    span = (last - first).days + 1
    return [
        (first + timedelta(days=i), counts.get(first + timedelta(days=i), 0)) for i in range(span)
    ]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _centre(details: dict[str, Any]) -> tuple[float, float] | None:
    centre = details.get("centre")
    if isinstance(centre, list | tuple) and len(centre) == 2:
        lat, lon = _number(centre[0]), _number(centre[1])
        if lat is not None and lon is not None and -90 <= lat <= 90 and -180 <= lon <= 180:
            return lat, lon
    return None


def map_points(reports: list[dict[str, Any]]) -> list[charts.MapPoint]:
    points = []
    for report in reports:
        location = report.get("location")
        if isinstance(location, dict):
            lat, lon = _number(location.get("lat")), _number(location.get("lon"))
            if lat is not None and lon is not None:
                points.append(charts.MapPoint(lat, lon, str(report.get("reference", ""))))
    return points


def _detail(
    signal_id: int,
    *,
    status_form: StatusForm | None = None,
    merge_form: MergeForm | None = None,
    errors: dict[str, str] | None = None,
    conflict: str | None = None,
    code: int = 200,
) -> ResponseReturnValue:
    actor = _actor()
    try:
        view = signals.get_signal(container().db, actor, signal_id)
    except NotFound:
        return _not_found()
    reports = _reports(actor, view["report_ids"])
    details = view.get("details") or {}
    expected = _number(details.get("expected"))
    days = timeline_days(view, reports)
    timeline: Markup | None = None
    if days:
        timeline = charts.timeline_svg(
            days,
            expected=expected,
            title=f"Reports per day for signal {view['id']}"
            + (f", against {expected:g} expected a day" if expected is not None else ""),
        )
    points = map_points(reports)
    centre, radius = _centre(details), _number(details.get("radius_m"))
    picture: Markup | None = None
    if points:
        picture = charts.map_svg(
            points,
            centre=centre,
            radius_m=radius if centre else None,
            title=f"Map of the {len(points)} located reports of signal {view['id']}",
        )
    status_form = status_form or StatusForm(formdata=None)
    status_form.status.choices = {
        s: STATUS_TITLES[s] for s in signals.STATUSES if s in signals.MOVES[view["status"]]
    }
    merge_form = merge_form or MergeForm(formdata=None)
    return render_template(
        "signals/detail.html",
        view=view,
        reports=[(r, display.when(r)) for r in reports],
        more_reports=max(0, len(view["report_ids"]) - MAX_REPORTS_SHOWN),
        age=age(view["detected_at"]),
        timeline=timeline,
        days=days,
        expected=expected,
        picture=picture,
        points=points,
        centre=centre,
        radius=radius if centre else None,
        status_form=status_form,
        merge_form=merge_form,
        errors=errors or {},
        conflict=conflict,
        may_act=actor.has_any(Role.panel),
        kind_title=kind_title,
        report_kind_title=display.kind_title,
        status_titles=STATUS_TITLES,
    ), code


@bp.get("/signals/<int:signal_id>")
@web_roles(Role.panel, Role.admin)
def show(signal_id: int) -> ResponseReturnValue:
    return _detail(signal_id)


@bp.post("/signals/<int:signal_id>/status")
@web_roles(Role.panel)
def change_status(signal_id: int) -> ResponseReturnValue:
    form = StatusForm()
    status = form.status.data or ""
    try:
        signals.change_status(container().db, _actor(), signal_id, status, form.reason.data)
    except NotFound:
        return _not_found()
    except ValidationFailed as exc:
        errors = {
            ("status" if name == "status" else "reason"): _sentence(message)
            for name, message in exc.fields.items()
        }
        return _detail(signal_id, status_form=form, errors=errors, code=422)
    except Conflict as exc:
        return _detail(signal_id, status_form=form, conflict=str(exc), code=409)
    flash(f"The signal is now {STATUS_TITLES.get(status, status).lower()}.", "changed")
    return redirect(url_for("signals.show", signal_id=signal_id))


@bp.post("/signals/<int:signal_id>/merge")
@web_roles(Role.panel)
def merge(signal_id: int) -> ResponseReturnValue:
    form = MergeForm()
    raw = (form.into.data or "").strip().lstrip("#")
    if not raw.isdigit():
        errors = {"into": "Enter the number of the signal to merge into, like 12"}
        return _detail(signal_id, merge_form=form, errors=errors, code=422)
    into = int(raw)
    try:
        signals.merge(container().db, _actor(), signal_id, into)
    except NotFound:
        if _exists(signal_id):
            errors = {"into": f"There is no signal {into}"}
            return _detail(signal_id, merge_form=form, errors=errors, code=422)
        return _not_found()
    except ValidationFailed as exc:
        errors = {"into": _sentence(next(iter(exc.fields.values()), "check the number"))}
        return _detail(signal_id, merge_form=form, errors=errors, code=422)
    except Conflict as exc:
        return _detail(signal_id, merge_form=form, conflict=str(exc), code=409)
    flash(f"Signal {signal_id} was merged into this one.", "changed")
    return redirect(url_for("signals.show", signal_id=into))


def _exists(signal_id: int) -> bool:
    try:
        signals.get_signal(container().db, _actor(), signal_id)
    except NotFound:
        return False
    return True
