"""What the use cases need from the outside world, as small protocols the adapters satisfy."""

from __future__ import annotations

from typing import Protocol

from ldis.domain.messages import OutgoingMessage, SendResult


class TaskQueue(Protocol):
    def enqueue_fan_out(self, alert_id: int, version: int, *, urgent: bool) -> None: ...

    def enqueue_deliveries(
        self, delivery_ids: list[int], *, urgent: bool, countdown: float = 0
    ) -> None: ...

    def enqueue_cluster_detection(self, report_ids: list[int]) -> None: ...

    def enqueue_notices(self, notice_ids: list[int], *, countdown: float = 0) -> None: ...

    def ping(self) -> None: ...


class Sender(Protocol):
    """One delivery channel (SMS provider, SMTP, the local outbox)."""

    def send_many(self, messages: list[OutgoingMessage]) -> list[SendResult]: ...
