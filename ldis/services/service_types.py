"""The managed list of service types: read by everyone signed in, changed by admins.

A type is never deleted, only retired: services that have it keep it (their history and
the alerts already aimed at them stay meaningful), but it cannot be chosen again.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ldis.domain.errors import Conflict, NotFound, ValidationFailed
from ldis.domain.principal import Principal
from ldis.domain.recipients import ServiceTypeInput, ServiceTypeUpdate
from ldis.domain.roles import Role
from ldis.domain.validation import parse
from ldis.services import audit
from ldis.store.db import Database
from ldis.store.models import Service, ServiceType


def active_codes(session: Session) -> list[str]:
    return list(
        session.scalars(
            select(ServiceType.code).where(ServiceType.active.is_(True)).order_by(ServiceType.code)
        )
    )


def require_service_type(session: Session, code: str, field: str = "type") -> None:
    """ValidationFailed naming the active types when `code` is not one of them."""
    active = active_codes(session)
    if code in active:
        return
    retired = session.get(ServiceType, code)
    what = "is retired" if retired is not None else "is not a service type"
    raise ValidationFailed({field: f"{code!r} {what}; use one of: {', '.join(active)}"})


def type_view(service_type: ServiceType, services: int = 0) -> dict[str, Any]:
    return {
        "code": service_type.code,
        "label": service_type.label,
        "active": service_type.active,
        "services": services,
    }


def list_types(
    db: Database, actor: Principal, *, include_retired: bool = True
) -> list[dict[str, Any]]:
    actor.require(*Role)
    with db.transaction() as session:
        counts: dict[str, int] = {
            code: n
            for code, n in session.execute(
                select(Service.type, func.count()).group_by(Service.type)
            )
        }
        query = select(ServiceType).order_by(ServiceType.label, ServiceType.code)
        if not include_retired:
            query = query.where(ServiceType.active.is_(True))
        return [type_view(t, counts.get(t.code, 0)) for t in session.scalars(query)]


def create_type(db: Database, actor: Principal, body: Any) -> dict[str, Any]:
    actor.require(Role.admin)
    data = parse(ServiceTypeInput, body)
    clash = Conflict(
        f"Service type {data.code} already exists.",
        {"code": "already exists; change its label instead"},
    )
    try:
        with db.transaction() as session:
            if session.get(ServiceType, data.code) is not None:
                raise clash
            service_type = ServiceType(code=data.code, label=data.label, active=data.active)
            session.add(service_type)
            session.flush()
            audit.record(
                session,
                actor_id=actor.db_id,
                action="service_type.created",
                entity="service_type",
                entity_id=None,
                code=data.code,
            )
            return type_view(service_type)
    except IntegrityError:  # two admins adding the same code at once
        raise clash from None


def update_type(db: Database, actor: Principal, code: str, body: Any) -> dict[str, Any]:
    actor.require(Role.admin)
    data = parse(ServiceTypeUpdate, body)
    with db.transaction() as session:
        service_type = session.get(ServiceType, code.strip().lower(), with_for_update=True)
        if service_type is None:
            raise NotFound(f"No service type {code}.")
        changed: dict[str, str | bool] = {}
        if data.label is not None and data.label != service_type.label:
            changed["label"] = data.label
            service_type.label = data.label
        if data.active is not None and data.active != service_type.active:
            changed["active"] = data.active
            service_type.active = data.active
        if changed:
            audit.record(
                session,
                actor_id=actor.db_id,
                action="service_type.changed",
                entity="service_type",
                entity_id=None,
                code=service_type.code,
                **changed,
            )
        used = session.scalar(
            select(func.count()).select_from(Service).where(Service.type == service_type.code)
        )
        return type_view(service_type, used or 0)
