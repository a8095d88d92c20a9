"""Cluster detection coalesced: reports filed while a detection task is already waiting
join it instead of queuing one task each.

Why: each detection reads the events of the last weeks (`clusters.detect_after`), so one
task per report costs O(reports x history). The 10-minute load test (docs/performance.md)
filed 19 reports a second; one task each left thousands of detection tasks ahead of
standard alerts' deliveries on the standard queue, and fan-outs that took 1.4 s at first
took minutes by the end.

How (Redis, where ldis has it: LDIS_REDIS_URL or a Redis broker): the web adds the new
report ids to a set and sends a task only when it sets the "scheduled" flag (SET NX); the
task clears the flag *before* it pops the set, so a report added after the pop finds the
flag clear and sends a task of its own: no report waits for a task that has already run.
A task lost with the broker leaves the flag to lapse (FLAG_SECONDS) and the hourly
recompute finds its clusters. Without Redis (the embedded broker), or when Redis fails,
every batch of reports gets its own task as before."""

from __future__ import annotations

import logging
from functools import cache

import redis

from ldis.settings import Settings

log = logging.getLogger(__name__)

FLAG_SECONDS = 300  # a waiting task older than this is presumed lost: send another
POP_AT_ONCE = 10_000


class PendingDetections:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._client = client
        self._ids = f"{prefix}ldis:clusters:pending"
        self._flag = f"{prefix}ldis:clusters:scheduled"

    def add(self, report_ids: list[int]) -> bool:
        """Record the reports; True when no task is waiting and the caller must send one."""
        pipe = self._client.pipeline(transaction=True)
        pipe.sadd(self._ids, *report_ids)
        pipe.set(self._flag, "1", nx=True, ex=FLAG_SECONDS)
        _, scheduled = pipe.execute()
        return bool(scheduled)

    def take(self) -> list[int]:
        """Every report waiting for detection, and a clear flag for the next one filed."""
        self._client.delete(self._flag)
        taken: list[int] = []
        while True:
            popped = self._client.spop(self._ids, POP_AT_ONCE)
            if not popped:
                return taken
            assert isinstance(popped, list)
            taken.extend(int(value) for value in popped)


def pending_detections(settings: Settings) -> PendingDetections | None:
    url = settings.effective_redis_url
    return _pending(url, settings.broker_prefix) if url else None


@cache
def _pending(url: str, prefix: str) -> PendingDetections:
    # One client (and connection pool) per process and Redis.
    client = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
    return PendingDetections(client, prefix)
