"""Verification codes: six digits, stored only as a keyed hash bound to contact and channel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ldis.domain.verification import CODE_LIFETIME, MAX_ATTEMPTS, code_hash, code_matches, new_code

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_codes_are_six_digits() -> None:
    codes = {new_code() for _ in range(200)}
    assert all(len(c) == 6 and c.isdigit() for c in codes)
    assert len(codes) > 150  # random, not a counter


def test_a_code_matches_only_its_contact_channel_and_lifetime() -> None:
    stored = code_hash("s", 7, "sms", "123456")
    assert code_matches("s", 7, "sms", " 123456 ", stored, NOW, 0, NOW)
    assert not code_matches("s", 8, "sms", "123456", stored, NOW, 0, NOW)
    assert not code_matches("s", 7, "email", "123456", stored, NOW, 0, NOW)
    assert not code_matches("other-secret", 7, "sms", "123456", stored, NOW, 0, NOW)
    assert not code_matches("s", 7, "sms", "654321", stored, NOW, 0, NOW)
    late = NOW + CODE_LIFETIME + timedelta(seconds=1)
    assert not code_matches("s", 7, "sms", "123456", stored, NOW, 0, late)
    assert not code_matches("s", 7, "sms", "123456", stored, NOW, MAX_ATTEMPTS, NOW)
    assert not code_matches("s", 7, "sms", "123456", None, NOW, 0, NOW)
