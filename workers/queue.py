"""The TaskQueue port over Celery: send tasks by name, so the web never imports task code."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import TypeVar

import redis

from ldis.settings import Settings
from workers.celery_factory import QUEUES, STANDARD_QUEUE, URGENT_QUEUE, make_celery
from workers.detection_queue import pending_detections

log = logging.getLogger(__name__)

T = TypeVar("T")


def chunks(items: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class CeleryTaskQueue:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._celery = make_celery(settings)

    @staticmethod
    def _queue(urgent: bool) -> str:
        return URGENT_QUEUE if urgent else STANDARD_QUEUE

    def enqueue_fan_out(self, alert_id: int, version: int, *, urgent: bool) -> None:
        self._celery.send_task(
            "ldis.fan_out", args=[alert_id, version, urgent], queue=self._queue(urgent)
        )

    def enqueue_deliveries(
        self, delivery_ids: list[int], *, urgent: bool, countdown: float = 0
    ) -> None:
        for batch in chunks(delivery_ids, self._settings.delivery_batch_size):
            self._celery.send_task(
                "ldis.deliver_batch",
                args=[batch, urgent],
                queue=self._queue(urgent),
                countdown=countdown or None,
            )

    def enqueue_cluster_detection(self, report_ids: list[int]) -> None:
        # Coalesced (workers/detection_queue.py): while a detection task waits, new reports
        # join it rather than queue one task each ahead of standard alerts' deliveries.
        pending = pending_detections(self._settings)
        if pending is not None:
            try:
                if not pending.add(report_ids):
                    return
            except redis.RedisError as exc:
                log.warning("cluster detection not coalesced: Redis %s", type(exc).__name__)
        # Standard queue: detection must never delay an urgent alert's delivery.
        self._celery.send_task("ldis.detect_clusters", args=[report_ids], queue=STANDARD_QUEUE)

    def enqueue_notices(self, notice_ids: list[int], *, countdown: float = 0) -> None:
        # Urgent queue: a person is often waiting for a verification code.
        for batch in chunks(notice_ids, self._settings.delivery_batch_size):
            self._celery.send_task(
                "ldis.send_notices", args=[batch], queue=URGENT_QUEUE, countdown=countdown or None
            )

    def ping(self) -> None:
        with self._celery.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=2)

    def depths(self) -> dict[str, int]:
        """Messages waiting in each queue, not counting those workers hold unacknowledged:
        the lengths of the queue's lists on Redis (every priority level; kombu's own passive
        declare there ignores LDIS_BROKER_PREFIX), a passive declare's count on RabbitMQ."""
        depths: dict[str, int] = {}
        with self._celery.connection_for_read() as connection:
            connection.ensure_connection(max_retries=1, timeout=2)
            for name in QUEUES:
                channel = connection.channel()
                try:
                    size = getattr(channel, "_size", None)  # kombu's virtual transports
                    if size is not None:
                        depths[name] = int(size(name))
                    else:
                        depths[name] = int(channel.queue_declare(queue=name, passive=True)[1])
                except Exception as exc:  # no such queue yet: nothing has been sent to it
                    if "NOT_FOUND" not in str(exc):
                        raise
                    depths[name] = 0
                finally:
                    with contextlib.suppress(Exception):  # the broker may have closed it
                        channel.close()
        return depths
