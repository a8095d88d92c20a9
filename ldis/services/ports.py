"""What the use cases need from the outside world, as small protocols the adapters satisfy."""

from __future__ import annotations

from collections.abc import Callable, Generator
from datetime import datetime
from typing import Protocol, runtime_checkable

from ldis.domain.messages import OutgoingMessage, SendResult

# Asked before each message of a batch (after its rate-limit token): may it go? False when
# the sweeper has taken the row back (this worker was presumed dead).
Gate = Callable[[OutgoingMessage], bool]


class TaskQueue(Protocol):
    def enqueue_fan_out(self, alert_id: int, version: int, *, urgent: bool) -> None: ...

    def enqueue_deliveries(
        self, delivery_ids: list[int], *, urgent: bool, countdown: float = 0
    ) -> None: ...

    def enqueue_cluster_detection(self, report_ids: list[int]) -> None: ...

    def enqueue_notices(self, notice_ids: list[int], *, countdown: float = 0) -> None: ...

    def ping(self) -> None: ...

    def depths(self) -> dict[str, int]:
        """Messages waiting in each queue (for /metrics); raises when the broker is down."""
        ...


class Sender(Protocol):
    """One delivery channel (SMS provider, SMTP, the local outbox)."""

    def send_many(self, messages: list[OutgoingMessage]) -> list[SendResult]: ...


@runtime_checkable
class StreamingSender(Protocol):
    """A channel that hands back each result as it comes (provider channels)."""

    def send_each(
        self, messages: list[OutgoingMessage], gate: Gate | None = None
    ) -> Generator[tuple[OutgoingMessage, SendResult], None, None]: ...


@runtime_checkable
class Reconciler(Protocol):
    """A channel that can say which messages the provider already has (Twilio)."""

    def find_sent(
        self, messages: list[OutgoingMessage], since: datetime
    ) -> dict[str, str | None]: ...
