"""Write audit events inside the caller's transaction, so the record and its audit agree."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from ldis.store.models import AuditEvent


def record(
    session: Session,
    *,
    actor_id: int | None,
    action: str,
    entity: str,
    entity_id: int | None,
    **detail: Any,
) -> None:
    # A Core insert, not session.add: no ORM unit-of-work bookkeeping on every write path.
    session.execute(
        insert(AuditEvent).values(
            actor_id=actor_id, action=action, entity=entity, entity_id=entity_id, detail=detail
        )
    )
