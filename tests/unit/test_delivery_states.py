"""Delivery state moves and backoff."""

from __future__ import annotations

from ldis.domain.deliveries import DeliveryStatus, can_move, retry_delay, sources_of


def test_final_states_are_final() -> None:
    for final in (DeliveryStatus.delivered, DeliveryStatus.failed):
        assert not any(can_move(final, target) for target in DeliveryStatus)


def test_only_a_queued_delivery_can_be_claimed() -> None:
    assert sources_of(DeliveryStatus.sending) == {DeliveryStatus.queued}


def test_backoff_grows_and_is_capped() -> None:
    delays = [retry_delay(n) for n in range(1, 12)]
    assert delays[:3] == [10, 20, 40]
    assert delays == sorted(delays) and max(delays) == 1800
