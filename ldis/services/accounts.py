"""Users, their passwords and their API tokens: create them, change a password, and find
who a bearer token belongs to (and which of their roles the token may use)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from ldis.domain.errors import Conflict, NotFound, ValidationFailed
from ldis.domain.passwords import MIN_LENGTH, is_locked, password_problem
from ldis.domain.principal import Principal
from ldis.domain.recipients import normalise_email
from ldis.domain.roles import Role
from ldis.services import audit
from ldis.services.sessions import hash_password, password_matches, register_failure
from ldis.store.db import Database
from ldis.store.models import ApiToken, User, UserRole

MIN_PASSWORD_LENGTH = MIN_LENGTH
TOKEN_PREFIX = "ldis_"  # noqa: S105 (a public prefix, not a secret)
# Writing last_used_at on every request would turn each read into a write; once a minute is
# plenty for "when was this token last used".
LAST_USED_GRANULARITY = timedelta(minutes=1)
MAX_LABEL = 100


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_password(password: str, *, email: str, name: str, field: str = "password") -> None:
    """Raise ValidationFailed naming `field` when the policy refuses the password."""
    problem = password_problem(password, email=email, name=name)
    if problem is not None:
        raise ValidationFailed({field: problem})


def create_user(
    db: Database,
    *,
    email: str,
    name: str,
    roles: frozenset[Role],
    password: str | None = None,
    partnership_id: int | None = None,
    host_operator: bool = False,
) -> int:
    """A new user of `partnership_id` (by default the partnership acting, or the default
    one); `host_operator`: of none, seeing every partnership's data (only on purpose)."""
    try:
        email = normalise_email(email).lower()
    except ValueError as exc:
        raise ValidationFailed({"email": str(exc)}) from None
    if not name.strip():
        raise ValidationFailed({"name": "must not be empty"})
    if not roles:
        raise ValidationFailed({"role": "give at least one role"})
    if password is not None:
        check_password(password, email=email, name=name)
    with db.transaction() as session:
        if session.scalar(select(User.id).where(User.email == email)) is not None:
            raise Conflict(f"A user with e-mail {email} already exists.")
        user = User(
            email=email,
            name=name.strip(),
            password_hash=hash_password(password) if password else None,
            password_changed_at=datetime.now(UTC) if password else None,
            roles=[UserRole(role=role.value) for role in sorted(roles)],
        )
        if partnership_id is not None:
            user.partnership_id = partnership_id
        session.add(user)
        try:
            session.flush()
        except IntegrityError:  # an address of another partnership's (unseen), or a race
            raise Conflict(f"A user with e-mail {email} already exists.") from None
        if host_operator:  # an INSERT leaves a None out (the column default would apply)
            session.execute(update(User).where(User.id == user.id).values(partnership_id=None))
        audit.record(
            session,
            actor_id=None,
            action="user.created",
            entity="user",
            entity_id=user.id,
            roles=sorted(role.value for role in roles),
        )
        return user.id


def store_password(session: Session, user: User, password: str, now: datetime) -> None:
    """Set a new password (already checked against the policy). Every web session signed
    in before `now` ends, and any lockout is lifted."""
    user.password_hash = hash_password(password)
    user.password_changed_at = now
    user.failed_logins = 0
    user.locked_until = None


def change_password(
    db: Database,
    user_id: int,
    *,
    current: str,
    new: str,
    now: datetime | None = None,
) -> datetime:
    """Change your own password; return when (the session that did it stays signed in,
    every other one ends). A wrong current password counts towards the lockout."""
    now = now or datetime.now(UTC)
    with db.transaction() as session:
        user = session.get(User, user_id)
        if user is None or not user.active:
            raise NotFound("No such user.")
        locked = is_locked(user.locked_until, now)
        matched = password_matches(None if locked else user.password_hash, current)
        if not matched and not locked:
            register_failure(session, user.id, now, what="password_change")
    if locked:
        raise ValidationFailed(
            {"current_password": "cannot be checked now: too many wrong tries, wait a while"}
        )
    if not matched:  # raised after the commit, so the failure is counted
        raise ValidationFailed({"current_password": "is not your current password"})
    check_password(new, email=user.email, name=user.name, field="new_password")
    if new == current:
        raise ValidationFailed({"new_password": "must be different from your current password"})
    with db.transaction() as session:
        user = session.get(User, user_id)
        if user is None:
            raise NotFound("No such user.")
        store_password(session, user, new, now)
        audit.record(
            session,
            actor_id=user.id,
            action="user.password_changed",
            entity="user",
            entity_id=user.id,
        )
    return now


def _scopes(user: User, scopes: Iterable[Role | str] | None) -> list[str]:
    try:
        chosen = sorted({Role(str(s).strip().lower()).value for s in scopes or ()})
    except ValueError:
        allowed = ", ".join(role.value for role in Role)
        raise ValidationFailed({"scope": f"use one of: {allowed}"}) from None
    outside = [s for s in chosen if s not in user.role_names]
    if outside:
        raise ValidationFailed(
            {"scope": f"{', '.join(outside)}: not one of this user's roles"},
            "A token can only be scoped to roles its user holds.",
        )
    return chosen


def _new_token(
    session: Session, user: User, label: str, scopes: Iterable[Role | str] | None
) -> str:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        user_id=user.id,
        label=label.strip()[:MAX_LABEL] or "token",
        token_hash=_token_hash(token),
        scopes=_scopes(user, scopes),
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
        scopes=row.scopes,
    )
    return token


def create_token(
    db: Database, *, email: str, label: str = "cli", scopes: Iterable[Role | str] | None = None
) -> str:
    """Make a new token for the user; return it. Only its hash is kept. `scopes`: the roles
    it may act with (a subset of the user's); none means all of them."""
    with db.transaction() as session:
        user = session.scalar(select(User).where(User.email == email.strip().lower()))
        if user is None:
            raise NotFound(f"No user with e-mail {email}.")
        return _new_token(session, user, label, scopes)


def create_own_token(
    db: Database, principal: Principal, *, label: str, scopes: Iterable[Role | str] | None
) -> str:
    """A signed-in person makes a token for themselves (the tokens page)."""
    if not label.strip():
        raise ValidationFailed({"label": "give the token a name, e.g. the script that uses it"})
    if len(label.strip()) > MAX_LABEL:
        raise ValidationFailed({"label": f"must be {MAX_LABEL} characters or fewer"})
    with db.transaction() as session:
        user = session.get(User, principal.user_id)
        if user is None or not user.active:
            raise NotFound("No such user.")
        return _new_token(session, user, label, scopes)


def list_tokens(db: Database, principal: Principal) -> list[dict[str, Any]]:
    """The person's own tokens, newest first (never the token itself: only its hash is kept)."""
    with db.transaction() as session:
        rows = session.scalars(
            select(ApiToken)
            .where(ApiToken.user_id == principal.user_id)
            .order_by(ApiToken.revoked_at.is_not(None), ApiToken.id.desc())
        )
        return [
            {
                "id": row.id,
                "label": row.label,
                "scopes": list(row.scopes or []),
                "created_at": row.created_at.isoformat(),
                "last_used_at": row.last_used_at.isoformat() if row.last_used_at else None,
                "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
            }
            for row in rows
        ]


def revoke_token(
    db: Database, principal: Principal, token_id: int, *, now: datetime | None = None
) -> None:
    """Revoke one of your own tokens: it stops working at once (401)."""
    now = now or datetime.now(UTC)
    with db.transaction() as session:
        row = session.get(ApiToken, token_id)
        if row is None or row.user_id != principal.user_id:
            raise NotFound("No such token.")
        if row.revoked_at is not None:
            return
        row.revoked_at = now
        audit.record(
            session,
            actor_id=principal.user_id,
            action="token.revoked",
            entity="api_token",
            entity_id=row.id,
            label=row.label,
        )


def principal_for_token(
    db: Database, token: str, *, now: datetime | None = None
) -> Principal | None:
    """The active user behind a live token, with only the roles both the user holds and
    the token is scoped to, or None. Touches last_used_at at most once a minute."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    now = now or datetime.now(UTC)
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
        names = row.user.role_names
        if row.scopes:
            names = names & frozenset(row.scopes)
        roles = frozenset(Role(name) for name in names if name in Role.__members__)
        return Principal(
            user_id=row.user.id,
            email=row.user.email,
            roles=roles,
            partnership_id=row.user.partnership_id,
        )
