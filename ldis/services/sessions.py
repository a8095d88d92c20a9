"""Web sign-in: check an e-mail and password (with lockout and back-off), say whether a
second factor comes next, and load who a signed-in user is now.

Every refusal looks the same from outside: an unknown e-mail, a wrong password and a locked
account all get None after the same argon2 work, so the answer tells an attacker nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ldis.domain import passwords, two_factor
from ldis.domain.principal import Principal
from ldis.domain.roles import Role
from ldis.services import audit
from ldis.store.db import Database
from ldis.store.models import User

_hasher = PasswordHasher()
_dummy_hash: str | None = None
MAX_PASSWORD_LENGTH = 1024  # argon2 is slow on purpose; do not let a megabyte in

NextStep = Literal["done", "verify", "enrol"]


@dataclass(frozen=True)
class SignIn:
    """A correct password. `next_step`: "done" (signed in), "verify" (ask for a code) or
    "enrol" (panel or admin without two-factor: set it up before anything else)."""

    principal: Principal
    next_step: NextStep


@dataclass(frozen=True)
class SessionUser:
    """What a web request needs to know about the signed-in person, read afresh."""

    principal: Principal
    password_changed_at: datetime | None
    two_factor_on: bool
    two_factor_required: bool


def _dummy() -> str:
    """A hash to verify against when there is no such user, so the answer takes as long."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash("ldis: no such user, nothing to find here")
    return _dummy_hash


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(stored: str | None, password: str) -> bool:
    """Check `password` against `stored` (or a dummy hash, taking as long, when None)."""
    if len(password) > MAX_PASSWORD_LENGTH:
        return False
    try:
        _hasher.verify(stored or _dummy(), password)
    except (VerificationError, InvalidHashError):
        return False
    return stored is not None


def user_principal(user: User) -> Principal:
    roles = frozenset(Role(name) for name in user.role_names if name in Role.__members__)
    return Principal(
        user_id=user.id, email=user.email, roles=roles, partnership_id=user.partnership_id
    )


def register_failure(session: Session, user_id: int, now: datetime, *, what: str) -> None:
    """One more failure in a row (a password or a code); lock with back-off from the fifth."""
    failures = session.execute(
        update(User)
        .where(User.id == user_id)
        .values(failed_logins=User.failed_logins + 1)
        .returning(User.failed_logins)
    ).scalar_one()
    audit.record(
        session,
        actor_id=None,
        action=f"{what}.failed",
        entity="user",
        entity_id=user_id,
        failures=failures,
    )
    until = passwords.locked_until(failures, now)
    if until is not None:
        session.execute(update(User).where(User.id == user_id).values(locked_until=until))
        audit.record(
            session,
            actor_id=None,
            action="user.locked",
            entity="user",
            entity_id=user_id,
            failures=failures,
            until=until.isoformat(),
        )


def signed_in(session: Session, user_id: int, now: datetime, *, method: str) -> None:
    """Sign-in complete: the failure count starts again, and the audit log says how."""
    session.execute(
        update(User)
        .where(User.id == user_id)
        .values(failed_logins=0, locked_until=None, last_login_at=now)
    )
    audit.record(
        session,
        actor_id=user_id,
        action="session.started",
        entity="user",
        entity_id=user_id,
        method=method,
    )


def sign_in(
    db: Database, email: str, password: str, *, now: datetime | None = None
) -> SignIn | None:
    """Check an e-mail and password. None for any refusal (never says which)."""
    now = now or datetime.now(UTC)
    email = email.strip().lower()
    if not email or not password or len(password) > MAX_PASSWORD_LENGTH:
        return None
    with db.transaction() as session:
        user = session.scalar(select(User).where(User.email == email))
        active = user is not None and user.active
        locked = user is not None and passwords.is_locked(user.locked_until, now)
        stored = user.password_hash if user is not None and active and not locked else None
        matched = password_matches(stored, password)
        if user is None or not active:
            audit.record(
                session,
                actor_id=None,
                action="session.failed",
                entity="user",
                entity_id=user.id if user is not None else None,
                reason="unknown" if user is None else "inactive",
            )
            return None
        if locked:
            # Refused without counting: a lock does not grow while nobody can get in.
            audit.record(
                session,
                actor_id=None,
                action="session.refused_locked",
                entity="user",
                entity_id=user.id,
            )
            return None
        if not matched or stored is None:
            register_failure(session, user.id, now, what="session")
            return None
        if _hasher.check_needs_rehash(stored):
            session.execute(
                update(User).where(User.id == user.id).values(password_hash=hash_password(password))
            )
        principal = user_principal(user)
        step: NextStep
        if user.totp_confirmed_at is not None:
            step = "verify"
        elif two_factor.required_for(principal.roles):
            step = "enrol"
        else:
            step = "done"
        if step == "done":
            signed_in(session, user.id, now, method="password")
        else:
            # The failure count is kept until the second factor is given too, so a stolen
            # password cannot reset the lock between guesses at the code.
            audit.record(
                session,
                actor_id=user.id,
                action="session.password_accepted",
                entity="user",
                entity_id=user.id,
                next_step=step,
            )
        return SignIn(principal=principal, next_step=step)


def session_user(db: Database, user_id: int) -> SessionUser | None:
    """Who a signed-in user is now: roles are read afresh, so a removed role stops at once."""
    with db.transaction() as session:
        user = session.get(User, user_id)
        if user is None or not user.active:
            return None
        principal = user_principal(user)
        return SessionUser(
            principal=principal,
            password_changed_at=user.password_changed_at,
            two_factor_on=user.totp_confirmed_at is not None,
            two_factor_required=two_factor.required_for(principal.roles),
        )


def principal_for_user(db: Database, user_id: int) -> Principal | None:
    """Who a signed-in user is now, or None when the account is gone or disabled."""
    found = session_user(db, user_id)
    return found.principal if found is not None else None
