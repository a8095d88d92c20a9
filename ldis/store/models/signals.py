"""Signals: cases for the panel, raised by rules or cluster detectors, linked to reports."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from ldis.store.models.base import Base, utcnow
from ldis.store.models.partnerships import partnership_fk

OPEN_STATUSES = ("open", "monitoring")


class Signal(Base):
    __tablename__ = "signals"
    # At most one live signal per key in a partnership: two reports of the same nitazene
    # filed at the same moment cannot open two signals (the second insert fails and joins
    # the first); each partnership's panel has its own.
    __table_args__ = (
        Index(
            "uq_signals_live_key",
            "partnership_id",
            "key",
            unique=True,
            postgresql_where=text("status IN ('open', 'monitoring')"),
            sqlite_where=text("status IN ('open', 'monitoring')"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(
        String(20), index=True
    )  # red_list, mismatch, presentation, cluster
    key: Mapped[str] = mapped_column(String(300))
    partnership_id: Mapped[int] = partnership_fk()
    status: Mapped[str] = mapped_column(String(20), index=True, default="open")
    severity: Mapped[str] = mapped_column(String(10))
    area_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"))
    summary: Mapped[str] = mapped_column(String(500))
    detected_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    window_start: Mapped[datetime | None]
    window_end: Mapped[datetime | None]
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    reason: Mapped[str | None] = mapped_column(String(1000))
    reviewed_at: Mapped[datetime | None]
    escalated_at: Mapped[datetime | None]
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("signals.id"))


class SignalReport(Base):
    __tablename__ = "signal_reports"

    signal_id: Mapped[int] = mapped_column(
        ForeignKey("signals.id", ondelete="CASCADE"), primary_key=True
    )
    report_id: Mapped[int] = mapped_column(
        ForeignKey("reports.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    linked_at: Mapped[datetime] = mapped_column(default=utcnow)
