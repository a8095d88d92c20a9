"""Area pages: the hierarchy as a tree with a point lookup, a form for a new area, and one
area's page (edit, boundary upload drawn as SVG, neighbours, sub-areas). Admins change them;
the panel may look. Thin: every rule is in `ldis.services.areas`."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf.file import FileField
from markupsafe import Markup
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import RequestEntityTooLarge
from wtforms import SelectField, StringField

from ldis.domain.errors import Conflict, NotFound, ValidationFailed
from ldis.domain.principal import Principal
from ldis.domain.roles import Role
from ldis.services import areas
from ldis.web.access import current_web_principal, web_roles
from ldis.web.area_drawing import boundary_svg
from ldis.web.extensions import container
from ldis.web.forms import WebForm, friendly, register_page_errors
from ldis.web.reports import MAX_UPLOAD_BODY_ATTR

bp = Blueprint("areas", __name__)
register_page_errors(bp)

VIEWERS = (Role.panel, Role.admin)
BOUNDARY_FILE_BYTES = 5 * 1024 * 1024
# The multipart wrapper around the file: a little more than the file may be.
UPLOAD_BODY_BYTES = BOUNDARY_FILE_BYTES + 256 * 1024
FILE_TYPES = (".geojson", ".json")
TOP_LEVEL = "None: a top-level area"


class LocateForm(WebForm):
    """A GET form: nothing changes, so no CSRF token."""

    lat = StringField("Latitude")
    lon = StringField("Longitude")


class AreaForm(WebForm):
    code = StringField("Code")
    name = StringField("Name")
    parent = SelectField("Part of", choices={}, validate_choice=False)


class EditForm(WebForm):
    name = StringField("Name")
    parent = SelectField("Part of", choices={}, validate_choice=False)


class BoundaryForm(WebForm):
    boundary = FileField("Boundary file")


class NeighbourForm(WebForm):
    neighbour = SelectField("Area to link", choices={}, validate_choice=False)


class ActionForm(WebForm):
    """A button that changes something: the CSRF token alone."""


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(_exc: RequestEntityTooLarge) -> ResponseReturnValue:
    return render_template(
        "error.html",
        title="The file is too large",
        message="Nothing was saved. A boundary file must be 5 MB or smaller: simplify the "
        "boundary (QGIS: Vector > Geometry Tools > Simplify) and upload it again.",
    ), 413


def _actor() -> Principal:
    principal = current_web_principal()
    assert principal is not None, "web_roles lets only signed-in people through"
    return principal


def _not_found() -> ResponseReturnValue:
    return render_template(
        "error.html", title="Area not found", message="There is no area with that code."
    ), 404


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:]


LABELS = {
    "code": "Code",
    "name": "Name",
    "parent": "Part of",
    "lat": "Latitude",
    "lon": "Longitude",
}


def _errors(fields: dict[str, str], known: tuple[str, ...]) -> dict[str, str]:
    """The use case's {"parent.0": "..."} as {"parent": "..."} beside the form's fields, in
    the pages' wording ("Enter code" rather than pydantic's)."""
    errors: dict[str, str] = {}
    for path, message in fields.items():
        head = path.split(".", 1)[0]
        name = head if head in known else known[0]
        if message.startswith("String should match pattern"):
            text = f"{LABELS.get(name, name)} must use only letters, numbers, dots, dashes or underscores"
        elif message.startswith(("String should", "Field required", "Input should")):
            text = friendly(LABELS.get(name, name), message)
        else:
            text = _sentence(message)
        errors.setdefault(name, text)
    return errors


def _tree(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The flat list (tree order, with depths) as nested nodes for the page's nested lists."""
    roots: list[dict[str, Any]] = []
    path: list[dict[str, Any]] = []
    for row in rows:
        node = {"area": row, "children": []}
        del path[row["depth"] :]
        (path[-1]["children"] if path else roots).append(node)
        path.append(node)
    return roots


def _parent_choices(rows: list[dict[str, Any]], exclude: str | None = None) -> dict[str, str]:
    """Areas an area may sit under, indented as in the tree; not itself or anything below it."""
    choices = {"": TOP_LEVEL}
    skip_below: int | None = None
    for row in rows:
        if skip_below is not None and row["depth"] > skip_below:
            continue
        skip_below = None
        if row["code"] == exclude:
            skip_below = row["depth"]
            continue
        choices[row["code"]] = "\u2003" * row["depth"] + f"{row['name']} ({row['code']})"
    return choices


@bp.get("/areas")
@web_roles(*VIEWERS)
def index() -> ResponseReturnValue:
    actor = _actor()
    rows = areas.list_areas(container().db, actor)
    form = LocateForm(request.args, meta={"csrf": False})
    asked = "lat" in request.args or "lon" in request.args
    found: list[dict[str, Any]] | None = None
    errors: dict[str, str] = {}
    if asked:
        try:
            found = areas.locate_view(
                container().db, actor, request.args.get("lat"), request.args.get("lon")
            )
        except ValidationFailed as exc:
            errors = _errors(exc.fields, ("lat", "lon"))
    return render_template(
        "areas/list.html",
        tree=_tree(rows),
        count=len(rows),
        form=form,
        found=found,
        errors=errors,
        may_change=actor.has_any(Role.admin),
    ), 422 if errors else 200


@bp.route("/areas/new", methods=["GET", "POST"])
@web_roles(Role.admin)
def new() -> ResponseReturnValue:
    actor = _actor()
    rows = areas.list_areas(container().db, actor)
    form = AreaForm()
    form.parent.choices = _parent_choices(rows)
    if not form.is_submitted() and request.args.get("parent"):
        form.parent.data = request.args["parent"]
    errors: dict[str, str] = {}
    if form.is_submitted():
        body = {
            "code": form.code.data or "",
            "name": form.name.data or "",
            **({"parent": form.parent.data} if form.parent.data else {}),
        }
        try:
            view = areas.create_area(container().db, actor, body)
        except ValidationFailed as exc:
            errors = _errors(exc.fields, ("code", "name", "parent"))
        except Conflict:
            errors = {"code": f"There is already an area {body['code'].strip().upper()}"}
        else:
            flash(f"Area {view['code']} added.", "changed")
            return redirect(url_for("areas.show", code=view["code"]))
    return render_template("areas/new.html", form=form, errors=errors), 422 if errors else 200


def _detail(
    code: str,
    *,
    edit_form: EditForm | None = None,
    neighbour_form: NeighbourForm | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    actor = _actor()
    db = container().db
    try:
        view = areas.get_area(db, actor, code)
    except NotFound:
        return _not_found()
    rows = areas.list_areas(db, actor)
    names = {row["code"]: row["name"] for row in rows}
    picture: Markup | None = None
    if view["has_boundary"]:
        feature = areas.get_boundary(db, actor, view["code"])
        picture = boundary_svg(
            feature["geometry"], title=f"Outline of the boundary of {view['name']}"
        )
    edit_form = edit_form or EditForm(
        formdata=None, data={"name": view["name"], "parent": view["parent"] or ""}
    )
    edit_form.parent.choices = _parent_choices(rows, exclude=view["code"])
    neighbour_form = neighbour_form or NeighbourForm(formdata=None)
    neighbour_form.neighbour.choices = {
        "": "Choose an area",
        **{
            row["code"]: f"{row['name']} ({row['code']})"
            for row in sorted(rows, key=lambda r: (r["name"].lower(), r["code"]))
            if row["code"] != view["code"] and row["code"] not in view["neighbours"]
        },
    }
    return render_template(
        "areas/detail.html",
        view=view,
        names=names,
        picture=picture,
        edit_form=edit_form,
        boundary_form=BoundaryForm(formdata=None),
        neighbour_form=neighbour_form,
        action_form=ActionForm(formdata=None),
        errors=errors or {},
        may_change=actor.has_any(Role.admin),
        max_mb=BOUNDARY_FILE_BYTES // (1024 * 1024),
    ), status


@bp.get("/areas/<code>")
@web_roles(*VIEWERS)
def show(code: str) -> ResponseReturnValue:
    return _detail(code)


@bp.post("/areas/<code>")
@web_roles(Role.admin)
def edit(code: str) -> ResponseReturnValue:
    form = EditForm()
    body = {"name": form.name.data or "", "parent": form.parent.data or None}
    try:
        view = areas.update_area(container().db, _actor(), code, body)
    except NotFound:
        return _not_found()
    except ValidationFailed as exc:
        errors = _errors(exc.fields, ("name", "parent"))
        return _detail(code, edit_form=form, errors=errors, status=422)
    flash("The area's details were saved.", "changed")
    return redirect(url_for("areas.show", code=view["code"]))


def _read_upload(storage: Any) -> Any:
    """The uploaded file as parsed JSON; ValidationFailed {"boundary": why not}."""
    if not isinstance(storage, FileStorage) or not storage.filename:
        raise ValidationFailed({"boundary": "choose a .geojson or .json file"})
    if not storage.filename.lower().endswith(FILE_TYPES):
        raise ValidationFailed({"boundary": "the file must be a .geojson or .json file"})
    data = storage.read(BOUNDARY_FILE_BYTES + 1)
    if len(data) > BOUNDARY_FILE_BYTES:
        raise ValidationFailed(
            {"boundary": f"the file must be {BOUNDARY_FILE_BYTES // (1024 * 1024)} MB or smaller"}
        )
    try:
        return json.loads(data)
    except UnicodeDecodeError:
        raise ValidationFailed({"boundary": "the file is not text: export it as GeoJSON"}) from None
    except json.JSONDecodeError as exc:
        raise ValidationFailed(
            {
                "boundary": f"the file is not valid JSON (line {exc.lineno}, column {exc.colno}): "
                "export it again as GeoJSON"
            }
        ) from None


def _place(path: str, document: Any) -> str:
    """Where in the file, in words: "Polygon 2, hole 1, position 4"."""
    parts = path.split(".")
    if "coordinates" not in parts:
        return ""
    indices = [int(p) for p in parts[parts.index("coordinates") + 1 :] if p.isdigit()]
    node = document
    for part in parts[1 : parts.index("coordinates")]:
        node = node[int(part)] if part.isdigit() else node.get(part)
    names = ["polygon", "ring", "position"] if node.get("type") == "MultiPolygon" else []
    names = names or ["ring", "position"]
    words = []
    for name, index in zip(names, indices, strict=False):
        if name == "ring":
            words.append("outer ring" if index == 0 else f"hole {index}")
        else:
            words.append(f"{name} {index + 1}")
    return ", ".join(words)


def _boundary_problems(fields: dict[str, str], document: Any) -> list[str]:
    problems = []
    for path, message in fields.items():
        try:
            place = _place(path, document)
        except (AttributeError, IndexError, KeyError, TypeError, ValueError):
            place = ""
        problems.append(_sentence(f"{place}: {message}" if place else message))
    return problems


@bp.post("/areas/<code>/boundary")
@web_roles(Role.admin)
def upload_boundary(code: str) -> ResponseReturnValue:
    form = BoundaryForm()
    document: Any = None
    try:
        document = _read_upload(form.boundary.data)
        view = areas.set_boundary(container().db, _actor(), code, document)
    except NotFound:
        return _not_found()
    except ValidationFailed as exc:
        problems = _boundary_problems(exc.fields, document)
        message = problems[0] if len(problems) == 1 else "; ".join(problems)
        if len(problems) > 1:
            message = f"The file has {len(problems)} problems: {message}"
        return _detail(code, errors={"boundary": message}, status=422)
    flash("The boundary was saved.", "changed")
    return redirect(url_for("areas.show", code=view["code"], _anchor="boundary"))


setattr(upload_boundary, MAX_UPLOAD_BODY_ATTR, UPLOAD_BODY_BYTES)


@bp.post("/areas/<code>/boundary/delete")
@web_roles(Role.admin)
def remove_boundary(code: str) -> ResponseReturnValue:
    try:
        areas.clear_boundary(container().db, _actor(), code)
    except NotFound:
        return _not_found()
    flash("The boundary was removed.", "changed")
    return redirect(url_for("areas.show", code=code.upper(), _anchor="boundary"))


@bp.post("/areas/<code>/neighbours")
@web_roles(Role.admin)
def link_neighbour(code: str) -> ResponseReturnValue:
    form = NeighbourForm()
    chosen = form.neighbour.data or ""
    if not chosen:
        errors = {"neighbour": "Choose the area to link"}
        return _detail(code, neighbour_form=form, errors=errors, status=422)
    try:
        view, _new = areas.link_neighbour(container().db, _actor(), code, {"code": chosen})
    except NotFound:
        return _not_found()
    except ValidationFailed as exc:
        errors = _errors(exc.fields, ("neighbour",))
        return _detail(code, neighbour_form=form, errors=errors, status=422)
    flash(f"{view['code']} and {chosen.upper()} are now neighbours.", "changed")
    return redirect(url_for("areas.show", code=view["code"], _anchor="neighbours"))


@bp.post("/areas/<code>/neighbours/<other>/delete")
@web_roles(Role.admin)
def unlink_neighbour(code: str, other: str) -> ResponseReturnValue:
    try:
        areas.unlink_neighbour(container().db, _actor(), code, other)
    except NotFound:
        return _not_found()
    flash(f"{code.upper()} and {other.upper()} are no longer neighbours.", "changed")
    return redirect(url_for("areas.show", code=code.upper(), _anchor="neighbours"))
