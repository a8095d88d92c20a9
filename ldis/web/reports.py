"""Report pages: file a report of any kind, browse the list with filters, read one report
with its updates, photo and signals, and add an update. Thin: every rule is in the use cases."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import FileStorage
from wtforms import TextAreaField

from ldis.domain.errors import NotFound, ValidationFailed
from ldis.domain.photo import Photo
from ldis.domain.principal import Principal
from ldis.domain.public_reports import PUBLIC_KIND
from ldis.domain.reports import REPORT_KINDS
from ldis.domain.roles import Role
from ldis.services import intake, photos, public_reports, report_pages, report_queries
from ldis.web import report_display as display
from ldis.web.access import current_web_principal, web_roles
from ldis.web.extensions import container
from ldis.web.forms import WebForm, friendly, register_page_errors, uk_time
from ldis.web.ratelimits import rate_limited
from ldis.web.report_forms import FORMS, FilterForm, ReportForm

bp = Blueprint("reports", __name__)
register_page_errors(bp)
FILERS = intake.FILERS
# Form pages with an upload may receive more than LDIS_MAX_BODY_BYTES, so that a photo that
# is too big gets a message beside the field (and keeps what was typed) instead of a 413.
MAX_UPLOAD_BODY_ATTR = "ldis_max_body"
UPLOAD_BODY_BYTES = 16 * 1024 * 1024
PAGING = ("offset", "limit")


bp.add_app_template_filter(uk_time, "uk_time")


class UpdateForm(WebForm):
    text = TextAreaField("What have you learned since?")


def _actor() -> Principal:
    principal = current_web_principal()
    assert principal is not None, "web_roles lets only signed-in people through"
    return principal


def _not_found() -> ResponseReturnValue:
    return render_template("reports/not_found.html"), 404


@bp.get("/")
@web_roles(*FILERS, Role.service_manager)
def home() -> ResponseReturnValue:
    if not _actor().has_any(*FILERS):  # a service's manager only: their services
        return redirect(url_for("services.index"))
    return redirect(url_for("reports.index"))


@bp.get("/reports/new")
@web_roles(*FILERS)
def choose() -> ResponseReturnValue:
    kinds = [(k, display.kind_title(k), display.KIND_HINTS.get(k, "")) for k in FORMS]
    return render_template("reports/choose.html", kinds=kinds)


def _read_photo(form: ReportForm) -> tuple[Photo | None, dict[str, str]]:
    storage = getattr(getattr(form, "photo", None), "data", None)
    if not isinstance(storage, FileStorage) or not storage.filename:
        return None, {}
    try:
        return photos.process(storage.read()), {}
    except ValidationFailed as exc:
        return None, exc.fields


def _file(form: ReportForm, actor: Principal) -> tuple[dict[str, Any], bool]:
    """File the report (and its photo); ValidationFailed names every bad field it can."""
    body = form.body()
    photo, problems = _read_photo(form)
    if problems:
        try:
            intake.validate(body)
        except ValidationFailed as exc:
            problems = {**exc.fields, **problems}
        raise ValidationFailed(problems)
    db = container().db
    return intake.file_report(db, actor, body, photo, queue=container().queue)


@bp.route("/reports/new/<kind>", methods=["GET", "POST"])
@rate_limited("intake")
@web_roles(*FILERS)
def new(kind: str) -> ResponseReturnValue:
    form_class = FORMS.get(kind)
    if form_class is None or kind not in REPORT_KINDS:
        return _not_found()
    form = form_class()
    form.set_areas(
        report_pages.area_choices(container().db),
        blank="Not known (give a location)" if kind == "callout" else "Choose an area",
    )
    errors: dict[str, str] = {}
    summary: list[tuple[str, str]] = []
    if request.method == "POST":
        actor = _actor()
        try:
            view, created = _file(form, actor)
        except ValidationFailed as exc:
            errors, summary = form.map_errors(exc.fields)
        else:
            if created:
                flash(view["reference"], "filed")
                return redirect(url_for("reports.show", report_id=view["id"]))
            try:
                intake.get_report(container().db, actor, view["id"])
            except NotFound:
                return render_template("reports/duplicate.html", view=view), 200
            flash(view["reference"], "duplicate")
            return redirect(url_for("reports.show", report_id=view["id"]))
    status = 422 if errors or summary else 200
    return render_template(
        f"reports/new_{kind}.html",
        form=form,
        errors=errors,
        summary=summary,
        title=display.kind_title(kind),
        photo_sent=bool(getattr(getattr(form, "photo", None), "data", None)),
    ), status


setattr(new, MAX_UPLOAD_BODY_ATTR, UPLOAD_BODY_BYTES)


@bp.get("/reports")
@web_roles(*FILERS)
def index() -> ResponseReturnValue:
    db = container().db
    form = FilterForm(request.args, meta={"csrf": False})
    kinds = [*REPORT_KINDS, PUBLIC_KIND]
    form.kind.choices = {"": "Any kind", **{k: display.kind_title(k) for k in kinds}}
    form.area.choices = {"": "Any area", **dict(report_pages.area_choices(db))}
    args = {k: v for k, v in request.args.items() if k in form._fields or k in PAGING}
    errors: dict[str, str] = {}
    page: dict[str, Any] = {"reports": [], "more": False, "offset": 0, "limit": 50}
    try:
        filters = report_queries.parse_filter(args)
        page = report_queries.list_reports(db, _actor(), filters)
    except ValidationFailed as exc:
        for path, message in exc.fields.items():
            name = path.split(".")[0]  # "since.date": a date or a date and time, both wrong
            field = form._fields.get(name)
            text = friendly(str(field.label.text) if field else name.capitalize(), message)
            errors.setdefault(field.id if field else "", text)
    keep: dict[str, Any] = {k: v for k, v in args.items() if v and k != "offset"}
    after, before = page["offset"] + page["limit"], max(0, page["offset"] - page["limit"])
    return render_template(
        "reports/list.html",
        form=form,
        errors=errors,
        page=page,
        rows=[(r, display.summary(r), display.when(r)) for r in page["reports"]],
        next_url=url_for("reports.index", **keep, offset=after) if page["more"] else None,
        previous_url=url_for("reports.index", **keep, offset=before) if page["offset"] else None,
        kind_title=display.kind_title,
    )


def _detail(
    report_id: int, update_form: UpdateForm, update_error: str | None = None
) -> ResponseReturnValue:
    db, actor = container().db, _actor()
    try:
        view = intake.get_report(db, actor, report_id)
    except NotFound:
        return _not_found()
    extras = report_pages.detail_extras(db, actor, report_id)
    return render_template(
        "reports/detail.html",
        view=view,
        title=display.kind_title(view["kind"]),
        rows=display.rows(view),
        substances=display.substances(view),
        photo=extras["photo"],
        may_update=extras["may_update"],
        update_form=update_form,
        update_error=update_error,
    ), (422 if update_error else 200)


@bp.get("/reports/<int:report_id>")
@web_roles(*FILERS)
def show(report_id: int) -> ResponseReturnValue:
    return _detail(report_id, UpdateForm(formdata=None))


@bp.post("/reports/<int:report_id>/updates")
@web_roles(*FILERS)
def add_update(report_id: int) -> ResponseReturnValue:
    form = UpdateForm()
    try:
        intake.add_update(container().db, _actor(), report_id, {"text": form.text.data or ""})
    except NotFound:
        return _not_found()
    except ValidationFailed as exc:
        message = exc.fields.get("text") or next(iter(exc.fields.values()), "")
        if message.startswith("must"):
            message = "The update " + message
        return _detail(report_id, form, message[:1].upper() + message[1:])
    flash("Your update has been added.", "updated")
    return redirect(url_for("reports.show", report_id=report_id, _anchor="updates"))


@bp.post("/reports/<int:report_id>/verification")
@web_roles(Role.panel)
def verification(report_id: int) -> ResponseReturnValue:
    """The panel marks a public report verified, or not (docs/public-reports.md)."""
    verified = request.form.get("verified") == "true"
    try:
        public_reports.set_verified(container().db, _actor(), report_id, {"verified": verified})
    except NotFound:
        return _not_found()
    flash(
        "Marked as verified." if verified else "Marked as not verified.",
        "updated",
    )
    return redirect(url_for("reports.show", report_id=report_id))


@bp.get("/reports/<int:report_id>/photo")
@web_roles(*FILERS)
def photo(report_id: int) -> ResponseReturnValue:
    try:
        found = photos.load(container().db, _actor(), report_id)
    except NotFound:
        return _not_found()
    response = Response(found.data, content_type=found.content_type)
    response.headers["Content-Disposition"] = "inline"
    response.headers["Cache-Control"] = "private, no-cache"
    return response
