"""Web sign-in: check an e-mail and password, and load who a signed-in user is now.

Minimal on purpose: two-factor sign-in, lockout and password reset come with a later issue.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update

from ldis.domain.principal import Principal
from ldis.domain.roles import Role
from ldis.services import audit
from ldis.store.db import Database
from ldis.store.models import User

_hasher = PasswordHasher()
_dummy_hash: str | None = None
MAX_PASSWORD_LENGTH = 1024  # argon2 is slow on purpose; do not let a megabyte in


def _dummy() -> str:
    """A hash to verify against when there is no such user, so the answer takes as long."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash("ldis: no such user, nothing to find here")
    return _dummy_hash


def _principal(user: User) -> Principal:
    roles = frozenset(Role(name) for name in user.role_names if name in Role.__members__)
    return Principal(user_id=user.id, email=user.email, roles=roles)


def verify_password(db: Database, email: str, password: str) -> Principal | None:
    """The active user with this e-mail and password, or None (never says which was wrong)."""
    email = email.strip().lower()
    if not email or not password or len(password) > MAX_PASSWORD_LENGTH:
        return None
    with db.transaction() as session:
        user = session.scalar(select(User).where(User.email == email))
        stored = user.password_hash if user is not None and user.active else None
        try:
            _hasher.verify(stored or _dummy(), password)
            matched = stored is not None
        except (VerificationError, InvalidHashError):
            matched = False
        if not matched or user is None or stored is None:
            return None
        if _hasher.check_needs_rehash(stored):
            session.execute(
                update(User).where(User.id == user.id).values(password_hash=_hasher.hash(password))
            )
        audit.record(
            session, actor_id=user.id, action="session.started", entity="user", entity_id=user.id
        )
        return _principal(user)


def principal_for_user(db: Database, user_id: int) -> Principal | None:
    """Who a signed-in user is now: roles are read afresh, so a removed role stops at once."""
    with db.transaction() as session:
        user = session.get(User, user_id)
        if user is None or not user.active:
            return None
        return _principal(user)
