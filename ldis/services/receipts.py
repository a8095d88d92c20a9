"""Provider receipts: Twilio's status callbacks for the texts we sent.

A callback names the message (`MessageSid`, our `provider_id`) and its status. `delivered`
moves the delivery to delivered; `undelivered` and `failed` record the error and fail it,
and an error code that says the number itself is wrong (or refuses us) flags the contact as
a send-time refusal does. The provider's word is stored in `provider_status`.

Callbacks come out of order and more than once: nothing moves backwards (a delivered text
stays delivered, a `sent` after `delivered` changes nothing), and a repeat changes nothing.
The row is locked while the callback is applied, so two callbacks at once are serialised.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from ldis.domain.deliveries import (
    TWILIO_RECEIPT_RECIPIENT_CODES,
    DeliveryStatus,
    can_move,
    provider_status_advances,
    receipt_target,
)
from ldis.domain.hygiene import RecipientFailure, recipient_failure
from ldis.services import hygiene
from ldis.store.db import Database
from ldis.store.models import Delivery

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Receipt:
    found: bool  # a delivery has this provider id
    status: str | None = None  # the delivery's status afterwards
    notice_ids: tuple[int, ...] = ()  # notices to the service's managers (contact flagged)


def _error_code(raw: str | None) -> int | None:
    try:
        return int(raw) if raw else None
    except ValueError:
        return None


def _recipient_fault(code: int | None, status: str) -> RecipientFailure | None:
    if code is None:
        return None
    if code in TWILIO_RECEIPT_RECIPIENT_CODES:
        return RecipientFailure(f"{TWILIO_RECEIPT_RECIPIENT_CODES[code]} (Twilio {code})")
    return recipient_failure("sms", f"twilio {code} ({status})")


def record_sms_status(
    db: Database,
    *,
    message_sid: str,
    status: str,
    error_code: str | None = None,
    public_url: str = "",
) -> Receipt:
    """Apply one status callback; safe to repeat and to receive out of order."""
    status = status.strip().lower()
    if not message_sid or not status:
        return Receipt(found=False)
    code = _error_code(error_code)
    now = datetime.now(UTC)
    with db.transaction() as session:
        delivery = session.scalars(
            select(Delivery)
            .where(Delivery.provider_id == message_sid, Delivery.channel == "sms")
            .with_for_update()
        ).first()
        if delivery is None:
            return Receipt(found=False)
        if provider_status_advances(delivery.provider_status, status):
            delivery.provider_status = status
        target = receipt_target(status)
        current = DeliveryStatus(delivery.status)
        notice_ids: list[int] = []
        if target is not None and can_move(current, target):
            delivery.status = target.value
            if target is DeliveryStatus.delivered:
                delivery.delivered_at = now
            else:
                delivery.last_error = f"twilio {code or 'error'} ({status}) after sending"
                failure = _recipient_fault(code, status)
                if failure is not None:
                    notice_ids = hygiene.flag_failure(
                        session, delivery.contact_id, "sms", failure, public_url=public_url
                    )
        return Receipt(found=True, status=delivery.status, notice_ids=tuple(notice_ids))
