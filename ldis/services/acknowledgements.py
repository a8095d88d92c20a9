"""Acknowledgements: a contact confirms an alert reached them, by the signed link in the
message (`/ack/<token>`) or by replying `ACK` to the text.

The first acknowledgement of a delivery wins: later clicks or replies change nothing (a
conditional update, `WHERE acknowledged_at IS NULL`), so a retried webhook or a double click
is harmless. A service counts as having acknowledged an alert version once any of its
contacts has (`ldis.services.escalation` stops there).

Phone numbers are never logged or written to the audit log: ids only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ldis.domain.deliveries import Channel, DeliveryStatus
from ldis.domain.inbound import AckRequest
from ldis.messages.context import reference
from ldis.store.db import Database
from ldis.store.models import AlertVersion, Contact, Delivery

log = logging.getLogger(__name__)

VIA_LINK = "link"
VIA_SMS = "sms"
# A text can only be acknowledged once it may have reached the phone.
_ACKNOWLEDGEABLE = (
    DeliveryStatus.sending.value,
    DeliveryStatus.sent.value,
    DeliveryStatus.delivered.value,
)
# Replies are texts: a long title is cut so the reply stays one or two segments.
_TITLE_IN_REPLY = 60

UNKNOWN_NUMBER = (
    "Thank you. We could not find this number on our alert lists, so nothing was "
    "acknowledged. Reply HELP for help."
)
NOTHING_TO_ACK = (
    "Thank you. There is no alert waiting for your confirmation from this number. "
    "Reply HELP for help."
)


def acknowledge(db: Database, delivery_id: int, *, now: datetime | None = None) -> bool:
    """Mark a delivery acknowledged by its link (first click wins; later clicks change
    nothing). False when there is no such delivery."""
    with db.transaction() as session:
        exists = session.get(Delivery, delivery_id) is not None
        session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id, Delivery.acknowledged_at.is_(None))
            .values(acknowledged_at=now or datetime.now(UTC), acknowledged_via=VIA_LINK)
        )
    return exists


@dataclass(frozen=True)
class SmsAck:
    """What an `ACK` text did: the deliveries it acknowledged and the reply to send."""

    reply: str
    delivery_ids: tuple[int, ...] = ()


def _title(title: str) -> str:
    return title if len(title) <= _TITLE_IN_REPLY else title[: _TITLE_IN_REPLY - 3] + "..."


def acknowledge_sms(
    session: Session, phone: str, request: AckRequest, *, now: datetime | None = None
) -> SmsAck:
    """An `ACK` text from `phone` (E.164), in the caller's transaction.

    It acknowledges the most recent unacknowledged text of an alert sent to a contact with
    that number (or the one for the alert and version it names), and with it any other
    unacknowledged text of the same alert version to the same number (the same person
    listed at two services got it twice and read it once)."""
    now = now or datetime.now(UTC)
    contact_ids = list(session.scalars(select(Contact.id).where(Contact.phone == phone)))
    if not contact_ids:
        return SmsAck(UNKNOWN_NUMBER)
    texts = select(Delivery).where(
        Delivery.contact_id.in_(contact_ids),
        Delivery.channel == Channel.sms.value,
        Delivery.status.in_(_ACKNOWLEDGEABLE),
    )
    if request.alert_id is not None:
        texts = texts.where(Delivery.alert_id == request.alert_id)
    if request.version is not None:
        texts = texts.where(Delivery.version == request.version)
    latest_first = (
        func.coalesce(Delivery.sent_at, Delivery.claimed_at, Delivery.queued_at).desc(),
        Delivery.id.desc(),
    )
    target = session.scalars(
        texts.where(Delivery.acknowledged_at.is_(None)).order_by(*latest_first).limit(1)
    ).first()
    if target is None:
        done = session.scalars(texts.order_by(*latest_first).limit(1)).first()
        if request.alert_id is not None and done is not None:
            ref = reference(done.alert_id, done.version)
            return SmsAck(f"Thank you: {ref} was already acknowledged from this number.")
        return SmsAck(NOTHING_TO_ACK)
    alert_id, version = target.alert_id, target.version
    acknowledged = tuple(
        session.scalars(
            update(Delivery)
            .where(
                Delivery.contact_id.in_(contact_ids),
                Delivery.channel == Channel.sms.value,
                Delivery.alert_id == alert_id,
                Delivery.version == version,
                Delivery.status.in_(_ACKNOWLEDGEABLE),
                Delivery.acknowledged_at.is_(None),
            )
            .values(acknowledged_at=now, acknowledged_via=VIA_SMS)
            .returning(Delivery.id)
        )
    )
    title = session.scalar(
        select(AlertVersion.title).where(
            AlertVersion.alert_id == alert_id, AlertVersion.version == version
        )
    )
    log.info("sms acknowledgement of alert %s v%s: deliveries %s", alert_id, version, acknowledged)
    return SmsAck(
        f"Thank you: {reference(alert_id, version)} ({_title(title or 'alert')}) is "
        "acknowledged. Please make sure colleagues on your shift know.",
        acknowledged,
    )
