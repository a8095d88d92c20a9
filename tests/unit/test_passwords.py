"""The sign-in rules: the password policy (length and known-breached patterns, not character
classes), lockout back-off, session time-outs, and the two-factor rules (TOTP steps, never
the same code twice, recovery codes, freshness, the sealed secret)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyotp
import pytest

from ldis.domain import two_factor
from ldis.domain.passwords import (
    MAX_LENGTH,
    MIN_LENGTH,
    is_locked,
    lock_duration,
    locked_until,
    password_problem,
    session_ended,
)
from ldis.domain.roles import Role

NOW = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)


# The password policy.


@pytest.mark.parametrize(
    "password",
    [
        "correct horse battery staple",
        "a long passphrase here",
        "horse correct staple battery",
        "Lemon tea on the 14:10 to Selby",
        "tram-gravel-umbrella-ink",
        "ñandú ñoño pingüino cigüeña",  # any characters count, no class rules
    ],
)
def test_long_unguessable_passwords_are_accepted(password: str) -> None:
    assert password_problem(password, email="sam@example.org", name="Sam Jones") is None


def test_length_is_checked_not_character_classes() -> None:
    assert password_problem("Tr0ub4dor&3", email="a@b.org") == (
        f"must be at least {MIN_LENGTH} characters"
    )
    assert password_problem("lowercase only words here") is None  # no digit, no capital: fine
    too_long = "wren " * 60
    assert len(too_long) > MAX_LENGTH
    assert password_problem(too_long) == f"must be {MAX_LENGTH} characters or fewer"
    assert password_problem(("wren tide " * 30)[:MAX_LENGTH]) is None


@pytest.mark.parametrize(
    "password",
    [
        "password1234",
        "Password!!!!!!",
        "iloveyou2024!",
        "Summer2024!!",
        "123456789012",  # a run of digits
        "qwertyuiopasdf",  # a keyboard walk
        "aaaaaaaaaaaaaaa",  # a repeat
        "trustno1trustno1",  # a common password, twice
        "abcdefghijklmnop",  # a sequence
    ],
)
def test_common_and_breached_patterns_are_refused(password: str) -> None:
    problem = password_problem(password, email="sam@example.org", name="Sam")
    assert problem is not None
    assert "common passwords" in problem or "too easy to guess" in problem


@pytest.mark.parametrize(
    ("password", "email", "name"),
    [
        ("alice-smith-2024-blue", "alice.smith@example.org", "Alice Smith"),
        ("my name is jonesy really", "sam@example.org", "Sam Jones"),
        ("Marmaduke likes ferry rides", "marmaduke@example.org", "M"),
        ("ferry rides for marma.duke", "marma.duke@example.org", "M D"),
    ],
)
def test_the_persons_name_or_email_is_refused(password: str, email: str, name: str) -> None:
    assert password_problem(password, email=email, name=name) == (
        "must not contain your name or e-mail address"
    )


def test_short_name_parts_do_not_refuse_ordinary_words() -> None:
    # "Al" is in "always": two letters are too common inside words to refuse on.
    assert password_problem("always walking the dales", email="al@example.org", name="Al") is None


# Lockout back-off.


def test_lockout_starts_at_the_fifth_failure_and_doubles_to_an_hour() -> None:
    assert [lock_duration(n) for n in range(5)] == [timedelta(0)] * 5
    minutes = [lock_duration(n).total_seconds() / 60 for n in range(5, 13)]
    assert minutes == [1, 2, 4, 8, 16, 32, 60, 60]
    assert lock_duration(10_000) == timedelta(hours=1)


def test_locked_until_and_is_locked() -> None:
    assert locked_until(4, NOW) is None
    until = locked_until(5, NOW)
    assert until == NOW + timedelta(minutes=1)
    assert is_locked(until, NOW + timedelta(seconds=59))
    assert not is_locked(until, NOW + timedelta(minutes=1))
    assert not is_locked(None, NOW)


# Session time-outs.


def test_a_session_ends_when_idle_or_too_old() -> None:
    idle, absolute = timedelta(minutes=30), timedelta(hours=12)
    start = NOW.timestamp()

    def ended(seen_after: float, now_after: float) -> str | None:
        return session_ended(
            started_at=start,
            seen_at=start + seen_after,
            now=start + now_after,
            idle=idle,
            absolute=absolute,
        )

    assert ended(0, 29 * 60) is None
    assert ended(0, 30 * 60) == "idle"
    assert ended(11 * 3600, 11 * 3600 + 60) is None  # busy all day: still fine
    assert ended(12 * 3600 - 60, 12 * 3600) == "absolute"  # however busy
    assert ended(0, -3600) == "absolute"  # a start in the future is not trusted


# Two-factor.


def test_panel_members_and_admins_need_two_factor() -> None:
    assert two_factor.required_for([Role.panel])
    assert two_factor.required_for({"admin", "reporter"})
    assert not two_factor.required_for([Role.reporter, Role.service_manager])


def test_a_code_is_valid_for_its_step_and_one_either_side_and_never_twice() -> None:
    secret = two_factor.new_secret()
    totp = pyotp.TOTP(secret)
    step = two_factor.time_step(NOW)
    code = totp.at(NOW)
    assert two_factor.matching_step(secret, code, NOW, None) == step
    assert two_factor.matching_step(secret, f"{code[:3]} {code[3:]}", NOW, None) == step
    assert two_factor.matching_step(secret, code, NOW + timedelta(seconds=30), None) == step
    assert two_factor.matching_step(secret, code, NOW + timedelta(seconds=60), None) is None
    assert two_factor.matching_step(secret, code, NOW, step) is None  # used: never again
    older = totp.at(NOW - timedelta(seconds=30))
    assert two_factor.matching_step(secret, older, NOW, step) is None  # older than the last
    assert two_factor.matching_step(secret, older, NOW, None) == step - 1
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    assert two_factor.matching_step(secret, wrong, NOW, None) is None
    assert two_factor.matching_step(secret, "abcdef", NOW, None) is None


def test_recovery_codes_are_ten_distinct_and_easy_to_type() -> None:
    codes = two_factor.new_recovery_codes()
    assert len(codes) == len(set(codes)) == 10
    for code in codes:
        assert len(code) == 11 and code[5] == "-"
        assert two_factor.looks_like_recovery_code(two_factor.normalise_code(code))
        assert two_factor.looks_like_recovery_code(two_factor.normalise_code(code.upper()))
        assert not two_factor.looks_like_totp(two_factor.normalise_code(code))
        assert not set(code) & set("01ilo")


def test_freshness_of_the_second_factor() -> None:
    now = NOW.timestamp()
    assert two_factor.is_fresh(now - 14 * 60, now, 15)
    assert not two_factor.is_fresh(now - 15 * 60, now, 15)
    assert not two_factor.is_fresh(None, now, 15)
    assert not two_factor.is_fresh(now + 600, now, 15)


def test_the_sealed_secret_opens_only_with_its_key_and_unchanged() -> None:
    secret = two_factor.new_secret()
    sealed = two_factor.seal(secret, "key one")
    assert secret not in sealed and len(sealed) <= 300
    assert two_factor.unseal(sealed, "key one") == secret
    assert two_factor.seal(secret, "key one") != sealed  # a new nonce each time
    with pytest.raises(ValueError, match="another key"):
        two_factor.unseal(sealed, "key two")
    version, packed = sealed.split(":")
    flipped = packed[:10] + ("A" if packed[10] != "A" else "B") + packed[11:]
    with pytest.raises(ValueError):
        two_factor.unseal(f"{version}:{flipped}", "key one")
    with pytest.raises(ValueError):
        two_factor.unseal("plain text", "key one")


def test_the_provisioning_uri_names_the_issuer_and_account() -> None:
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    uri = two_factor.provisioning_uri(secret, "sam@example.org")
    assert uri.startswith("otpauth://totp/ldis:sam%40example.org?")
    assert f"secret={secret}" in uri and "issuer=ldis" in uri
    assert two_factor.spaced(secret[:16]) == "JBSW Y3DP EHPK 3PXP"
