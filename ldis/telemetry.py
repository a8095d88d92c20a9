"""The workers' own figures, shared through Redis so that `/metrics` on any web process sees
every worker on every host: provider outcomes (each message handed to Twilio or SMTP, by
outcome) and worker heartbeats.

Why Redis rather than an in-process Prometheus counter: the worker's sends happen in prefork
children on any number of hosts, while Prometheus scrapes the web. Counts kept in each
process would need a scrape target per worker process; one hash in Redis is shared by all,
survives a worker's restart, and costs one HINCRBY per batch (not per message). The keys are
`{LDIS_BROKER_PREFIX}ldis:telemetry:outcomes` (field `channel:outcome`) and
`...:heartbeats` (field: worker name, value: Unix time).

Without Redis (the embedded broker of `make run`, or RabbitMQ without LDIS_REDIS_URL) these
figures are not kept; everything else in /metrics still is. Recording never fails a send:
Redis errors are logged once a minute and dropped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache

import redis

from ldis.domain.messages import SendOutcome
from ldis.settings import Settings

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 1.0
_WARN_EVERY_SECONDS = 60.0


@dataclass(frozen=True)
class Snapshot:
    outcomes: dict[tuple[str, str], int] = field(default_factory=dict)
    heartbeats: dict[str, float] = field(default_factory=dict)


class Telemetry:
    def __init__(self, url: str, prefix: str) -> None:
        self._client = redis.Redis.from_url(
            url, socket_timeout=TIMEOUT_SECONDS, socket_connect_timeout=TIMEOUT_SECONDS
        )
        self._outcomes = f"{prefix}ldis:telemetry:outcomes"
        self._heartbeats = f"{prefix}ldis:telemetry:heartbeats"
        self._warned_at = 0.0

    def record_outcomes(self, channel: str, counts: Mapping[SendOutcome, int]) -> None:
        nonzero = {outcome.value: n for outcome, n in counts.items() if n}
        if not nonzero:
            return
        try:
            with self._client.pipeline(transaction=False) as pipe:
                for outcome, n in nonzero.items():
                    pipe.hincrby(self._outcomes, f"{channel}:{outcome}", n)
                pipe.execute()
        except redis.RedisError as exc:
            self._warn(exc)

    def heartbeat(self, worker: str, *, now: float | None = None) -> None:
        try:
            self._client.hset(self._heartbeats, worker, repr(now or time.time()))
        except redis.RedisError as exc:
            self._warn(exc)

    def forget(self, worker: str) -> None:
        """A worker shutting down cleanly is no longer expected to beat."""
        try:
            self._client.hdel(self._heartbeats, worker)
        except redis.RedisError as exc:
            self._warn(exc)

    def read(self) -> Snapshot:
        """Raises redis.RedisError when Redis cannot be read (the caller says so in /metrics)."""
        with self._client.pipeline(transaction=False) as pipe:
            pipe.hgetall(self._outcomes)
            pipe.hgetall(self._heartbeats)
            raw_outcomes, raw_beats = pipe.execute()
        outcomes: dict[tuple[str, str], int] = {}
        for key, value in raw_outcomes.items():
            channel, _, outcome = key.decode().partition(":")
            outcomes[(channel, outcome)] = int(value)
        beats = {key.decode(): float(value) for key, value in raw_beats.items()}
        return Snapshot(outcomes, beats)

    def _warn(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._warned_at >= _WARN_EVERY_SECONDS:
            self._warned_at = now
            log.warning("telemetry not recorded: Redis unavailable (%s)", type(exc).__name__)


def for_settings(settings: Settings) -> Telemetry | None:
    url = settings.effective_redis_url
    return _telemetry(url, settings.broker_prefix) if url else None


@cache
def _telemetry(url: str, prefix: str) -> Telemetry:
    return Telemetry(url, prefix)  # one client (and connection pool) per process


# This process's recorder, set by the worker when it builds its channels.
_current: Telemetry | None = None


def use(telemetry: Telemetry | None) -> None:
    global _current
    _current = telemetry


def record_outcomes(channel: str, counts: Mapping[SendOutcome, int]) -> None:
    """Count one batch's provider outcomes (a no-op until `use` has been called)."""
    if _current is not None:
        _current.record_outcomes(channel, counts)
