"""Everything ldis holds about one contact, as one JSON document: for a subject access
request, or for a person who wants to see what their service has on file.

For admins and the contact's own service managers (to anyone else the contact does not
exist). The export is audited (`contact.exported`), without its contents.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from ldis.domain.principal import Principal
from ldis.services import audit, permissions
from ldis.services.contacts import their_notices
from ldis.store.db import Database
from ldis.store.models import (
    AuditEvent,
    Contact,
    ContactChannel,
    Delivery,
    Notice,
    OutboxMessage,
    Service,
)

FORMAT = "ldis.contact-export/1"


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _contact(contact: Contact, service: Service) -> dict[str, Any]:
    quiet = None
    if contact.quiet_start is not None and contact.quiet_end is not None:
        quiet = {
            "start": contact.quiet_start.strftime("%H:%M"),
            "end": contact.quiet_end.strftime("%H:%M"),
            "time_zone": "Europe/London",
        }
    return {
        "id": contact.id,
        "service": {"id": service.id, "name": service.name, "type": service.type},
        "name": contact.name,
        "role": contact.role,
        "email": contact.email,
        "phone": contact.phone,
        "quiet_hours": quiet,
        "opted_out_at": _iso(contact.opted_out_at),
        "flagged_at": _iso(contact.flagged_at),
        "flag_reason": contact.flag_reason,
        "created_at": _iso(contact.created_at),
        "updated_at": _iso(contact.updated_at),
        "erased_at": _iso(contact.erased_at),
    }


def _channel(row: ContactChannel) -> dict[str, Any]:
    # The hash of a verification code is a secret of ours, not data about the person.
    return {
        "channel": row.channel,
        "verified_at": _iso(row.verified_at),
        "verification_sent_at": _iso(row.verification_sent_at),
        "verification_attempts": row.verification_attempts,
        "opted_out_at": _iso(row.opted_out_at),
        "failed_at": _iso(row.failed_at),
        "failure_reason": row.failure_reason,
    }


def _delivery(row: Delivery) -> dict[str, Any]:
    return {
        "alert_id": row.alert_id,
        "version": row.version,
        "channel": row.channel,
        "priority": row.priority,
        "status": row.status,
        "attempts": row.attempts,
        "queued_at": _iso(row.queued_at),
        "sent_at": _iso(row.sent_at),
        "delivered_at": _iso(row.delivered_at),
        "acknowledged_at": _iso(row.acknowledged_at),
        "acknowledged_via": row.acknowledged_via,
        "last_error": row.last_error,
    }


def _notice(row: Notice) -> dict[str, Any]:
    # The text itself is left out: a verification message carries a code still secret.
    return {
        "id": row.id,
        "purpose": row.purpose,
        "channel": row.channel,
        "recipient": row.recipient,
        "subject": row.subject,
        "status": row.status,
        "created_at": _iso(row.created_at),
        "sent_at": _iso(row.sent_at),
    }


def _outbox(row: OutboxMessage) -> dict[str, Any]:
    return {
        "id": row.id,
        "delivery_id": row.delivery_id,
        "notice_id": row.notice_id,
        "channel": row.channel,
        "recipient": row.recipient,
        "subject": row.subject,
        "created_at": _iso(row.created_at),
    }


def _event(row: AuditEvent) -> dict[str, Any]:
    return {
        "at": _iso(row.at),
        "action": row.action,
        "actor_id": row.actor_id,
        "detail": row.detail,
    }


def export_contact(db: Database, actor: Principal, contact_id: int) -> dict[str, Any]:
    """The contact, their channels, unsubscriptions, deliveries, the notices sent to their
    addresses, the local outbox's copies of both, and the audit events about them."""
    now = datetime.now(UTC)
    with db.transaction() as session:
        contact = permissions.contact_for(session, actor, contact_id)
        service = contact.service
        deliveries = list(
            session.scalars(
                select(Delivery)
                .where(Delivery.contact_id == contact.id)
                .order_by(Delivery.queued_at, Delivery.id)
            )
        )
        notices = list(
            session.scalars(
                select(Notice)
                .where(their_notices(session, contact, exclusive=False))
                .order_by(Notice.created_at, Notice.id)
            )
        )
        delivery_ids = [d.id for d in deliveries]
        notice_ids = [n.id for n in notices]
        copies = list(
            session.scalars(
                select(OutboxMessage)
                .where(
                    OutboxMessage.delivery_id.in_(delivery_ids)
                    | OutboxMessage.notice_id.in_(notice_ids)
                )
                .order_by(OutboxMessage.id)
            )
        )
        events = list(
            session.scalars(
                select(AuditEvent)
                .where(AuditEvent.entity == "contact", AuditEvent.entity_id == contact.id)
                .order_by(AuditEvent.id)
            )
        )
        document = {
            "format": FORMAT,
            "exported_at": now.isoformat(),
            "contact": _contact(contact, service),
            "channels": [_channel(c) for c in sorted(contact.channels, key=lambda c: c.channel)],
            "unsubscriptions": [
                {"alert_kind": u.alert_kind, "created_at": _iso(u.created_at)}
                for u in sorted(contact.unsubscriptions, key=lambda u: u.alert_kind)
            ],
            "deliveries": [_delivery(d) for d in deliveries],
            "notices": [_notice(n) for n in notices],
            "outbox_messages": [_outbox(m) for m in copies],
            "audit_events": [_event(e) for e in events],
        }
        audit.record(
            session,
            actor_id=actor.db_id,
            action="contact.exported",
            entity="contact",
            entity_id=contact.id,
            service_id=contact.service_id,
            deliveries=len(deliveries),
            notices=len(notices),
        )
        return document
