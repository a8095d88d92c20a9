"""Password reset by an e-mailed, single-use link.

The link holds a 256-bit random token; only its SHA-256 is stored. It works for an hour,
once; using it sets the new password, ends every web session signed in before, lifts any
lockout and spends every other outstanding link. Asking for a link answers the same whether
or not the address belongs to anyone: `request_reset` returns the notice to send, or None.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from ldis.domain.errors import DomainError
from ldis.domain.recipients import normalise_email
from ldis.services import audit
from ldis.services.accounts import check_password, store_password
from ldis.services.notices import queue_notice
from ldis.store.db import Database
from ldis.store.models import PasswordReset, User

LINK_LIFETIME = timedelta(hours=1)
# At most this many links an hour for one account, so nobody can flood someone's inbox.
MAX_LINKS_PER_HOUR = 3
RESET_PATH = "/login/reset/"


class ResetLinkInvalid(DomainError):
    """The link is unknown, used or expired (the page says so without saying which)."""

    code = "reset_link_invalid"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def request_reset(
    db: Database, email: str, *, public_url: str, now: datetime | None = None
) -> int | None:
    """Write a reset e-mail (a queued notice) when `email` is an active account's; return the
    notice id to enqueue after the commit, or None (no such account, or too many asked)."""
    now = now or datetime.now(UTC)
    try:
        email = normalise_email(email).lower()
    except ValueError:
        return None
    with db.transaction() as session:
        user = session.scalar(select(User).where(User.email == email))
        if user is None or not user.active:
            return None
        recent = session.scalar(
            select(func.count())
            .select_from(PasswordReset)
            .where(
                PasswordReset.user_id == user.id,
                PasswordReset.created_at > now - timedelta(hours=1),
            )
        )
        if (recent or 0) >= MAX_LINKS_PER_HOUR:
            audit.record(
                session,
                actor_id=None,
                action="password_reset.throttled",
                entity="user",
                entity_id=user.id,
            )
            return None
        token = secrets.token_urlsafe(32)
        row = PasswordReset(
            user_id=user.id, token_hash=_hash(token), created_at=now, expires_at=now + LINK_LIFETIME
        )
        session.add(row)
        session.flush()
        link = f"{public_url.rstrip('/')}{RESET_PATH}{token}"
        text = (
            f"Hello {user.name},\n\n"
            "Someone, we hope you, asked to reset the password of your ldis account.\n"
            "Open this link within an hour to choose a new password (it works once):\n\n"
            f"{link}\n\n"
            "If you did not ask, ignore this e-mail: your password has not changed.\n"
        )
        notice_id = queue_notice(
            session,
            dedupe_key=f"password-reset:{row.id}",
            purpose="password_reset",
            channel="email",
            recipient=user.email,
            subject="Reset your ldis password",
            text=text,
        )
        audit.record(
            session,
            actor_id=None,
            action="password_reset.requested",
            entity="user",
            entity_id=user.id,
        )
        return notice_id


def link_is_live(db: Database, token: str, *, now: datetime | None = None) -> bool:
    """Whether the link can still be used (to show the form, or say it has expired)."""
    now = now or datetime.now(UTC)
    with db.transaction() as session:
        row = session.scalar(select(PasswordReset).where(PasswordReset.token_hash == _hash(token)))
        return row is not None and row.used_at is None and now < row.expires_at


def reset_password(
    db: Database, token: str, new_password: str, *, now: datetime | None = None
) -> int:
    """Set the new password with a live link; return the user id. ResetLinkInvalid for an
    unknown, used or expired link; ValidationFailed (field new_password) for a weak one."""
    now = now or datetime.now(UTC)
    with db.transaction() as session:
        row = session.scalar(
            select(PasswordReset).where(PasswordReset.token_hash == _hash(token)).with_for_update()
        )
        if row is None or row.used_at is not None or now >= row.expires_at:
            raise ResetLinkInvalid("This link has expired or has already been used.")
        user = session.get(User, row.user_id)
        if user is None or not user.active:
            raise ResetLinkInvalid("This link has expired or has already been used.")
        check_password(new_password, email=user.email, name=user.name, field="new_password")
        store_password(session, user, new_password, now)
        # This link and every other outstanding one for the account are spent.
        session.execute(
            update(PasswordReset)
            .where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None))
            .values(used_at=now)
        )
        audit.record(
            session,
            actor_id=user.id,
            action="user.password_reset",
            entity="user",
            entity_id=user.id,
        )
        return user.id
