"""Reports of every kind: common columns for filtering, the kind's own fields as a document,
the substances they name (normalised against the vocabulary), updates and photos."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ForeignKey, LargeBinary, String, Text, UniqueConstraint, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ldis.store.models.base import Base, utcnow
from ldis.store.models.partnerships import partnership_fk
from ldis.store.models.recipients import Area

if TYPE_CHECKING:
    from ldis.store.models.signals import Signal


class Report(Base):
    __tablename__ = "reports"
    __table_args__ = (UniqueConstraint("partnership_id", "dedupe_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(20), unique=True)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    partnership_id: Mapped[int] = partnership_fk()
    # Call-outs may carry a location but no area until boundaries are loaded.
    area_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"), index=True)
    occurred_at: Mapped[datetime | None] = mapped_column(index=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    source_type: Mapped[str] = mapped_column(String(200))
    lat: Mapped[float | None]
    lon: Mapped[float | None]
    red_list: Mapped[bool] = mapped_column(default=False, index=True)
    # Same source + same source reference (or CSV row identity): unique in a partnership
    # (the constraint above), so a resend is refused by the database itself, while two
    # partnerships may each file the same lab's result.
    dedupe_key: Mapped[str | None] = mapped_column(String(64))
    # What was reported, for "same content within minutes" checks.
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    # Normalised "colour|markings" for the same-appearance rule; None unless both are given.
    appearance_key: Mapped[str | None] = mapped_column(String(200), index=True)
    data: Mapped[dict[str, Any]]
    # Retention: when free text and exact location were removed (the counts stay).
    redacted_at: Mapped[datetime | None]
    # Who sent it in: `staff` (a signed-in reporter, the API, CSV), or the public
    # (`public_web`, `public_sms`: anonymous, shown to the panel as unverified).
    origin: Mapped[str] = mapped_column(String(20), default="staff", server_default="staff")
    verified: Mapped[bool] = mapped_column(default=True, server_default=true())

    area: Mapped[Area | None] = relationship(lazy="joined")
    substances: Mapped[list[ReportSubstance]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="ReportSubstance.id"
    )
    updates: Mapped[list[ReportUpdate]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="ReportUpdate.id"
    )
    signals: Mapped[list[Signal]] = relationship(
        secondary="signal_reports", lazy="selectin", viewonly=True, order_by="Signal.id"
    )


class ReportSubstance(Base):
    """A substance a report names, as written and as the vocabulary knows it."""

    __tablename__ = "report_substances"

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"), index=True)
    field: Mapped[str] = mapped_column(String(60))
    written: Mapped[str] = mapped_column(String(200))
    canonical: Mapped[str | None] = mapped_column(String(200), index=True)
    drug_class: Mapped[str | None] = mapped_column(String(60))
    red_list: Mapped[bool] = mapped_column(default=False)


class ReportUpdate(Base):
    """Something the reporter learned later (a lab confirmation, an outcome)."""

    __tablename__ = "report_updates"

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReportPhoto(Base):
    """A photo of a sample or its packaging, re-encoded so no camera metadata survives."""

    __tablename__ = "report_photos"

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(
        ForeignKey("reports.id", ondelete="CASCADE"), unique=True
    )
    content_type: Mapped[str] = mapped_column(String(40))
    width: Mapped[int]
    height: Mapped[int]
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class VocabularyEntry(Base):
    """An admin's addition to the shipped substances vocabulary."""

    __tablename__ = "substance_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    canonical: Mapped[str] = mapped_column(String(200), unique=True)
    drug_class: Mapped[str] = mapped_column(String(60))
    red_list: Mapped[bool] = mapped_column(default=False)
    synonyms: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
