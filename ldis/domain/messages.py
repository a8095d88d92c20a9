"""A rendered message on its way to one contact through one channel, and what came back."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


@dataclass(frozen=True)
class OutgoingMessage:
    """An alert delivery (`delivery_id`) or a service notice (`notice_id`): exactly one is set."""

    delivery_id: int | None
    channel: str
    to: str
    text: str
    subject: str | None = None
    html: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    notice_id: int | None = None

    @property
    def ref(self) -> str:
        """A stable name for logs and message ids, e.g. `delivery-12` or `notice-3`."""
        if self.delivery_id is not None:
            return f"delivery-{self.delivery_id}"
        return f"notice-{self.notice_id}"


class SendOutcome(StrEnum):
    sent = "sent"
    transient_error = "transient_error"  # try again later (5xx, 429, timeouts)
    permanent_error = "permanent_error"  # never retry (invalid number, unsubscribed)


@dataclass(frozen=True)
class SendResult:
    outcome: SendOutcome
    provider_id: str | None = None
    error: str | None = None
