"""Token buckets: at most N messages per second handed to each provider account.

One bucket per provider account (the Twilio account SID; the SMTP host, port and user),
shared by every worker process through Redis (LDIS_REDIS_URL, or the broker when it is
Redis): the refill and the take happen in one Lua script, so two workers can never both
spend the same token. The key is `{LDIS_BROKER_PREFIX}ldis:rate:{channel}:{account}`.

Urgent first: a worker sending an urgent alert marks the bucket busy for a moment on each
take, and standard sends wait while the mark is there, so a large standard fan-out does
not share the provider's rate with an urgent alert (`urgency()` says which is which).

With no Redis (the embedded broker, or RabbitMQ without LDIS_REDIS_URL), each process has
its own bucket: the account then sees up to `concurrency x rate`. If Redis stops answering,
the shared bucket falls back to a process-local one until it answers again, so sending goes
on (a little faster than the limit, never slower) instead of stopping with the broker.

At high rates a process takes its tokens from Redis in blocks (`block_for`: up to
`MAX_BLOCK` at once, when the rate is at least 200/s) and spends them within
`BLOCK_SECONDS`, or lets them lapse: one Lua call per several messages instead of one per
message. The account never sees more than the limit, give or take one block per process
(tokens taken at the end of one stretch and spent at the start of the next); lapsed tokens
make it a little slower, never faster.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import redis

from ldis.settings import Settings

log = logging.getLogger(__name__)

_urgent: contextvars.ContextVar[bool] = contextvars.ContextVar("ldis_urgent", default=False)

# Standard sends keep off an account for this long after an urgent take.
URGENT_HOLD_SECONDS = 1.0
# A waiting sender re-asks at least this often (a token may free up sooner than promised
# when the urgent hold lifts, and a long sleep would hide a dead worker's shutdown).
MAX_NAP_SECONDS = 0.25
MIN_NAP_SECONDS = 0.001
# Tokens taken from Redis at once: a hundredth of a second's worth, at most MAX_BLOCK, so
# only high rates use blocks; unspent, they lapse after BLOCK_SECONDS (an urgent hold
# keeps a standard sender off within that long).
MAX_BLOCK = 25
BLOCK_SHARE = 0.01
BLOCK_SECONDS = 0.1
_FALLBACK_LOG_EVERY_SECONDS = 60.0


@contextlib.contextmanager
def urgency(urgent: bool) -> Iterator[None]:
    """Sends inside this block take tokens as urgent (or standard) messages."""
    token = _urgent.set(urgent)
    try:
        yield
    finally:
        _urgent.reset(token)


def is_urgent() -> bool:
    return _urgent.get()


class Limiter(Protocol):
    def acquire(self) -> None:
        """Block until one message may be handed to the provider."""


@dataclass(frozen=True)
class Bucket:
    """A token bucket's state: `tokens` as of time `at` (seconds)."""

    tokens: float
    at: float


def take(
    state: Bucket | None, now: float, *, rate: float, capacity: float, requested: float = 1.0
) -> tuple[Bucket, float]:
    """Refill the bucket for the time since it was last seen, then take `requested` tokens.

    Returns the new state and 0 when the tokens were taken, or the refilled state and the
    seconds until enough tokens will be there (nothing taken). A new bucket starts full;
    the clock going backwards refills nothing. The Lua script below is this, in Redis.
    """
    if state is None:
        tokens = capacity
    else:
        tokens = min(capacity, state.tokens + max(0.0, now - state.at) * rate)
    if tokens >= requested:
        return Bucket(tokens - requested, now), 0.0
    return Bucket(tokens, now), (requested - tokens) / rate


def take_block(
    state: Bucket | None, now: float, *, rate: float, capacity: float, want: int
) -> tuple[Bucket, int, float]:
    """Like `take`, for up to `want` whole tokens: returns the new state, how many were
    taken (as many as there are, at most `want`) and, when none, the seconds until one
    will be there. The Lua script below is this, in Redis."""
    if state is None:
        tokens = capacity
    else:
        tokens = min(capacity, state.tokens + max(0.0, now - state.at) * rate)
    if tokens >= 1:
        granted = min(want, int(tokens))
        return Bucket(tokens - granted, now), granted, 0.0
    return Bucket(tokens, now), 0, (1 - tokens) / rate


def block_for(rate: float, capacity: float) -> int:
    """How many tokens a process takes from the shared bucket at once."""
    return max(1, min(MAX_BLOCK, int(rate * BLOCK_SHARE), int(capacity)))


def capacity_for(rate: float) -> float:
    """A burst of one second's worth of messages (at least one message)."""
    return max(1.0, rate)


def _nap(wait: float) -> float:
    return min(max(wait, MIN_NAP_SECONDS), MAX_NAP_SECONDS)


class LocalBucket:
    """A bucket in this process (thread-safe)."""

    def __init__(
        self,
        rate: float,
        capacity: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate
        self.capacity = capacity if capacity is not None else capacity_for(rate)
        self._clock = clock
        self._sleep = sleep
        self._state: Bucket | None = None
        self._lock = threading.Lock()

    def try_take(self) -> float:
        """Take a token now and return 0, or return the seconds to wait for one."""
        with self._lock:
            self._state, wait = take(
                self._state, self._clock(), rate=self.rate, capacity=self.capacity
            )
        return wait

    def acquire(self) -> None:
        while (wait := self.try_take()) > 0:
            self._sleep(_nap(wait))


# KEYS[1] the bucket (a hash: tokens, at), KEYS[2] the urgent hold.
# ARGV: rate, capacity, urgent (1 or 0), hold in ms, tokens wanted. Returns the tokens
# taken and the seconds to wait when none, as a string: Lua numbers come back from Redis as
# integers. `take_block` is this in Python.
_TAKE_SCRIPT = """
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local hold_ms = tonumber(ARGV[4])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
if ARGV[3] == '1' then
  redis.call('SET', KEYS[2], '1', 'PX', hold_ms)
else
  local held = redis.call('PTTL', KEYS[2])
  if held > 0 then
    return {0, tostring(held / 1000)}
  end
end
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = capacity
else
  tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
end
local granted = 0
local wait = 0
if tokens >= 1 then
  granted = math.min(tonumber(ARGV[5]), math.floor(tokens))
  tokens = tokens - granted
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate * 1000) + 60000)
return {granted, tostring(wait)}
"""


class RedisBucket:
    """A bucket every worker shares, kept in Redis and taken from atomically."""

    def __init__(
        self,
        client: redis.Redis,
        key: str,
        rate: float,
        capacity: float | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.key = key
        self.rate = rate
        self.capacity = capacity if capacity is not None else capacity_for(rate)
        self.block = block_for(rate, self.capacity)
        self._script = client.register_script(_TAKE_SCRIPT)
        self._sleep = sleep
        self._fallback = LocalBucket(rate, self.capacity, sleep=sleep)
        self._warned_at: float | None = None
        self._lock = threading.Lock()
        self._stash = 0  # tokens of the last block still to spend
        self._stash_until = 0.0

    def try_take(self, *, urgent: bool = False) -> float:
        """Take a token now and return 0, or return the seconds to wait for one."""
        with self._lock:
            if self._stash > 0 and time.monotonic() < self._stash_until:
                self._stash -= 1
                return 0.0
            self._stash = 0
            try:
                granted, wait = self._script(
                    keys=[self.key, self.key + ":urgent"],
                    args=[
                        self.rate,
                        self.capacity,
                        1 if urgent else 0,
                        int(URGENT_HOLD_SECONDS * 1000),
                        self.block,
                    ],
                )
            except redis.RedisError as exc:
                self._warn(exc)
                return self._fallback.try_take()
            if int(granted) > 0:
                self._stash = int(granted) - 1
                self._stash_until = time.monotonic() + BLOCK_SECONDS
                return 0.0
            return float(wait.decode() if isinstance(wait, bytes) else wait)

    def acquire(self) -> None:
        urgent = is_urgent()
        while (wait := self.try_take(urgent=urgent)) > 0:
            self._sleep(_nap(wait))

    def _warn(self, exc: Exception) -> None:
        now = time.monotonic()
        if self._warned_at is None or now - self._warned_at > _FALLBACK_LOG_EVERY_SECONDS:
            self._warned_at = now
            log.warning(
                "rate limit %s: Redis unavailable (%s); this process limits itself meanwhile",
                self.key,
                type(exc).__name__,
            )


def bucket_key(settings: Settings, channel: str, account: str) -> str:
    return f"{settings.broker_prefix}ldis:rate:{channel}:{account}"


def limiter_for(settings: Settings, channel: str, account: str, rate: float) -> Limiter:
    """The bucket for one provider account: shared through Redis (LDIS_REDIS_URL, or the
    broker when it is Redis), otherwise local to this process."""
    url = settings.effective_redis_url
    if not url:
        return LocalBucket(rate)
    client = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
    return RedisBucket(client, bucket_key(settings, channel, account), rate)
