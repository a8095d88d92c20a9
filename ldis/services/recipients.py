"""Register areas, frontline services and their contacts (admin use cases)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ldis.domain.errors import Conflict, NotFound, ValidationFailed
from ldis.domain.principal import Principal
from ldis.domain.recipients import AreaInput, ContactInput, ServiceInput
from ldis.domain.roles import Role
from ldis.domain.validation import parse
from ldis.services import audit
from ldis.store.db import Database
from ldis.store.models import Area, Contact, ContactChannel, Service, ServiceType


def areas_by_code(session: Session, codes: list[str], field: str) -> list[Area]:
    """Load areas in the order given; ValidationFailed naming each unknown code."""
    found = {a.code: a for a in session.scalars(select(Area).where(Area.code.in_(codes)))}
    missing = {
        f"{field}.{i}": f"unknown area code {code!r}"
        for i, code in enumerate(codes)
        if code not in found
    }
    if missing:
        raise ValidationFailed(missing)
    return [found[code] for code in codes]


def require_service_type(session: Session, code: str, field: str = "type") -> None:
    """ValidationFailed naming the managed types when `code` is not an active one."""
    active = list(
        session.scalars(
            select(ServiceType.code).where(ServiceType.active.is_(True)).order_by(ServiceType.code)
        )
    )
    if code not in active:
        raise ValidationFailed(
            {field: f"unknown service type {code!r}; use one of: {', '.join(active)}"}
        )


def area_view(area: Area) -> dict[str, Any]:
    return {
        "id": area.id,
        "code": area.code,
        "name": area.name,
        "parent": area.parent.code if area.parent else None,
    }


def create_area(db: Database, actor: Principal, body: Any) -> dict[str, Any]:
    actor.require(Role.admin)
    data = parse(AreaInput, body)
    with db.transaction() as session:
        if session.scalar(select(Area.id).where(Area.code == data.code)) is not None:
            raise Conflict(f"Area {data.code} already exists.")
        parent = areas_by_code(session, [data.parent], "parent")[0] if data.parent else None
        area = Area(code=data.code, name=data.name, parent=parent)
        session.add(area)
        session.flush()
        audit.record(
            session, actor_id=actor.user_id, action="area.created", entity="area", entity_id=area.id
        )
        return area_view(area)


def service_view(service: Service) -> dict[str, Any]:
    return {
        "id": service.id,
        "name": service.name,
        "type": service.type,
        "areas": [a.code for a in service.areas],
    }


def create_service(db: Database, actor: Principal, body: Any) -> dict[str, Any]:
    actor.require(Role.admin)
    data = parse(ServiceInput, body)
    with db.transaction() as session:
        require_service_type(session, data.type)
        areas = areas_by_code(session, list(dict.fromkeys(data.areas)), "areas")
        service = Service(name=data.name, type=data.type, areas=areas)
        session.add(service)
        session.flush()
        audit.record(
            session,
            actor_id=actor.user_id,
            action="service.created",
            entity="service",
            entity_id=service.id,
        )
        return service_view(service)


def contact_view(contact: Contact) -> dict[str, Any]:
    return {
        "id": contact.id,
        "service_id": contact.service_id,
        "name": contact.name,
        "email": contact.email,
        "phone": contact.phone,
        "channels": [c.channel for c in contact.channels],
        "verified": {c.channel: c.verified_at is not None for c in contact.channels},
    }


def add_contact(db: Database, actor: Principal, service_id: int, body: Any) -> dict[str, Any]:
    actor.require(Role.admin)
    data = parse(ContactInput, body)
    now = datetime.now(UTC)
    with db.transaction() as session:
        if session.get(Service, service_id) is None:
            raise NotFound(f"No service {service_id}.")
        contact = Contact(
            service_id=service_id,
            name=data.name,
            email=data.email,
            phone=data.phone,
            channels=[
                ContactChannel(channel=ch.value, verified_at=now if data.verified else None)
                for ch in data.channels
            ],
        )
        session.add(contact)
        session.flush()
        # No contact details in the audit log: it is read more widely than the contact list.
        audit.record(
            session,
            actor_id=actor.user_id,
            action="contact.created",
            entity="contact",
            entity_id=contact.id,
            service_id=service_id,
            channels=[c.value for c in data.channels],
            verified_by_admin=data.verified,
        )
        return contact_view(contact)
