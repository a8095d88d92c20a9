"""A rendered message on its way to one contact through one channel, and what came back."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


@dataclass(frozen=True)
class OutgoingMessage:
    delivery_id: int
    channel: str
    to: str
    text: str
    subject: str | None = None
    html: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


class SendOutcome(StrEnum):
    sent = "sent"
    transient_error = "transient_error"  # try again later (5xx, 429, timeouts)
    permanent_error = "permanent_error"  # never retry (invalid number, unsubscribed)


@dataclass(frozen=True)
class SendResult:
    outcome: SendOutcome
    provider_id: str | None = None
    error: str | None = None
