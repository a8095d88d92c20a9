"""Service pages: the list (admins all, with filters; managers theirs), a new service, one
service's details, managers and contacts, the yearly "still right" confirmation, and the
managed list of service types. Contact pages are in `contact_pages`, on this blueprint.
Thin: every rule is in the use cases."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from ldis.domain.errors import Conflict, NotFound, ValidationFailed
from ldis.domain.principal import Principal
from ldis.domain.recipients import ServiceInput, ServiceUpdate
from ldis.domain.roles import Role
from ldis.domain.validation import parse
from ldis.services import contacts, permissions, recipients, report_pages, service_types
from ldis.services.verification import Sending
from ldis.web.access import current_web_principal, web_roles
from ldis.web.extensions import container
from ldis.web.forms import friendly, register_page_errors, uk_time
from ldis.web.service_forms import (
    CHANNEL_LABELS,
    KIND_LABELS,
    LEVEL_LABELS,
    ROLE_LABELS,
    FilterForm,
    ManagerForm,
    MappedForm,
    ServiceForm,
    TypeForm,
)

bp = Blueprint("services", __name__)
register_page_errors(bp)
MANAGERS = permissions.MANAGERS
Errors = dict[str, str]
Summary = list[tuple[str, str]]


@bp.app_template_filter("service_time")
def _service_time(value: str | None) -> str:
    return uk_time(value)


def actor() -> Principal:
    principal = current_web_principal()
    assert principal is not None, "web_roles lets only signed-in people through"
    return principal


def sending() -> Sending:
    c = container()
    return Sending(c.settings.secret(), c.settings.public_url, c.queue)


def not_found(what: str = "service") -> ResponseReturnValue:
    return render_template(
        "error.html",
        title=f"{what.capitalize()} not found",
        message=f"There is no {what} at this address, or it is not one you manage.",
    ), 404


def problems(form: MappedForm, exc: ValidationFailed | Conflict) -> tuple[Errors, Summary]:
    """Errors beside the fields they name; a conflict naming no field goes in the summary."""
    if exc.fields:
        return form.map_errors(exc.fields)
    return {}, [("", exc.message)]


def page_context() -> dict[str, Any]:
    return {
        "level_labels": LEVEL_LABELS,
        "kind_labels": KIND_LABELS,
        "channel_labels": CHANNEL_LABELS,
        "role_labels": ROLE_LABELS,
    }


def _labels(types: list[dict[str, Any]]) -> dict[str, str]:
    return {t["code"]: t["label"] for t in types}


@bp.get("/services")
@web_roles(*MANAGERS)
def index() -> ResponseReturnValue:
    db, who = container().db, actor()
    types = service_types.list_types(db, who)
    form = FilterForm(request.args, meta={"csrf": False})
    form.type.choices = {"": "Any type", **_labels(types)}
    form.area.choices = {"": "Any area", **dict(report_pages.area_choices(db))}
    errors: Errors = {}
    rows: list[dict[str, Any]] = []
    try:
        rows = recipients.list_services(
            db, who, area=request.args.get("area") or None, type=request.args.get("type") or None
        )
    except ValidationFailed as exc:
        for name in exc.fields:
            if name in form:
                label = str(form[name].label.text).lower()
                errors[form[name].id] = (
                    f"Choose {'an' if label[0] in 'aeiou' else 'a'} {label} from the list"
                )
    return render_template(
        "services/list.html",
        form=form,
        errors=errors,
        rows=rows,
        type_labels=_labels(types),
        is_admin=who.has_any(Role.admin),
        filtered=bool(request.args.get("area") or request.args.get("type")),
    )


def _service_form(form: ServiceForm, current_type: str = "") -> ServiceForm:
    db = container().db
    form.set_choices(
        service_types.list_types(db, actor()), report_pages.area_choices(db), current_type
    )
    return form


def _check(
    form: ServiceForm, body: dict[str, Any], model: type[ServiceInput | ServiceUpdate]
) -> None:
    """Unticking every kind would read as "every kind": refuse it, with the other errors."""
    missing = form.kinds_missing()
    if not missing:
        return
    try:
        parse(model, body)
    except ValidationFailed as exc:
        raise ValidationFailed({**exc.fields, **missing}) from None
    raise ValidationFailed(missing)


@bp.route("/services/new", methods=["GET", "POST"])
@web_roles(Role.admin)
def new() -> ResponseReturnValue:
    form = _service_form(ServiceForm())
    errors: Errors = {}
    summary: Summary = []
    if request.method == "GET":
        form.alert_levels.data = list(LEVEL_LABELS)
        form.alert_kinds.data = list(KIND_LABELS)
    else:
        body = form.body(with_ref=True)
        try:
            _check(form, body, ServiceInput)
            view = recipients.create_service(container().db, actor(), body)
        except (ValidationFailed, Conflict) as exc:
            errors, summary = problems(form, exc)
        else:
            flash(f"{view['name']} was added. Now add its contacts.", "changed")
            return redirect(url_for("services.show", service_id=view["id"]))
    return render_template(
        "services/new.html", form=form, errors=errors, summary=summary, **page_context()
    ), (422 if summary else 200)


def detail(
    service_id: int,
    *,
    form: ServiceForm | None = None,
    manager_form: ManagerForm | None = None,
    errors: Errors | None = None,
    summary: Summary | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    db, who = container().db, actor()
    try:
        view = recipients.get_service(db, who, service_id)
        people = contacts.list_contacts(db, who, service_id)
    except NotFound:
        return not_found()
    if form is None:
        form = ServiceForm(formdata=None)
        form.fill(view)
    types = service_types.list_types(db, who)
    return render_template(
        "services/detail.html",
        view=view,
        contacts=people,
        form=_service_form(form, view["type"]),
        manager_form=manager_form or ManagerForm(formdata=None),
        errors=errors or {},
        summary=summary or [],
        type_labels=_labels(types),
        is_admin=who.has_any(Role.admin),
        **page_context(),
    ), status


@bp.get("/services/<int:service_id>")
@web_roles(*MANAGERS)
def show(service_id: int) -> ResponseReturnValue:
    return detail(service_id)


@bp.post("/services/<int:service_id>")
@web_roles(*MANAGERS)
def update(service_id: int) -> ResponseReturnValue:
    form = ServiceForm()
    who = actor()
    body = form.body(with_ref=who.has_any(Role.admin))
    try:
        _check(form, body, ServiceUpdate)
        recipients.update_service(container().db, who, service_id, body)
    except NotFound:
        return not_found()
    except (ValidationFailed, Conflict) as exc:
        errors, summary = problems(form, exc)
        return detail(service_id, form=form, errors=errors, summary=summary, status=422)
    flash("The service's details were saved.", "changed")
    return redirect(url_for("services.show", service_id=service_id))


@bp.post("/services/<int:service_id>/confirm")
@web_roles(*MANAGERS)
def confirm(service_id: int) -> ResponseReturnValue:
    try:
        recipients.confirm_service(container().db, actor(), service_id)
    except NotFound:
        return not_found()
    flash("Thank you: the details are recorded as checked and current today.", "changed")
    return redirect(url_for("services.show", service_id=service_id))


@bp.post("/services/<int:service_id>/managers")
@web_roles(Role.admin)
def add_manager(service_id: int) -> ResponseReturnValue:
    form = ManagerForm()
    try:
        permissions.add_manager(
            container().db, actor(), service_id, {"email": (form.email.data or "").strip()}
        )
    except NotFound:
        return not_found()
    except (ValidationFailed, Conflict) as exc:
        errors, summary = problems(form, exc)
        return detail(service_id, manager_form=form, errors=errors, summary=summary, status=422)
    flash(f"{form.email.data} now manages this service.", "changed")
    return redirect(url_for("services.show", service_id=service_id, _anchor="managers"))


@bp.post("/services/<int:service_id>/managers/<int:user_id>/remove")
@web_roles(Role.admin)
def remove_manager(service_id: int, user_id: int) -> ResponseReturnValue:
    try:
        permissions.remove_manager(container().db, actor(), service_id, user_id)
    except NotFound:
        return not_found("manager")
    flash("The manager was removed from this service.", "changed")
    return redirect(url_for("services.show", service_id=service_id, _anchor="managers"))


def _types_page(
    form: TypeForm | None = None,
    errors: Errors | None = None,
    summary: Summary | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    types = service_types.list_types(container().db, actor())
    return render_template(
        "services/types.html",
        types=types,
        form=form or TypeForm(formdata=None),
        errors=errors or {},
        summary=summary or [],
    ), status


@bp.get("/service-types")
@web_roles(Role.admin)
def types() -> ResponseReturnValue:
    return _types_page()


@bp.post("/service-types")
@web_roles(Role.admin)
def add_type() -> ResponseReturnValue:
    form = TypeForm()
    body = {"code": form.code.data or "", "label": form.label.data or ""}
    try:
        created = service_types.create_type(container().db, actor(), body)
    except (ValidationFailed, Conflict) as exc:
        errors, summary = problems(form, exc)
        return _types_page(form, errors, summary, 422)
    flash(f"{created['label']} was added to the list.", "changed")
    return redirect(url_for("services.types"))


@bp.post("/service-types/<code>")
@web_roles(Role.admin)
def change_type(code: str) -> ResponseReturnValue:
    body: dict[str, Any] = {}
    if "label" in request.form:
        body["label"] = request.form.get("label", "")
    if request.form.get("active") in ("true", "false"):
        body["active"] = request.form["active"] == "true"
    try:
        changed = service_types.update_type(container().db, actor(), code, body)
    except NotFound:
        return not_found("service type")
    except ValidationFailed as exc:
        field_id = f"label-{code}"
        errors = {field_id: friendly("Name shown", next(iter(exc.fields.values())))}
        return _types_page(errors=errors, summary=[(field_id, errors[field_id])], status=422)
    state = "" if changed["active"] else " It is retired: it cannot be chosen for new services."
    flash(f"{changed['label']} was saved.{state}", "changed")
    return redirect(url_for("services.types"))


# The contact pages share this blueprint (and its error pages); importing registers them.
from ldis.web import contact_pages  # noqa: E402,F401
