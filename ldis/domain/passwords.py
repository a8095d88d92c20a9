"""Sign-in rules in plain Python: the password policy, lockout back-off and session time-outs.

The policy follows NIST SP 800-63B rather than character classes: at least 12 and at most
256 characters, not on (or a decorated form of) a list of common and breached passwords,
not easy to guess by the usual patterns (keyboard walks, repeats, sequences, dates, l33t),
and not containing the person's own name or e-mail address.

The list and the pattern estimate come from `zxcvbn` (MIT licence; its "passwords" list is
the 30,000 most common passwords of the Xato/Burnett corpus of leaked passwords), so no
network look-up is made and nothing about a password leaves the process.
"""

from __future__ import annotations

import re
import threading
from datetime import datetime, timedelta
from functools import cache

from zxcvbn import zxcvbn  # type: ignore[import-untyped]
from zxcvbn.frequency_lists import FREQUENCY_LISTS  # type: ignore[import-untyped]

MIN_LENGTH = 12
MAX_LENGTH = 256
# zxcvbn's score: 3 means "safely unguessable: moderate protection from an offline attack
# on a slow hash" (about 10^8 guesses or more). Passwords are hashed with argon2 and sign-in
# locks after repeated failures, so 3 is enough; 4 would refuse many memorable passphrases.
MIN_SCORE = 3
# zxcvbn's matching grows quickly with length; the first 72 characters tell enough.
_ESTIMATE_CHARS = 72
# Name or e-mail parts shorter than this are too common inside words to refuse on.
_MIN_PERSONAL = 3

# zxcvbn keeps the user's inputs in a module-level dictionary while it scores.
_zxcvbn_lock = threading.Lock()
_DECORATION = re.compile(r"^[\W\d_]+|[\W\d_]+$")

# Lockout: the fifth failure in a row locks for a minute, each further one doubles it.
LOCK_AFTER_FAILURES = 5
FIRST_LOCK = timedelta(minutes=1)
LONGEST_LOCK = timedelta(hours=1)


@cache
def _common() -> frozenset[str]:
    return frozenset(word.lower() for word in FREQUENCY_LISTS["passwords"])


def _personal_parts(email: str, name: str) -> list[str]:
    local = email.split("@", 1)[0].lower()
    parts = [local, *re.split(r"[^a-z0-9]+", local)]
    parts += [name.lower(), *re.split(r"\W+", name.lower())]
    return sorted({p for p in parts if len(p) >= _MIN_PERSONAL}, key=len, reverse=True)


def _squashed(text: str) -> str:
    """Letters and digits only, lower case: "Alice.Smith" and "alice smith" look alike."""
    return re.sub(r"[\W_]+", "", text.lower())


def password_problem(password: str, *, email: str = "", name: str = "") -> str | None:
    """What is wrong with `password` for this person, as the end of a sentence starting
    "Password ..." (e.g. "must be at least 12 characters"), or None when it is acceptable."""
    if len(password) < MIN_LENGTH:
        return f"must be at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"must be {MAX_LENGTH} characters or fewer"
    lowered = password.lower()
    squashed = _squashed(password)
    for part in _personal_parts(email, name):
        if part in lowered or _squashed(part) in squashed:
            return "must not contain your name or e-mail address"
    core = _DECORATION.sub("", lowered)
    candidates = {lowered, lowered.strip(), lowered.replace(" ", ""), core, core.replace(" ", "")}
    if candidates & _common():
        return "is on a list of common passwords that attackers try first: choose another"
    with _zxcvbn_lock:
        estimate = zxcvbn(password[:_ESTIMATE_CHARS], user_inputs=[email, name])
    if estimate["score"] < MIN_SCORE:
        warning = str(estimate["feedback"].get("warning") or "").rstrip(".")
        because = f" ({warning[0].lower()}{warning[1:]})" if warning else ""
        return (
            f"is too easy to guess{because}: try a few unrelated words, e.g. a short phrase "
            "only you would think of"
        )
    return None


def lock_duration(failures: int) -> timedelta:
    """How long the account locks after `failures` failures in a row: nothing before the
    fifth, then 1 minute, 2, 4 ... doubling, never more than an hour."""
    if failures < LOCK_AFTER_FAILURES:
        return timedelta(0)
    doublings = min(failures - LOCK_AFTER_FAILURES, 12)  # 2**12 minutes is past the cap
    duration: timedelta = FIRST_LOCK * (2**doublings)
    return min(duration, LONGEST_LOCK)


def locked_until(failures: int, now: datetime) -> datetime | None:
    """When a lock after `failures` failures in a row ends, or None when there is none."""
    duration = lock_duration(failures)
    return now + duration if duration else None


def is_locked(until: datetime | None, now: datetime) -> bool:
    return until is not None and now < until


def session_ended(
    *,
    started_at: float,
    seen_at: float,
    now: float,
    idle: timedelta,
    absolute: timedelta,
) -> str | None:
    """Why a web session has ended at `now` (seconds since the epoch): "absolute" (signed
    in too long ago), "idle" (no request for too long), or None while it is still good."""
    if now - started_at >= absolute.total_seconds() or now < started_at - 60:
        return "absolute"
    if now - seen_at >= idle.total_seconds():
        return "idle"
    return None
