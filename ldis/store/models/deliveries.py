"""The transactional outbox of deliveries, and the local `outbox` channel's stored messages."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from ldis.store.models.base import Base, utcnow

# The statuses of a delivery on its way: the rows ix_deliveries_status_queued_at holds. A
# query reaches them through it only when its WHERE clause implies this predicate, with the
# statuses written into the SQL (a bound parameter does not, in a generic plan).
STATUS_INDEX_WHERE = "status IN ('queued', 'sending')"


class Delivery(Base):
    __tablename__ = "deliveries"
    # Exactly one message per (alert version, contact, channel), enforced by the database.
    # The indexes a message's two updates write (migration 0010, docs/performance.md): the
    # status index holds only rows on their way (the sweeper, the fan-out and the oldest
    # pending are looked up there; a sent row leaves it), the provider id index only rows
    # a provider has named. Free space in each page lets the updates that leave indexed
    # columns alone (heartbeat stamps, receipts' provider status, acknowledgements) be HOT.
    __table_args__ = (
        UniqueConstraint("alert_id", "version", "contact_id", "channel"),
        Index(
            "ix_deliveries_status_queued_at",
            "status",
            "queued_at",
            postgresql_where=text(STATUS_INDEX_WHERE),
            sqlite_where=text(STATUS_INDEX_WHERE),
        ),
        Index(
            "ix_deliveries_provider_id",
            "provider_id",
            postgresql_where=text("provider_id IS NOT NULL"),
            sqlite_where=text("provider_id IS NOT NULL"),
        ),
        {"postgresql_with": {"fillfactor": 85}},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    version: Mapped[int]
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    channel: Mapped[str] = mapped_column(String(20))
    priority: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(default=0)
    # Status callbacks find their delivery by the provider's message id (indexed above).
    provider_id: Mapped[str | None] = mapped_column(String(100))
    last_error: Mapped[str | None] = mapped_column(String(500))
    queued_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Not to be sent before this time (a standard alert waiting out the contact's quiet hours).
    not_before: Mapped[datetime | None]
    claimed_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]
    # How it was acknowledged: link (the /ack page) or sms (an ACK reply).
    acknowledged_via: Mapped[str | None] = mapped_column(String(20))
    # The provider's last word from a status callback (queued, sent, delivered, undelivered...).
    provider_status: Mapped[str | None] = mapped_column(String(30))


class DeliveryAttempt(Base):
    """One try at sending a delivery and what came of it: the record behind retries."""

    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("deliveries.id", ondelete="CASCADE"), index=True
    )
    attempt: Mapped[int]
    at: Mapped[datetime] = mapped_column(default=utcnow)
    # sent, transient_error, permanent_error, or reconciled (found already sent at the provider)
    outcome: Mapped[str] = mapped_column(String(30))
    error: Mapped[str | None] = mapped_column(String(500))
    provider_id: Mapped[str | None] = mapped_column(String(100))


class Escalation(Base):
    """An urgent alert a service has not acknowledged in time, passed up one stage: to the
    service's backup contacts, then to the panel. Unique per stage: escalated once."""

    __tablename__ = "escalations"
    __table_args__ = (UniqueConstraint("alert_id", "version", "service_id", "stage"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    version: Mapped[int]
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    stage: Mapped[str] = mapped_column(String(20))  # backup or panel
    at: Mapped[datetime] = mapped_column(default=utcnow)
    messages: Mapped[int] = mapped_column(default=0)


class OutboxMessage(Base):
    """A message 'sent' through the local outbox channel, kept for a person to read."""

    __tablename__ = "outbox_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Unique: sending the same delivery (or notice) twice stores one message: exactly-once.
    delivery_id: Mapped[int | None] = mapped_column(
        ForeignKey("deliveries.id", ondelete="CASCADE"), unique=True
    )
    notice_id: Mapped[int | None] = mapped_column(
        ForeignKey("notices.id", ondelete="CASCADE"), unique=True
    )
    channel: Mapped[str] = mapped_column(String(20))
    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(String(300))
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class Notice(Base):
    """A service message that is not an alert: a verification code, a note to a service
    manager, a review reminder, a reply to an inbound text. Written in the transaction that
    causes it (so it is sent if and only if that change happened), sent by a worker.

    `dedupe_key` makes a repeat (a retried webhook, a reminder job run twice) a no-op.
    """

    __tablename__ = "notices"
    __table_args__ = (Index("ix_notices_status_created_at", "status", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    purpose: Mapped[str] = mapped_column(String(40))  # verify_sms, manager_alert, review, ...
    channel: Mapped[str] = mapped_column(String(20))
    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(String(300))
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="queued")  # as DeliveryStatus
    attempts: Mapped[int] = mapped_column(default=0)
    provider_id: Mapped[str | None] = mapped_column(String(100))
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
