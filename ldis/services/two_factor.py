"""Two-factor sign-in: enrolment (TOTP secret sealed at rest, confirmed by a first code),
checking a code or a recovery code (each accepted once; failures count towards the same
lockout as passwords), recovery codes (10, shown once, stored hashed with argon2), and the
operator's reset from the command line.

`key` is the deployment's secret key (LDIS_SECRET_KEY): the TOTP secrets are sealed with a
key derived from it, so a copy of the database alone does not give them away.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from ldis.domain import passwords
from ldis.domain import two_factor as rules
from ldis.domain.errors import Conflict, NotFound, ValidationFailed
from ldis.domain.principal import Principal
from ldis.services import audit
from ldis.services.sessions import register_failure, signed_in
from ldis.store.db import Database
from ldis.store.models import RecoveryCode, User

log = logging.getLogger(__name__)
# Recovery codes carry ~49 random bits, so argon2 at OWASP's smallest recommended cost
# (19 MiB, 2 passes) is plenty, and checking one against ten hashes stays quick.
_recovery_hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)

Outcome = Literal["ok", "wrong", "missing", "locked", "not_enrolled"]


@dataclass(frozen=True)
class Check:
    """The result of checking a second factor. `method`: "totp" or "recovery_code"."""

    outcome: Outcome
    method: str | None = None
    recovery_codes_left: int | None = None
    locked_until: datetime | None = None


class SecretUnreadable(Conflict):
    """The stored TOTP secret cannot be opened (LDIS_SECRET_KEY changed)."""


def _user(session: Session, user_id: int, *, lock: bool = False) -> User:
    query = select(User).where(User.id == user_id)
    user = session.scalar(query.with_for_update() if lock else query)
    if user is None or not user.active:
        raise NotFound("No such user.")
    return user


def _secret(user: User, key: str) -> str:
    try:
        return rules.unseal(user.totp_secret or "", key)
    except ValueError:
        log.warning("user %s: the TOTP secret cannot be unsealed with this secret key", user.id)
        raise SecretUnreadable(
            "Your two-factor set-up cannot be read (the server's secret key has changed): "
            "ask an administrator to reset it with `ldis users totp --clear`."
        ) from None


def _new_recovery_codes(session: Session, user_id: int, now: datetime) -> list[str]:
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    codes = rules.new_recovery_codes()
    session.add_all(
        RecoveryCode(
            user_id=user_id,
            code_hash=_recovery_hasher.hash(rules.normalise_code(code)),
            created_at=now,
        )
        for code in codes
    )
    return codes


def _codes_left(session: Session, user_id: int) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(RecoveryCode)
            .where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
        )
        or 0
    )


def begin_enrolment(db: Database, user_id: int, *, key: str) -> str:
    """The secret to show for enrolment (the same one until it is confirmed)."""
    with db.transaction() as session:
        user = _user(session, user_id, lock=True)
        if user.totp_confirmed_at is not None:
            raise Conflict("Two-factor sign-in is already set up for this account.")
        if user.totp_secret:
            try:
                return rules.unseal(user.totp_secret, key)
            except ValueError:
                pass  # sealed with an old key: start again
        secret = rules.new_secret()
        user.totp_secret = rules.seal(secret, key)
        audit.record(
            session,
            actor_id=user.id,
            action="two_factor.enrolment_started",
            entity="user",
            entity_id=user.id,
        )
        return secret


def confirm_enrolment(
    db: Database,
    user_id: int,
    code: str,
    *,
    key: str,
    now: datetime | None = None,
    signing_in: bool = False,
) -> tuple[Check, list[str]]:
    """Turn two-factor on with the first code from the app; return the recovery codes
    (shown once). A wrong code counts as a failure towards the lockout."""
    now = now or datetime.now(UTC)
    with db.transaction() as session:
        user = _user(session, user_id, lock=True)
        if user.totp_confirmed_at is not None:
            raise Conflict("Two-factor sign-in is already set up for this account.")
        if not user.totp_secret:
            return Check("not_enrolled"), []
        if passwords.is_locked(user.locked_until, now):
            return Check("locked", locked_until=user.locked_until), []
        normalised = rules.normalise_code(code)
        if not normalised:
            return Check("missing"), []
        step = rules.matching_step(_secret(user, key), normalised, now, None)
        if step is None:
            register_failure(session, user.id, now, what="two_factor")
            session.refresh(user)
            return Check("wrong", locked_until=user.locked_until), []
        user.totp_confirmed_at = now
        user.totp_last_step = step
        codes = _new_recovery_codes(session, user.id, now)
        audit.record(
            session,
            actor_id=user.id,
            action="two_factor.enrolled",
            entity="user",
            entity_id=user.id,
        )
        if signing_in:
            signed_in(session, user.id, now, method="password+totp_enrolment")
        else:
            session.execute(
                update(User).where(User.id == user.id).values(failed_logins=0, locked_until=None)
            )
        return Check("ok", method="totp", recovery_codes_left=len(codes)), codes


def verify(
    db: Database,
    user_id: int,
    code: str | None,
    *,
    key: str,
    purpose: str,
    now: datetime | None = None,
) -> Check:
    """Check a code from the app or a recovery code, each accepted once. `purpose` is
    "sign_in" (completes the sign-in) or what the code is for ("approve", "withdraw" ...)."""
    now = now or datetime.now(UTC)
    with db.transaction() as session:
        try:
            # Locked, so two requests with the same code are serialised and one is refused.
            user = _user(session, user_id, lock=True)
        except NotFound:
            return Check("not_enrolled")
        if user.totp_confirmed_at is None or not user.totp_secret:
            return Check("not_enrolled")
        if passwords.is_locked(user.locked_until, now):
            return Check("locked", locked_until=user.locked_until)
        normalised = rules.normalise_code(code)
        if not normalised:
            return Check("missing")
        method = None
        if rules.looks_like_totp(normalised):
            step = rules.matching_step(_secret(user, key), normalised, now, user.totp_last_step)
            if step is not None:
                user.totp_last_step = step
                method = "totp"
        elif rules.looks_like_recovery_code(normalised):
            unused = session.scalars(
                select(RecoveryCode).where(
                    RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None)
                )
            )
            for row in unused:
                try:
                    _recovery_hasher.verify(row.code_hash, normalised)
                except (VerificationError, InvalidHashError):
                    continue
                row.used_at = now
                method = "recovery_code"
                break
        if method is None:
            register_failure(session, user.id, now, what="two_factor")
            session.refresh(user)
            return Check("wrong", locked_until=user.locked_until)
        session.flush()
        left = _codes_left(session, user.id)
        if purpose == "sign_in":
            signed_in(session, user.id, now, method=f"password+{method}")
        else:
            session.execute(
                update(User).where(User.id == user.id).values(failed_logins=0, locked_until=None)
            )
            audit.record(
                session,
                actor_id=user.id,
                action="two_factor.verified",
                entity="user",
                entity_id=user.id,
                purpose=purpose,
                method=method,
            )
        if method == "recovery_code":
            audit.record(
                session,
                actor_id=user.id,
                action="two_factor.recovery_code_used",
                entity="user",
                entity_id=user.id,
                left=left,
            )
        return Check("ok", method=method, recovery_codes_left=left)


def require_for_api(
    db: Database,
    principal: Principal,
    otp: Any,
    *,
    key: str,
    purpose: str,
    now: datetime | None = None,
) -> None:
    """A bearer token alone cannot approve or withdraw: the body must carry `otp`, a current
    code (or a recovery code) of the token's user, who must have two-factor set up."""
    if otp is not None and not isinstance(otp, str):
        raise ValidationFailed({"otp": 'give the code as a string, e.g. "123456"'})
    check = verify(db, principal.user_id, otp, key=key, purpose=purpose, now=now)
    if check.outcome == "ok":
        return
    if check.outcome == "not_enrolled":
        raise rules.SecondFactorNeeded(
            "Approving or withdrawing needs two-factor sign-in: set it up at /account "
            'first, then send a current code from your app as "otp".'
        )
    if check.outcome == "missing":
        raise ValidationFailed(
            {"otp": "give a current code from your authenticator app (or a recovery code)"},
            'Approving or withdrawing needs a second factor: send "otp" in the body.',
        )
    if check.outcome == "locked" and check.locked_until is not None:
        raise rules.SecondFactorNeeded(
            "Too many wrong codes: try again after "
            f"{check.locked_until.astimezone(UTC):%H:%M:%S} UTC."
        )
    raise rules.SecondFactorNeeded(
        'The code in "otp" is wrong or has already been used: send the next one your app shows.'
    )


def regenerate_recovery_codes(
    db: Database, user_id: int, *, now: datetime | None = None
) -> list[str]:
    """New recovery codes (shown once); the old ones stop working."""
    now = now or datetime.now(UTC)
    with db.transaction() as session:
        user = _user(session, user_id, lock=True)
        if user.totp_confirmed_at is None:
            raise Conflict("Set up two-factor sign-in first.")
        codes = _new_recovery_codes(session, user.id, now)
        audit.record(
            session,
            actor_id=user.id,
            action="two_factor.recovery_codes_replaced",
            entity="user",
            entity_id=user.id,
        )
        return codes


def status(db: Database, user_id: int) -> dict[str, Any]:
    with db.transaction() as session:
        user = _user(session, user_id)
        return {
            "email": user.email,
            "name": user.name,
            "on": user.totp_confirmed_at is not None,
            "since": user.totp_confirmed_at.isoformat() if user.totp_confirmed_at else None,
            "required": rules.required_for(user.role_names),
            "recovery_codes_left": _codes_left(session, user.id),
            "last_login_at": user.last_login_at.isoformat() if user.last_login_at else None,
            "password_changed_at": (
                user.password_changed_at.isoformat() if user.password_changed_at else None
            ),
        }


def _by_email(session: Session, email: str) -> User:
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise NotFound(f"No user with e-mail {email}.")
    return user


def provision(db: Database, email: str, *, key: str, now: datetime | None = None) -> str:
    """The operator's command: give the user a new, confirmed TOTP secret and return it
    (to type into their app). Any earlier secret and recovery codes stop working."""
    now = now or datetime.now(UTC)
    secret = rules.new_secret()
    with db.transaction() as session:
        user = _by_email(session, email)
        user.totp_secret = rules.seal(secret, key)
        user.totp_confirmed_at = now
        user.totp_last_step = None
        session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
        audit.record(
            session,
            actor_id=None,
            action="two_factor.provisioned",
            entity="user",
            entity_id=user.id,
        )
    return secret


def clear(db: Database, email: str) -> None:
    """The operator's command for a lost phone: two-factor off; a panel member or admin
    sets it up again at the next sign-in."""
    with db.transaction() as session:
        user = _by_email(session, email)
        user.totp_secret = None
        user.totp_confirmed_at = None
        user.totp_last_step = None
        session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
        audit.record(
            session, actor_id=None, action="two_factor.cleared", entity="user", entity_id=user.id
        )
