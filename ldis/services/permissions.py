"""Who may manage which service, and who its managers are.

Admins manage every service; a service manager only the services they are linked to. To a
manager, a service (or contact) they do not manage does not exist: 404, never 403, so the
answer does not reveal which other services there are.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ldis.domain.errors import Conflict, NotFound, ValidationFailed
from ldis.domain.principal import Principal
from ldis.domain.recipients import ManagerInput
from ldis.domain.roles import Role
from ldis.domain.validation import parse
from ldis.services import audit
from ldis.store.db import Database
from ldis.store.models import Contact, Service, ServiceManager, User, UserRole

MANAGERS = (Role.admin, Role.service_manager)


def managed_ids(session: Session, actor: Principal) -> set[int] | None:
    """The ids of the services `actor` may manage; None means every service (an admin)."""
    actor.require(*MANAGERS)
    if actor.has_any(Role.admin):
        return None
    return set(
        session.scalars(
            select(ServiceManager.service_id).where(ServiceManager.user_id == actor.user_id)
        )
    )


def may_manage(session: Session, actor: Principal, service_id: int) -> bool:
    allowed = managed_ids(session, actor)
    return allowed is None or service_id in allowed


def service_for(
    session: Session, actor: Principal, service_id: int, *, lock: bool = False
) -> Service:
    """The service, if `actor` may manage it; NotFound otherwise (also for a manager asking
    about someone else's service). `lock` takes a row lock, serialising changes to it."""
    actor.require(*MANAGERS)
    if not may_manage(session, actor, service_id):
        raise NotFound(f"No service {service_id}.")
    service = session.get(Service, service_id, with_for_update=lock or None)
    if service is None:
        raise NotFound(f"No service {service_id}.")
    return service


def contact_for(
    session: Session, actor: Principal, contact_id: int, *, lock: bool = False
) -> Contact:
    """The contact, if `actor` may manage its service; NotFound otherwise."""
    actor.require(*MANAGERS)
    contact = session.get(Contact, contact_id, with_for_update=lock or None)
    if contact is None or not may_manage(session, actor, contact.service_id):
        raise NotFound(f"No contact {contact_id}.")
    return contact


def manager_view(user: User) -> dict[str, Any]:
    return {"id": user.id, "name": user.name, "email": user.email}


def managers(session: Session, service_id: int) -> list[dict[str, Any]]:
    users = session.scalars(
        select(User)
        .join(ServiceManager, ServiceManager.user_id == User.id)
        .where(ServiceManager.service_id == service_id)
        .order_by(User.name, User.id)
    )
    return [manager_view(user) for user in users]


def add_manager(db: Database, actor: Principal, service_id: int, body: Any) -> dict[str, Any]:
    """Link an existing user to the service as its manager; give them the service_manager
    role if they lack it (audited, as every change of who may do what is)."""
    actor.require(Role.admin)
    email = parse(ManagerInput, body).email
    with db.transaction() as session:
        service = service_for(session, actor, service_id, lock=True)
        user = session.scalar(select(User).where(User.email == email))
        if user is None or not user.active:
            raise ValidationFailed(
                {"email": "no active user has this e-mail; create the user first"}
            )
        if any(m.user_id == user.id for m in service.managers):
            raise Conflict(
                f"{user.name} already manages this service.",
                {"email": "already a manager of this service"},
            )
        service.managers.append(ServiceManager(user_id=user.id))
        granted = Role.service_manager.value not in user.role_names
        if granted:
            session.add(UserRole(user_id=user.id, role=Role.service_manager.value))
        session.flush()
        audit.record(
            session,
            actor_id=actor.db_id,
            action="service.manager_added",
            entity="service",
            entity_id=service.id,
            user_id=user.id,
            role_granted=granted,
        )
        return {"service_id": service.id, "managers": managers(session, service.id)}


def remove_manager(db: Database, actor: Principal, service_id: int, user_id: int) -> dict[str, Any]:
    """Unlink a manager. Their service_manager role stays: with no service linked it lets
    them see nothing, and an admin removes roles deliberately, not as a side effect."""
    actor.require(Role.admin)
    with db.transaction() as session:
        service = service_for(session, actor, service_id, lock=True)
        link = next((m for m in service.managers if m.user_id == user_id), None)
        if link is None:
            raise NotFound(f"User {user_id} does not manage service {service_id}.")
        service.managers.remove(link)
        session.flush()
        audit.record(
            session,
            actor_id=actor.db_id,
            action="service.manager_removed",
            entity="service",
            entity_id=service.id,
            user_id=user_id,
        )
        return {"service_id": service.id, "managers": managers(session, service.id)}
