"""API v1 routes: service types, services, their managers and contacts, and contact
verification (see docs/api.md and docs/recipients.md)."""

from __future__ import annotations

from flask import jsonify, request
from flask.typing import ResponseReturnValue

from ldis.api.body import json_body
from ldis.api.v1 import bp, created
from ldis.domain.errors import ValidationFailed
from ldis.domain.roles import Role
from ldis.services import (
    contact_export,
    contacts,
    permissions,
    recipients,
    service_types,
    verification,
)
from ldis.web.access import api_roles, current_principal
from ldis.web.extensions import container

__all__ = ["bp"]

MANAGERS = permissions.MANAGERS


def sending() -> verification.Sending:
    c = container()
    return verification.Sending(c.settings.secret(), c.settings.public_url, c.queue)


@bp.get("/service-types")
@api_roles(*Role)
def list_service_types() -> ResponseReturnValue:
    include_retired = request.args.get("active") not in ("true", "1")
    return jsonify(
        service_types.list_types(
            container().db, current_principal(), include_retired=include_retired
        )
    )


@bp.post("/service-types")
@api_roles(Role.admin)
def create_service_type() -> ResponseReturnValue:
    return created(service_types.create_type(container().db, current_principal(), json_body()))


@bp.patch("/service-types/<code>")
@api_roles(Role.admin)
def update_service_type(code: str) -> ResponseReturnValue:
    return jsonify(
        service_types.update_type(container().db, current_principal(), code, json_body())
    )


@bp.post("/services")
@api_roles(Role.admin)
def create_service() -> ResponseReturnValue:
    return created(recipients.create_service(container().db, current_principal(), json_body()))


@bp.get("/services")
@api_roles(*MANAGERS)
def list_services() -> ResponseReturnValue:
    return jsonify(
        recipients.list_services(
            container().db,
            current_principal(),
            area=request.args.get("area") or None,
            type=request.args.get("type") or None,
        )
    )


@bp.get("/services/<int:service_id>")
@api_roles(*MANAGERS)
def get_service(service_id: int) -> ResponseReturnValue:
    return jsonify(recipients.get_service(container().db, current_principal(), service_id))


@bp.patch("/services/<int:service_id>")
@api_roles(*MANAGERS)
def update_service(service_id: int) -> ResponseReturnValue:
    return jsonify(
        recipients.update_service(container().db, current_principal(), service_id, json_body())
    )


@bp.post("/services/<int:service_id>/confirm")
@api_roles(*MANAGERS)
def confirm_service(service_id: int) -> ResponseReturnValue:
    json_body(optional=True)
    return jsonify(recipients.confirm_service(container().db, current_principal(), service_id))


@bp.post("/services/<int:service_id>/managers")
@api_roles(Role.admin)
def add_manager(service_id: int) -> ResponseReturnValue:
    return created(
        permissions.add_manager(container().db, current_principal(), service_id, json_body())
    )


@bp.delete("/services/<int:service_id>/managers/<int:user_id>")
@api_roles(Role.admin)
def remove_manager(service_id: int, user_id: int) -> ResponseReturnValue:
    return jsonify(
        permissions.remove_manager(container().db, current_principal(), service_id, user_id)
    )


@bp.post("/services/<int:service_id>/contacts")
@api_roles(*MANAGERS)
def add_contact(service_id: int) -> ResponseReturnValue:
    return created(
        contacts.add_contact(
            container().db, current_principal(), service_id, json_body(), sending=sending()
        )
    )


@bp.get("/services/<int:service_id>/contacts")
@api_roles(*MANAGERS)
def list_contacts(service_id: int) -> ResponseReturnValue:
    include_removed = request.args.get("removed") in ("true", "1")
    return jsonify(
        contacts.list_contacts(
            container().db, current_principal(), service_id, include_removed=include_removed
        )
    )


@bp.get("/contacts/<int:contact_id>")
@api_roles(*MANAGERS)
def get_contact(contact_id: int) -> ResponseReturnValue:
    return jsonify(contacts.get_contact(container().db, current_principal(), contact_id))


@bp.patch("/contacts/<int:contact_id>")
@api_roles(*MANAGERS)
def update_contact(contact_id: int) -> ResponseReturnValue:
    return jsonify(
        contacts.update_contact(
            container().db, current_principal(), contact_id, json_body(), sending=sending()
        )
    )


@bp.delete("/contacts/<int:contact_id>")
@api_roles(*MANAGERS)
def remove_contact(contact_id: int) -> ResponseReturnValue:
    return jsonify(contacts.remove_contact(container().db, current_principal(), contact_id))


@bp.get("/contacts/<int:contact_id>/export")
@api_roles(*MANAGERS)
def export_contact(contact_id: int) -> ResponseReturnValue:
    """Everything held about the contact (docs/privacy.md); audited."""
    return jsonify(contact_export.export_contact(container().db, current_principal(), contact_id))


@bp.post("/contacts/<int:contact_id>/verification/<channel>")
@api_roles(*MANAGERS)
def resend_verification(contact_id: int, channel: str) -> ResponseReturnValue:
    json_body(optional=True)
    return jsonify(
        verification.resend(
            container().db, current_principal(), contact_id, channel, sending=sending()
        )
    )


@bp.post("/contacts/<int:contact_id>/verification/<channel>/confirm")
@api_roles(*MANAGERS)
def confirm_verification(contact_id: int, channel: str) -> ResponseReturnValue:
    body = json_body()
    if not isinstance(body, dict):
        raise ValidationFailed({"body": "must be a JSON object"})
    return jsonify(
        verification.confirm(
            container().db,
            current_principal(),
            contact_id,
            channel,
            body.get("code"),
            secret=container().settings.secret(),
        )
    )
