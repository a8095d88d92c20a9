"""Signed links: the fast minter makes exactly itsdangerous's tokens, which it reads back."""

from __future__ import annotations

import zlib
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from itsdangerous import URLSafeSerializer

from ldis.services.links import Links, _Minter

SECRET = "a-test-secret-of-reasonable-length"
ints = st.integers(min_value=-(2**70), max_value=2**70)


@given(value=ints | st.lists(ints, max_size=6))
def test_minted_tokens_are_itsdangerous_tokens(value: Any) -> None:
    serializer = URLSafeSerializer(SECRET, salt="ldis.ack")
    assert _Minter(serializer).dumps(value) == serializer.dumps(value)


@given(value=st.one_of(st.booleans(), st.none(), st.text(), st.lists(st.booleans())))
def test_other_values_take_itsdangerous_own_path(value: Any) -> None:
    # bool is an int to isinstance but JSON's true/false: it must not take the int path.
    serializer = URLSafeSerializer(SECRET, salt="ldis.preferences")
    assert _Minter(serializer).dumps(value) == serializer.dumps(value)


def test_compressible_payloads_match() -> None:
    # Long runs compress: the "." prefix path must match too.
    serializer = URLSafeSerializer(SECRET, salt="ldis.ack")
    value = [111111111111] * 30
    token = _Minter(serializer).dumps(value)
    assert token.startswith(".")
    assert token == serializer.dumps(value)


@given(delivery_id=st.integers(min_value=1, max_value=2**62))
def test_ack_links_round_trip(delivery_id: int) -> None:
    links = Links(SECRET, "https://ldis.example/")
    url = links.ack_url(delivery_id)
    assert url.startswith("https://ldis.example/ack/")
    assert links.delivery_for_ack(url.rsplit("/", 1)[1]) == delivery_id


def test_tokens_do_not_cross_purposes_or_keys() -> None:
    links = Links(SECRET, "https://ldis.example")
    other = Links("another-secret-of-reasonable-length", "https://ldis.example")
    ack = links.ack_token(42)
    preferences = links.preferences_token(42, 3)
    assert links.contact_for_preferences(preferences) == (42, 3)
    assert links.contact_for_preferences(ack) is None
    assert links.delivery_for_ack(preferences) is None
    assert other.delivery_for_ack(ack) is None
    assert links.delivery_for_ack(ack[:-1] + ("A" if ack[-1] != "A" else "B")) is None


@given(payload=st.binary(min_size=1, max_size=10))
def test_zlib_never_wins_on_the_payloads_skipped(payload: bytes) -> None:
    # The minter skips zlib up to ten bytes: itsdangerous would keep them uncompressed.
    assert len(zlib.compress(payload)) >= len(payload) - 1
