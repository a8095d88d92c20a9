"""One-time codes that prove a contact holds an address before anything is sent to it.

Only an HMAC of the code is stored (keyed with the instance secret and bound to the contact
and channel), so a database reader cannot verify someone else's number, and a code sent
for one contact's phone cannot verify another's.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

CODE_DIGITS = 6
CODE_LIFETIME = timedelta(hours=24)
MAX_ATTEMPTS = 5  # wrong guesses before the code is void and a new one must be sent


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def code_hash(secret: str, contact_id: int, channel: str, code: str) -> str:
    message = f"{contact_id}:{channel}:{code.strip()}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def code_matches(
    secret: str,
    contact_id: int,
    channel: str,
    code: str,
    stored_hash: str | None,
    sent_at: datetime | None,
    attempts: int,
    now: datetime,
) -> bool:
    """True when `code` is the live code for this contact's channel."""
    if stored_hash is None or sent_at is None or attempts >= MAX_ATTEMPTS:
        return False
    if now - sent_at > CODE_LIFETIME:
        return False
    return hmac.compare_digest(stored_hash, code_hash(secret, contact_id, channel, code))
