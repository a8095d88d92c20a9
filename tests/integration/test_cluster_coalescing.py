"""Cluster detection coalesced through Redis: reports filed while a detection task waits
join it (one task on the queue, not one per report), and a report filed after the task
has taken the waiting ones sends a task of its own, so none is left undetected."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
import redis

from ldis.settings import Settings
from workers.detection_queue import PendingDetections, pending_detections
from workers.queue import CeleryTaskQueue

pytestmark = pytest.mark.integration


@pytest.fixture
def isolated(settings: Settings) -> Iterator[Settings]:
    """The tests' settings with a broker prefix of their own: no worker reads its queues."""
    prefix = f"coalesce-{secrets.token_hex(4)}:"
    yield settings.model_copy(update={"broker_prefix": prefix})
    client = redis.Redis.from_url(settings.effective_redis_url)
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)


def test_one_task_waits_for_many_reports_and_none_is_left_behind(isolated: Settings) -> None:
    pending = pending_detections(isolated)
    assert isinstance(pending, PendingDetections)
    assert pending.add([1, 2]) is True  # nothing waiting: send a task
    assert pending.add([3]) is False and pending.add([2, 4]) is False  # they join it
    assert sorted(pending.take()) == [1, 2, 3, 4]
    # Filed after the task took the waiting ones: a task of its own.
    assert pending.add([5]) is True
    assert pending.take() == [5] and pending.take() == []


def test_a_burst_of_reports_puts_one_detection_task_on_the_queue(isolated: Settings) -> None:
    queue = CeleryTaskQueue(isolated)
    for report_id in range(1, 51):
        queue.enqueue_cluster_detection([report_id])
    assert queue.depths()["standard"] == 1
    pending = pending_detections(isolated)
    assert pending is not None and sorted(pending.take()) == list(range(1, 51))
    queue.enqueue_cluster_detection([51])
    assert queue.depths()["standard"] == 2  # the flag was cleared by the take


def test_without_redis_every_batch_gets_its_own_task(settings: Settings) -> None:
    embedded = settings.model_copy(update={"broker_url": "", "redis_url": ""})
    assert pending_detections(embedded) is None
