"""API v1 routes: areas, their boundaries and neighbours, and point lookup (see docs/api.md)."""

from __future__ import annotations

from flask import jsonify, request
from flask.typing import ResponseReturnValue

from ldis.api.body import json_body
from ldis.api.v1 import bp, created
from ldis.domain.roles import Role
from ldis.services import areas
from ldis.web.access import api_roles, current_principal
from ldis.web.extensions import container

__all__ = ["bp"]

READERS = areas.READERS
# A detailed ward or district boundary is larger than an ordinary request body.
BOUNDARY_BYTES = 5 * 1024 * 1024


@bp.post("/areas")
@api_roles(Role.admin)
def create_area() -> ResponseReturnValue:
    return created(areas.create_area(container().db, current_principal(), json_body()))


@bp.get("/areas")
@api_roles(*READERS)
def list_areas() -> ResponseReturnValue:
    return jsonify(areas.list_areas(container().db, current_principal()))


@bp.get("/areas/locate")
@api_roles(*areas.LOCATORS)
def locate() -> ResponseReturnValue:
    lat, lon = request.args.get("lat"), request.args.get("lon")
    return jsonify(areas.locate_view(container().db, current_principal(), lat, lon))


@bp.get("/areas/<code>")
@api_roles(*READERS)
def get_area(code: str) -> ResponseReturnValue:
    return jsonify(areas.get_area(container().db, current_principal(), code))


@bp.patch("/areas/<code>")
@api_roles(Role.admin)
def update_area(code: str) -> ResponseReturnValue:
    return jsonify(areas.update_area(container().db, current_principal(), code, json_body()))


@bp.put("/areas/<code>/boundary")
@api_roles(Role.admin)
def set_boundary(code: str) -> ResponseReturnValue:
    request.max_content_length = BOUNDARY_BYTES
    return jsonify(areas.set_boundary(container().db, current_principal(), code, json_body()))


@bp.get("/areas/<code>/boundary")
@api_roles(*READERS)
def get_boundary(code: str) -> ResponseReturnValue:
    feature = areas.get_boundary(container().db, current_principal(), code)
    return jsonify(feature), 200, {"Content-Type": "application/geo+json"}


@bp.delete("/areas/<code>/boundary")
@api_roles(Role.admin)
def clear_boundary(code: str) -> ResponseReturnValue:
    areas.clear_boundary(container().db, current_principal(), code)
    return "", 204


@bp.post("/areas/<code>/neighbours")
@api_roles(Role.admin)
def link_neighbour(code: str) -> ResponseReturnValue:
    view, new = areas.link_neighbour(container().db, current_principal(), code, json_body())
    return jsonify(view), 201 if new else 200


@bp.delete("/areas/<code>/neighbours/<other>")
@api_roles(Role.admin)
def unlink_neighbour(code: str, other: str) -> ResponseReturnValue:
    areas.unlink_neighbour(container().db, current_principal(), code, other)
    return "", 204
