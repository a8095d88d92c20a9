"""Admins' changes to a user account: for now, the service a reporter files for.

A reporter linked to a service reads every report filed by anyone of that service (see
`intake.readable_by`); without one, only their own. Who may read what is a change of
access, so it is audited like a role.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ldis.domain.errors import NotFound, ValidationFailed
from ldis.domain.principal import Principal
from ldis.domain.roles import Role
from ldis.domain.validation import MAX_ID, parse
from ldis.services import audit
from ldis.store.db import Database
from ldis.store.models import Service, User


class UserChange(BaseModel):
    """The fields an admin may change; each is optional, only those sent change."""

    model_config = ConfigDict(extra="forbid")

    # The service the user files reports for; null unlinks them.
    service_id: int | None = Field(default=None, ge=1, le=MAX_ID)


def user_view(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "name": user.name,
        "email": user.email,
        "roles": sorted(user.role_names),
        "active": user.active,
        "service_id": user.service_id,
    }


def update_user(db: Database, actor: Principal, user_id: int, body: Any) -> dict[str, Any]:
    """Change what was sent (today: `service_id`); audited as `user.service_changed`."""
    actor.require(Role.admin)
    change = parse(UserChange, body)
    if not change.model_fields_set:
        raise ValidationFailed({"service_id": "send the service id, or null to unlink"})
    with db.transaction() as session:
        user = session.get(User, user_id, with_for_update=True)
        if user is None:
            raise NotFound(f"No user {user_id}.")
        if "service_id" in change.model_fields_set and change.service_id != user.service_id:
            if change.service_id is not None and session.get(Service, change.service_id) is None:
                raise ValidationFailed({"service_id": f"no service {change.service_id}"})
            before = user.service_id
            user.service_id = change.service_id
            session.flush()
            audit.record(
                session,
                actor_id=actor.db_id,
                action="user.service_changed",
                entity="user",
                entity_id=user.id,
                service_id=change.service_id,
                previous_service_id=before,
            )
        return user_view(user)
