"""Alerts: the case's current state, each version's content, and who approved which version.

An alert is one case with numbered versions: the first message, updates (revisions) and
the withdrawal notice are each a version, so every message ever sent is one delivery row
keyed on (alert, version, contact, channel). `live_version` is the last version that went
out; `current_version` is the one being worked on (they differ while a revision is drafted).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint, false, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ldis.store.models.base import Base, utcnow
from ldis.store.models.partnerships import partnership_fk


class Alert(Base):
    __tablename__ = "alerts"
    # The target of alert_shares' composite key (an alert shared from its own partnership).
    __table_args__ = (UniqueConstraint("id", "partnership_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    partnership_id: Mapped[int] = partnership_fk()
    status: Mapped[str] = mapped_column(String(30), index=True)
    current_version: Mapped[int] = mapped_column(default=1)
    live_version: Mapped[int | None]
    drafter_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # The case the panel decided on (a signal or a report); exercises may have neither.
    signal_id: Mapped[int | None] = mapped_column(ForeignKey("signals.id"), index=True)
    report_id: Mapped[int | None] = mapped_column(ForeignKey("reports.id"), index=True)
    exercise: Mapped[bool] = mapped_column(default=False, server_default=false())
    review_by: Mapped[datetime | None]
    review_reminded_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None] = mapped_column(index=True)
    # Milestones, stored when they happen, for the timing figures.
    first_report_at: Mapped[datetime | None]
    signal_at: Mapped[datetime | None]
    decided_at: Mapped[datetime | None]
    approved_at: Mapped[datetime | None]
    withdrawn_at: Mapped[datetime | None]
    expired_at: Mapped[datetime | None]
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
    # alert (the first message), update (a revision of a live alert) or withdrawal.
    purpose: Mapped[str] = mapped_column(String(20), default="alert", server_default="alert")
    # draft, awaiting_approval, approved, rejected or discarded: this version's own workflow.
    state: Mapped[str] = mapped_column(String(30), default="draft", server_default="draft")
    # Bumped by every edit; an approval names the revision it saw.
    revision: Mapped[int] = mapped_column(default=1, server_default="1")
    drafter_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # Everyone who wrote any of it: none of them may approve it.
    author_ids: Mapped[list[int]] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    title: Mapped[str] = mapped_column(String(200))
    template: Mapped[str] = mapped_column(String(40))
    level: Mapped[str] = mapped_column(String(20))
    priority: Mapped[str] = mapped_column(String(20))
    content: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    submitted_at: Mapped[datetime | None]
    approved_at: Mapped[datetime | None]
    rejected_at: Mapped[datetime | None]
    reject_reason: Mapped[str | None] = mapped_column(String(1000))

    alert: Mapped[Alert] = relationship(back_populates="versions")


class AlertApproval(Base):
    __tablename__ = "alert_approvals"
    # The database, not only the code, refuses a second standing approval by the same
    # person; an edit voids approvals (kept, with voided_at) and they may approve again.
    __table_args__ = (
        Index(
            "uq_alert_approvals_standing",
            "alert_id",
            "version",
            "user_id",
            unique=True,
            postgresql_where=text("voided_at IS NULL"),
            sqlite_where=text("voided_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    version: Mapped[int]
    revision: Mapped[int] = mapped_column(default=1, server_default="1")
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    voided_at: Mapped[datetime | None]
