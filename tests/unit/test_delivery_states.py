"""Delivery state moves, backoff with jitter, and what receipts may do."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ldis.domain.deliveries import (
    BACKOFF_CAP_SECONDS,
    FINAL_STATES,
    PROVIDER_STATUS_RANK,
    DeliveryStatus,
    backoff_ceiling,
    can_move,
    heartbeat_interval,
    provider_status_advances,
    receipt_target,
    retry_delay,
    sources_of,
)

attempts = st.integers(min_value=1, max_value=60)
jitters = st.floats(min_value=0.0, max_value=1.0)


def test_final_states_are_final() -> None:
    for final in FINAL_STATES:
        assert not any(can_move(final, target) for target in DeliveryStatus)


def test_only_a_queued_delivery_can_be_claimed() -> None:
    assert sources_of(DeliveryStatus.sending) == {DeliveryStatus.queued}


def test_a_receipt_never_reopens_or_unsends() -> None:
    # delivered only after the provider had it; failed never from a final state
    assert sources_of(DeliveryStatus.delivered) == {DeliveryStatus.sending, DeliveryStatus.sent}
    assert not sources_of(DeliveryStatus.failed) & FINAL_STATES


def test_backoff_ceiling_doubles_from_two_seconds_to_the_cap() -> None:
    assert [backoff_ceiling(n) for n in (1, 2, 3, 4)] == [2, 4, 8, 16]
    assert backoff_ceiling(12) == BACKOFF_CAP_SECONDS == backoff_ceiling(10_000)
    assert retry_delay(1, 1.0) == 2 and retry_delay(1, 0.0) == 1


@given(attempts, jitters)
def test_delay_is_within_half_the_ceiling_and_the_ceiling(attempt: int, jitter: float) -> None:
    delay = retry_delay(attempt, jitter)
    ceiling = backoff_ceiling(attempt)
    assert ceiling / 2 <= delay <= ceiling <= BACKOFF_CAP_SECONDS


@given(attempts, jitters, jitters)
def test_delay_grows_with_attempts_until_the_cap(attempt: int, a: float, b: float) -> None:
    # Equal jitter: the next try's shortest wait is this try's longest, so the wait grows
    # whatever the two draws, until the cap; with the same draw it never shrinks at all.
    if backoff_ceiling(attempt + 1) < BACKOFF_CAP_SECONDS:
        assert retry_delay(attempt + 1, b) >= retry_delay(attempt, a)
        assert retry_delay(attempt + 1, a) > retry_delay(attempt, a)
    assert retry_delay(attempt + 1, a) >= retry_delay(attempt, a)


@given(attempts, jitters, st.floats(min_value=0.0, max_value=10_000.0))
def test_the_providers_retry_after_is_a_floor_under_the_cap(
    attempt: int, jitter: float, retry_after: float
) -> None:
    delay = retry_delay(attempt, jitter, retry_after=retry_after)
    assert delay >= min(retry_after, BACKOFF_CAP_SECONDS)
    assert delay >= retry_delay(attempt, jitter)
    assert delay <= BACKOFF_CAP_SECONDS


@given(st.floats(min_value=0.01, max_value=100_000))
def test_heartbeat_well_inside_the_stuck_threshold(stuck_after: float) -> None:
    beat = heartbeat_interval(stuck_after)
    assert 0 < beat <= 10
    assert beat <= stuck_after / 4 or beat == 0.05


def test_receipt_statuses_only_move_forward() -> None:
    assert provider_status_advances(None, "queued")
    assert provider_status_advances("sent", "delivered")
    assert not provider_status_advances("delivered", "sent")
    assert not provider_status_advances("delivered", "delivered")  # a repeat changes nothing
    assert not provider_status_advances("delivered", "undelivered")  # one final word
    assert not provider_status_advances("sent", "something-new")
    assert receipt_target("delivered") is DeliveryStatus.delivered
    assert receipt_target("undelivered") is receipt_target("failed") is DeliveryStatus.failed
    assert all(
        receipt_target(s) is None for s in PROVIDER_STATUS_RANK if PROVIDER_STATUS_RANK[s] < 4
    )
