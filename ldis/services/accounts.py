"""Users and API tokens: create them, and find who a bearer token belongs to."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from sqlalchemy import select, update
from sqlalchemy.orm import joinedload

from ldis.domain.errors import Conflict, NotFound, ValidationFailed
from ldis.domain.principal import Principal
from ldis.domain.recipients import normalise_email
from ldis.domain.roles import Role
from ldis.services import audit
from ldis.store.db import Database
from ldis.store.models import ApiToken, User, UserRole

MIN_PASSWORD_LENGTH = 12
TOKEN_PREFIX = "ldis_"  # noqa: S105 (a public prefix, not a secret)
# Writing last_used_at on every request would turn each read into a write; once a minute is
# plenty for "when was this token last used".
LAST_USED_GRANULARITY = timedelta(minutes=1)
_hasher = PasswordHasher()


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(
    db: Database, *, email: str, name: str, roles: frozenset[Role], password: str | None = None
) -> int:
    try:
        email = normalise_email(email).lower()
    except ValueError as exc:
        raise ValidationFailed({"email": str(exc)}) from None
    if not name.strip():
        raise ValidationFailed({"name": "must not be empty"})
    if not roles:
        raise ValidationFailed({"role": "give at least one role"})
    if password is not None and len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed({"password": f"must be at least {MIN_PASSWORD_LENGTH} characters"})
    with db.transaction() as session:
        if session.scalar(select(User.id).where(User.email == email)) is not None:
            raise Conflict(f"A user with e-mail {email} already exists.")
        user = User(
            email=email,
            name=name.strip(),
            password_hash=_hasher.hash(password) if password else None,
            roles=[UserRole(role=role.value) for role in sorted(roles)],
        )
        session.add(user)
        session.flush()
        audit.record(
            session,
            actor_id=None,
            action="user.created",
            entity="user",
            entity_id=user.id,
            roles=sorted(role.value for role in roles),
        )
        return user.id


def create_token(db: Database, *, email: str, label: str = "cli") -> str:
    """Make a new token for the user; return it. Only its hash is kept."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with db.transaction() as session:
        user = session.scalar(select(User).where(User.email == email.strip().lower()))
        if user is None:
            raise NotFound(f"No user with e-mail {email}.")
        row = ApiToken(
            user_id=user.id, label=label.strip()[:100] or "token", token_hash=_token_hash(token)
        )
        session.add(row)
        session.flush()
        audit.record(
            session,
            actor_id=user.id,
            action="token.created",
            entity="api_token",
            entity_id=row.id,
            label=row.label,
        )
    return token


def principal_for_token(db: Database, token: str) -> Principal | None:
    """The active user behind a live token, or None. Touches last_used_at at most once a minute."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    now = datetime.now(UTC)
    with db.transaction() as session:
        row = (
            session.execute(
                select(ApiToken)
                # One round trip for token, user and roles: this runs on every API request.
                .options(joinedload(ApiToken.user).joinedload(User.roles))
                .where(ApiToken.token_hash == _token_hash(token), ApiToken.revoked_at.is_(None))
            )
            .unique()
            .scalar_one_or_none()
        )
        if row is None or not row.user.active:
            return None
        if row.last_used_at is None or now - row.last_used_at > LAST_USED_GRANULARITY:
            session.execute(update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now))
        roles = frozenset(Role(name) for name in row.user.role_names if name in Role.__members__)
        return Principal(user_id=row.user.id, email=row.user.email, roles=roles)
