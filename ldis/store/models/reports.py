"""Reports of every kind: common columns for filtering, the kind's own fields as a document."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ldis.store.models.base import Base, utcnow
from ldis.store.models.recipients import Area


class Report(Base):
    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(20), unique=True)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), index=True)
    occurred_at: Mapped[datetime | None] = mapped_column(index=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    source_type: Mapped[str] = mapped_column(String(200))
    data: Mapped[dict[str, Any]]

    area: Mapped[Area] = relationship(lazy="joined")
