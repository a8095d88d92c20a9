"""The audit log: who did what to which record, and when. Append-only: database triggers refuse
UPDATE and DELETE (migration 0005), so nothing in ldis can rewrite history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from ldis.store.models.base import Base, utcnow


class AuditEvent(Base):
    __tablename__ = "audit_events"
    # Each record's history page reads its events in order.
    __table_args__ = (Index("ix_audit_events_entity", "entity", "entity_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(60))
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[int | None]
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
