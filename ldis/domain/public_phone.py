"""A public texter's number: a keyed one-way hash to recognise it (rate limits, finding a
subscription), and, for subscribers only, the number sealed so alerts can be sent to it.

The hash is HMAC-SHA256 under a key derived from LDIS_SECRET_KEY: without the key nobody
can test a guessed number against it (a plain hash of a UK mobile is reversed by trying
all of them). The seal is Fernet under another derived key, so a stolen database alone
reveals no number.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_SEAL_VERSION = "p1"


def _derive(key: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=SHA256(), length=32, salt=None, info=purpose).derive(key.encode())


def phone_hash(phone: str, key: str) -> str:
    """64 hex characters; the same number and key give the same hash."""
    return hmac.new(_derive(key, b"ldis public phone hash"), phone.encode(), "sha256").hexdigest()


def _fernet(key: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(_derive(key, b"ldis public phone seal")))


def seal_phone(phone: str, key: str) -> str:
    return f"{_SEAL_VERSION}:{_fernet(key).encrypt(phone.encode()).decode()}"


def unseal_phone(sealed: str, key: str) -> str:
    """The number inside `sealed`; ValueError when it was changed or sealed with another key."""
    version, _, token = sealed.partition(":")
    if version != _SEAL_VERSION or not token:
        raise ValueError("not a sealed number")
    try:
        return _fernet(key).decrypt(token.encode()).decode()
    except InvalidToken:
        raise ValueError("the sealed number was changed or sealed with another key") from None


def digest_of(text: str) -> str:
    """A short unkeyed digest for keys that only need to be distinct (not secret)."""
    return hashlib.sha256(text.encode()).hexdigest()[:32]
