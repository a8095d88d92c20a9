"""Frontline services: register, list, change and confirm them (admins all, a service's
managers theirs).

Areas are in `ldis.services.areas` (`areas_by_code` stays here), contacts in
`ldis.services.contacts`, service types in `ldis.services.service_types`; `add_contact` and
`require_service_type` stay importable from here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ldis.domain.errors import Conflict, Forbidden, ValidationFailed
from ldis.domain.principal import Principal
from ldis.domain.recipients import ServiceInput, ServiceUpdate
from ldis.domain.roles import Role
from ldis.domain.validation import parse
from ldis.services import audit, contacts, permissions, verification
from ldis.services.contacts import add_contact
from ldis.services.service_types import require_service_type
from ldis.store.db import Database
from ldis.store.models import Area, Service, ServiceArea, ServiceType

__all__ = ["add_contact", "areas_by_code", "require_service_type"]


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


def service_view(service: Service, now: datetime | None = None) -> dict[str, Any]:
    live = [c for c in service.contacts if not contacts.is_removed(c)]
    reachable = sum(1 for c in live if contacts.is_reachable(c))
    pending = sum(
        1
        for c in live
        if any(verification.channel_status(ch, now)["pending_verification"] for ch in c.channels)
    )
    return {
        "id": service.id,
        "name": service.name,
        "type": service.type,
        "areas": [a.code for a in service.areas],
        "ref": service.ref,
        "alert_levels": list(service.alert_levels),
        "alert_kinds": list(service.alert_kinds),
        "contacts": {"total": len(live), "reachable": reachable, "pending_verification": pending},
        "reachable": reachable > 0,
        "confirmed_at": service.confirmed_at.isoformat() if service.confirmed_at else None,
        "review_reminded_at": (
            service.review_reminded_at.isoformat() if service.review_reminded_at else None
        ),
        "created_at": service.created_at.isoformat(),
        "updated_at": service.updated_at.isoformat() if service.updated_at else None,
    }


def _ref_taken(session: Session, ref: str | None, other_than: int | None = None) -> None:
    if ref is None:
        return
    query = select(Service.id).where(Service.ref == ref)
    if other_than is not None:
        query = query.where(Service.id != other_than)
    if session.scalar(query) is not None:
        raise Conflict(
            f"Another service already has the ref {ref}.",
            {"ref": "another service already has this ref"},
        )


def create_service(db: Database, actor: Principal, body: Any) -> dict[str, Any]:
    actor.require(Role.admin)
    data = parse(ServiceInput, body)
    try:
        with db.transaction() as session:
            require_service_type(session, data.type)
            areas = areas_by_code(session, list(dict.fromkeys(data.areas)), "areas")
            _ref_taken(session, data.ref)
            service = Service(
                name=data.name,
                type=data.type,
                areas=areas,
                ref=data.ref,
                alert_levels=[level.value for level in data.alert_levels],
                alert_kinds=[kind.value for kind in data.alert_kinds],
            )
            session.add(service)
            session.flush()
            audit.record(
                session,
                actor_id=actor.db_id,
                action="service.created",
                entity="service",
                entity_id=service.id,
            )
            return service_view(service)
    except IntegrityError:  # the same ref added by someone else meanwhile
        raise Conflict(
            f"Another service already has the ref {data.ref}.",
            {"ref": "another service already has this ref"},
        ) from None


def _area_and_below(session: Session, code: str) -> set[int]:
    """The area `code` and every area inside it, from one scan of the hierarchy."""
    rows = [
        (i, parent, c)
        for i, parent, c in session.execute(select(Area.id, Area.parent_id, Area.code))
    ]
    top = next((area_id for area_id, _, c in rows if c == code), None)
    if top is None:
        raise ValidationFailed({"area": f"unknown area code {code!r}"})
    children: dict[int | None, list[int]] = {}
    for area_id, parent_id, _ in rows:
        children.setdefault(parent_id, []).append(area_id)
    found, todo = set(), [top]
    while todo:
        area_id = todo.pop()
        if area_id not in found:
            found.add(area_id)
            todo.extend(children.get(area_id, []))
    return found


def list_services(
    db: Database, actor: Principal, *, area: str | None = None, type: str | None = None
) -> list[dict[str, Any]]:
    """Admins: every service (optionally those covering `area` or a place inside it, or of
    one type); service managers: only theirs."""
    with db.transaction() as session:
        allowed = permissions.managed_ids(session, actor)
        query = select(Service).order_by(Service.name, Service.id)
        if allowed is not None:
            query = query.where(Service.id.in_(allowed))
        if type:
            code = type.strip().lower()
            if session.get(ServiceType, code) is None:
                raise ValidationFailed({"type": f"{type!r} is not a service type"})
            query = query.where(Service.type == code)
        if area:
            inside = _area_and_below(session, area.strip().upper())
            covering = select(ServiceArea.service_id).where(ServiceArea.area_id.in_(inside))
            query = query.where(Service.id.in_(covering))
        now = datetime.now(UTC)
        return [service_view(s, now) for s in session.scalars(query)]


def get_service(db: Database, actor: Principal, service_id: int) -> dict[str, Any]:
    """One service with its contact counts and its managers."""
    with db.transaction() as session:
        service = permissions.service_for(session, actor, service_id)
        return {**service_view(service), "managers": permissions.managers(session, service.id)}


def _not_cleared(data: ServiceUpdate) -> None:
    cleared = sorted(f for f in data.model_fields_set if f != "ref" and getattr(data, f) is None)
    if cleared:
        raise ValidationFailed(
            {name: "cannot be cleared; leave it out to keep it" for name in cleared}
        )


def update_service(db: Database, actor: Principal, service_id: int, body: Any) -> dict[str, Any]:
    """Change only the fields sent. Managers may change their service's details but not its
    `ref` (the partnership's own key, matched on CSV imports)."""
    data = parse(ServiceUpdate, body)
    _not_cleared(data)
    given = data.model_fields_set
    now = datetime.now(UTC)
    with db.transaction() as session:
        service = permissions.service_for(session, actor, service_id, lock=True)
        changed = []
        if "ref" in given and data.ref != service.ref:
            if not actor.has_any(Role.admin):
                raise Forbidden("Only an admin can change a service's ref.")
            _ref_taken(session, data.ref, service.id)
            service.ref = data.ref
            changed.append("ref")
        if data.type is not None and data.type != service.type:
            require_service_type(session, data.type)
            service.type = data.type
            changed.append("type")
        if data.name is not None and data.name != service.name:
            service.name = data.name
            changed.append("name")
        if data.areas is not None:
            areas = areas_by_code(session, data.areas, "areas")
            if [a.id for a in areas] != [a.id for a in service.areas]:
                service.areas = areas
                changed.append("areas")
        for field, values in (
            ("alert_levels", data.alert_levels),
            ("alert_kinds", data.alert_kinds),
        ):
            if values is not None and [v.value for v in values] != getattr(service, field):
                setattr(service, field, [v.value for v in values])
                changed.append(field)
        if changed:
            service.updated_at = now
            audit.record(
                session,
                actor_id=actor.db_id,
                action="service.changed",
                entity="service",
                entity_id=service.id,
                fields=changed,
            )
        session.flush()
        return {**service_view(service, now), "managers": permissions.managers(session, service.id)}


def confirm_service(db: Database, actor: Principal, service_id: int) -> dict[str, Any]:
    """ "These details are still right": the yearly review is done for this service."""
    now = datetime.now(UTC)
    with db.transaction() as session:
        service = permissions.service_for(session, actor, service_id, lock=True)
        service.confirmed_at = now
        service.review_reminded_at = None
        audit.record(
            session,
            actor_id=actor.db_id,
            action="service.confirmed",
            entity="service",
            entity_id=service.id,
        )
        session.flush()
        return {**service_view(service, now), "managers": permissions.managers(session, service.id)}
