"""Alerts: the alert's current state, each version's content, and who approved which version."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ldis.store.models.base import Base, utcnow


class Alert(Base):
    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(30), index=True)
    current_version: Mapped[int] = mapped_column(default=1)
    drafter_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    versions: Mapped[list[AlertVersion]] = relationship(
        back_populates="alert", order_by="AlertVersion.version", lazy="selectin"
    )

    def version_row(self, number: int | None = None) -> AlertVersion:
        wanted = self.current_version if number is None else number
        return next(v for v in self.versions if v.version == wanted)


class AlertVersion(Base):
    __tablename__ = "alert_versions"
    __table_args__ = (UniqueConstraint("alert_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    version: Mapped[int]
    drafter_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    title: Mapped[str] = mapped_column(String(200))
    template: Mapped[str] = mapped_column(String(40))
    level: Mapped[str] = mapped_column(String(20))
    priority: Mapped[str] = mapped_column(String(20))
    content: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    submitted_at: Mapped[datetime | None]
    approved_at: Mapped[datetime | None]

    alert: Mapped[Alert] = relationship(back_populates="versions")


class AlertApproval(Base):
    __tablename__ = "alert_approvals"
    # The database, not only the code, refuses a second approval by the same person.
    __table_args__ = (UniqueConstraint("alert_id", "version", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    version: Mapped[int]
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
