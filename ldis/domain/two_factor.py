"""Two-factor rules in plain Python: who needs it, TOTP codes (RFC 6238, 30-second steps,
one step of clock drift either way, never the same step twice), recovery codes, how fresh
a second factor must be, and sealing the TOTP secret at rest."""

from __future__ import annotations

import base64
import hmac
import secrets
from collections.abc import Iterable
from datetime import datetime

import pyotp
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ldis.domain.errors import Forbidden
from ldis.domain.roles import Role

STEP_SECONDS = 30
DRIFT_STEPS = 1  # the step before and after the current one are accepted too
DIGITS = 6
ISSUER = "ldis"
RECOVERY_CODES = 10
# 10 characters from 31 letters and digits without look-alikes (no 0/o, 1/l/i): 49 bits.
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
_RECOVERY_LENGTH = 10
REQUIRED_FOR = frozenset({Role.panel, Role.admin})


class SecondFactorNeeded(Forbidden):
    """An approval or withdrawal without a valid second factor (403 on the API)."""

    code = "second_factor_required"


def required_for(roles: Iterable[Role | str]) -> bool:
    """Panel members and admins must use two-factor sign-in."""
    return any(str(role) in {r.value for r in REQUIRED_FOR} for role in roles)


def new_secret() -> str:
    """A new TOTP secret: 160 random bits as base32 (what authenticator apps expect)."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, email: str) -> str:
    """The otpauth:// URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=email, issuer_name=ISSUER
    )


def spaced(secret: str) -> str:
    """The secret in groups of four, easier to type into an app by hand."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def time_step(now: datetime) -> int:
    return int(now.timestamp()) // STEP_SECONDS


def normalise_code(code: str | None) -> str:
    """What the person typed, without spaces or hyphens, lower case."""
    return "".join(ch for ch in (code or "") if ch not in " -\t").lower()


def looks_like_totp(code: str) -> bool:
    return len(code) == DIGITS and code.isascii() and code.isdigit()


def code_at(secret: str, step: int) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).generate_otp(step)


def matching_step(secret: str, code: str, now: datetime, last_step: int | None) -> int | None:
    """The time step `code` belongs to when it is valid at `now` and newer than the last
    step accepted (a code is never accepted twice), else None."""
    code = normalise_code(code)
    if not looks_like_totp(code):
        return None
    current = time_step(now)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if last_step is not None and step <= last_step:
            continue
        if hmac.compare_digest(code_at(secret, step), code):
            return step
    return None


def new_recovery_codes(count: int = RECOVERY_CODES) -> list[str]:
    """Single-use codes that stand in for the authenticator app, e.g. "k7mqz-8rw2d"."""
    codes = []
    for _ in range(count):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_LENGTH))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def looks_like_recovery_code(code: str) -> bool:
    """A normalised recovery code: 10 characters of the recovery alphabet."""
    return len(code) == _RECOVERY_LENGTH and all(ch in _RECOVERY_ALPHABET for ch in code)


def is_fresh(verified_at: float | None, now: float, minutes: int) -> bool:
    """Whether a second factor given at `verified_at` (seconds since the epoch) still
    counts at `now` for an approval or withdrawal."""
    return verified_at is not None and 0 <= now - verified_at < minutes * 60


# Sealing the TOTP secret at rest with Fernet (AES-128-CBC + HMAC-SHA256, from the
# `cryptography` package), under a key derived by HKDF from LDIS_SECRET_KEY. A stolen
# database without the key does not reveal the secrets, and a changed or swapped value is
# refused rather than used.
_SEAL_VERSION = "v2"


def _fernet(key: str) -> Fernet:
    derived = HKDF(algorithm=SHA256(), length=32, salt=None, info=b"ldis totp secret").derive(
        key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


def seal(secret: str, key: str) -> str:
    """`secret` encrypted and authenticated with a key derived from `key`."""
    return f"{_SEAL_VERSION}:{_fernet(key).encrypt(secret.encode()).decode()}"


def unseal(sealed: str, key: str) -> str:
    """The secret inside `sealed`; ValueError when it was changed or sealed with another key."""
    version, _, token = sealed.partition(":")
    if version != _SEAL_VERSION or not token:
        raise ValueError("not a sealed secret")
    try:
        return _fernet(key).decrypt(token.encode()).decode()
    except InvalidToken:
        raise ValueError("the sealed secret was changed or sealed with another key") from None
