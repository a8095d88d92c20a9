"""Delivery states and channels: one delivery per (alert version, contact, channel).

Also the rules of retrying (backoff with jitter) and of provider receipts (which status a
callback may move a delivery to, and which error codes are the recipient's fault).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ldis.domain.messages import SendResult


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


FINAL_STATES = frozenset(
    {DeliveryStatus.delivered, DeliveryStatus.failed, DeliveryStatus.cancelled}
)

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


# --- attempts and retries -------------------------------------------------------------------


class AttemptOutcome(StrEnum):
    """What one try at a delivery came to (the `delivery_attempts.outcome` column)."""

    sent = "sent"
    transient_error = "transient_error"
    permanent_error = "permanent_error"
    reconciled = "reconciled"  # found already sent at the provider: not sent again
    lost = "lost"  # the worker vanished mid-send; outcome unknown until reconciled


@dataclass(frozen=True)
class RetryLater(SendResult):
    """A transient error with the provider's own word on when to try again (HTTP 429
    `Retry-After`), in seconds."""

    retry_after: float | None = None


BACKOFF_BASE_SECONDS = 2.0
BACKOFF_CAP_SECONDS = 1800.0


def backoff_ceiling(attempt: int) -> float:
    """The longest wait after failed try number `attempt`: 2 s, 4 s, 8 s ... capped at 30 min."""
    exponent = min(max(attempt - 1, 0), 30)  # 2**30 s is far past the cap already
    return min(BACKOFF_BASE_SECONDS * 2.0**exponent, BACKOFF_CAP_SECONDS)


def retry_delay(attempt: int, jitter: float = 1.0, *, retry_after: float | None = None) -> float:
    """Seconds to wait before the next try after failed try number `attempt`.

    Exponential backoff with "equal jitter": uniformly between half the ceiling and the
    ceiling (`jitter`, a uniform draw in [0, 1], picks where), so workers that failed
    together do not come back together, yet the wait still grows with every try. Never
    shorter than the provider's `retry_after`, never longer than the cap.
    """
    ceiling = backoff_ceiling(attempt)
    share = min(max(jitter, 0.0), 1.0)
    delay = ceiling / 2 + ceiling / 2 * share
    if retry_after is not None and retry_after > 0:
        delay = max(delay, retry_after)
    return min(delay, BACKOFF_CAP_SECONDS)


def heartbeat_interval(stuck_after_seconds: float) -> float:
    """How often a worker part-way through a batch re-stamps the rows it still holds, so
    the sweeper (which takes back rows `sending` for longer than `stuck_after`) never takes
    a live worker's rows: well inside the threshold, and at most every 10 s."""
    return max(min(10.0, stuck_after_seconds / 4), 0.05)


# --- provider receipts (status callbacks) ---------------------------------------------------

# Twilio's message statuses, in the order a message moves through them. A callback never
# moves the stored status backwards: callbacks can arrive out of order or twice.
PROVIDER_STATUS_RANK: dict[str, int] = {
    "accepted": 0,
    "scheduled": 0,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 4,
    "undelivered": 4,
    "failed": 4,
    "canceled": 4,
    "read": 5,
}


def provider_status_advances(current: str | None, new: str) -> bool:
    """Whether `new` may replace the stored provider status `current`."""
    if new not in PROVIDER_STATUS_RANK:
        return False
    if current is None or current not in PROVIDER_STATUS_RANK:
        return True
    return PROVIDER_STATUS_RANK[new] > PROVIDER_STATUS_RANK[current]


def receipt_target(provider_status: str) -> DeliveryStatus | None:
    """The delivery state a provider status moves a delivery to, if any."""
    if provider_status in ("delivered", "read"):
        return DeliveryStatus.delivered
    if provider_status in ("undelivered", "failed"):
        return DeliveryStatus.failed
    return None


# Receipt error codes (Twilio 30xxx) that say the number itself is wrong or refuses us; the
# contact is flagged for them. 30003 (handset off or out of coverage) and 30007 (carrier
# filtering) are not the recipient's fault and flag nobody.
TWILIO_RECEIPT_RECIPIENT_CODES: dict[int, str] = {
    30004: "the phone or its network blocks our messages",
    30005: "the mobile number is unknown or no longer in service",
    30006: "the number cannot receive texts (a landline, or no network reaches it)",
}
