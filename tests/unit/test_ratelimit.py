"""Token bucket maths (`workers.ratelimit.take`) and the process-local bucket, on a fake clock."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from workers.ratelimit import (
    MAX_BLOCK,
    MIN_NAP_SECONDS,
    Bucket,
    LocalBucket,
    block_for,
    capacity_for,
    is_urgent,
    take,
    take_block,
    urgency,
)

rates = st.floats(min_value=0.1, max_value=1000.0)
gaps = st.lists(st.floats(min_value=0.0, max_value=5.0), min_size=1, max_size=200)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_new_bucket_is_full_then_refills_at_the_rate() -> None:
    state, wait = take(None, 0.0, rate=10, capacity=10)
    assert (state.tokens, wait) == (9, 0)
    for _ in range(9):
        state, wait = take(state, 0.0, rate=10, capacity=10)
        assert wait == 0
    state, wait = take(state, 0.0, rate=10, capacity=10)
    assert state.tokens == 0 and wait == 0.1  # one token comes every 1/rate seconds
    state, wait = take(state, 0.1, rate=10, capacity=10)
    assert wait == 0


def test_refill_never_exceeds_the_capacity_nor_runs_backwards() -> None:
    state, _ = take(Bucket(tokens=0, at=0), 3600, rate=10, capacity=5)
    assert state.tokens == 4  # full at 5, one taken
    state, wait = take(Bucket(tokens=0.5, at=10), 5, rate=10, capacity=5)
    assert state.tokens == 0.5 and wait > 0  # the clock went back: no free tokens


@given(rates, gaps)
def test_never_more_than_the_burst_plus_the_rate_over_any_stretch(
    rate: float, arrivals: list[float]
) -> None:
    capacity = capacity_for(rate)
    state, now, granted = None, 0.0, []
    for gap in arrivals:
        now += gap
        state, wait = take(state, now, rate=rate, capacity=capacity)
        if wait == 0:
            granted.append(now)
    for i, start in enumerate(granted):
        for j in range(i, len(granted)):
            # tokens handed out in [start, granted[j]]
            assert j - i + 1 <= capacity + (granted[j] - start) * rate + 1e-6


@given(rates, st.floats(min_value=0.0, max_value=1.0), st.floats(min_value=0.0, max_value=10))
def test_the_wait_is_exactly_what_it_takes(rate: float, tokens: float, at: float) -> None:
    capacity = capacity_for(rate)
    state, wait = take(Bucket(tokens, at), at, rate=rate, capacity=capacity)
    if tokens >= 1:
        assert wait == 0
    else:
        assert wait > 0
        _, again = take(state, at + wait + 1e-9, rate=rate, capacity=capacity)
        assert again == 0


@given(rates, st.integers(min_value=1, max_value=300))
def test_a_local_bucket_paces_a_burst_to_the_rate(rate: float, messages: int) -> None:
    clock = Clock()
    bucket = LocalBucket(rate, clock=clock, sleep=clock.sleep)
    for _ in range(messages):
        bucket.acquire()
    elapsed = clock.now - 1000.0
    expected = max(0.0, (messages - bucket.capacity) / rate)
    # Naps are at most 0.25 s; at least 1 ms, which a full bucket of one token cannot bank.
    assert expected - 1e-6 <= elapsed <= expected + 0.25 + messages * MIN_NAP_SECONDS + 1e-6


def test_urgency_is_scoped() -> None:
    assert not is_urgent()
    with urgency(True):
        assert is_urgent()
        with urgency(False):
            assert not is_urgent()
        assert is_urgent()
    assert not is_urgent()


@given(rates, gaps, st.integers(min_value=1, max_value=MAX_BLOCK))
def test_blocks_never_hand_out_more_than_the_burst_plus_the_rate(
    rate: float, arrivals: list[float], want: int
) -> None:
    capacity = capacity_for(rate)
    state, now, taken = None, 0.0, []  # (time, tokens)
    for gap in arrivals:
        now += gap
        state, granted, wait = take_block(state, now, rate=rate, capacity=capacity, want=want)
        assert 0 <= granted <= want
        assert (granted == 0) == (wait > 0)
        if granted:
            taken.append((now, granted))
    for i, (start, _) in enumerate(taken):
        total = 0
        for at, granted in taken[i:]:
            total += granted
            assert total <= capacity + (at - start) * rate + 1e-6


def test_a_block_takes_what_there_is_and_only_high_rates_use_blocks() -> None:
    state, granted, wait = take_block(Bucket(3.5, 0.0), 0.0, rate=10, capacity=10, want=5)
    assert (granted, wait, state.tokens) == (3, 0.0, 0.5)
    state, granted, wait = take_block(state, 0.0, rate=10, capacity=10, want=5)
    assert granted == 0 and abs(wait - 0.05) < 1e-9
    assert block_for(50, capacity_for(50)) == 1  # a real Twilio rate: one token a call
    assert block_for(5000, capacity_for(5000)) == MAX_BLOCK
    assert block_for(5000, 3) == 3  # never more than the burst
