"""Delivery states and channels: one delivery per (alert version, contact, channel)."""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    sms = "sms"
    email = "email"


class DeliveryStatus(StrEnum):
    queued = "queued"  # written with the approval; waiting for a worker
    sending = "sending"  # claimed by a worker; the provider call is under way
    sent = "sent"  # the provider accepted it
    delivered = "delivered"  # the provider confirmed delivery to the handset or mailbox
    failed = "failed"  # permanently failed; the contact needs attention
    # Not sent because the alert was withdrawn, expired or replaced by an update first.
    cancelled = "cancelled"


# Only these moves are legal; workers apply them with conditional updates so that two
# workers (or a retry racing a sweeper) can never both send the same delivery.
DELIVERY_TRANSITIONS: dict[DeliveryStatus, frozenset[DeliveryStatus]] = {
    DeliveryStatus.queued: frozenset(
        {DeliveryStatus.sending, DeliveryStatus.failed, DeliveryStatus.cancelled}
    ),
    DeliveryStatus.sending: frozenset(
        {
            DeliveryStatus.sent,
            DeliveryStatus.delivered,
            DeliveryStatus.failed,
            DeliveryStatus.queued,
        }
    ),
    DeliveryStatus.sent: frozenset({DeliveryStatus.delivered, DeliveryStatus.failed}),
    DeliveryStatus.delivered: frozenset(),
    DeliveryStatus.failed: frozenset(),
    DeliveryStatus.cancelled: frozenset(),
}


def can_move(current: DeliveryStatus, target: DeliveryStatus) -> bool:
    return target in DELIVERY_TRANSITIONS[current]


def sources_of(target: DeliveryStatus) -> frozenset[DeliveryStatus]:
    """The states from which a delivery may move to `target` (for conditional updates)."""
    return frozenset(s for s, targets in DELIVERY_TRANSITIONS.items() if target in targets)


def retry_delay(attempts: int) -> float:
    """Exponential backoff after a transient failure: 10 s, 20 s, 40 s ... capped at 30 min."""
    return float(min(10 * 2 ** max(attempts - 1, 0), 1800))
