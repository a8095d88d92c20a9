"""The page an e-mail verification link opens: a GET only shows what confirming will do (mail
scanners follow links), the confirm button's POST verifies. A link is refused when it is
forged, more than 7 days old, or was sent to an address the contact no longer has."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from itsdangerous import BadSignature, SignatureExpired
from sqlalchemy.orm import Session

from ldis.domain.deliveries import Channel
from ldis.domain.errors import NotFound
from ldis.services.verification import (
    EMAIL_LINK_MAX_AGE,
    address_hash,
    channel_row,
    link_serializer,
    lock_channel,
    mark_verified,
)
from ldis.store.db import Database
from ldis.store.models import Contact, ContactChannel


@dataclass(frozen=True)
class EmailLink:
    """What the public confirm page shows: never the full address."""

    state: str  # ready | confirmed | already_confirmed | expired
    service: str
    address: str


def mask_email(address: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local[:1]}•••@{domain}"


def _read_link(session: Session, token: str, secret: str) -> tuple[Contact, ContactChannel]:
    """The contact and channel a link is for; NotFound for a forged, broken or stale link."""
    invalid = NotFound("This link is not valid: it is broken, or the address has changed.")
    try:
        payload = link_serializer(secret).loads(
            token, max_age=int(EMAIL_LINK_MAX_AGE.total_seconds())
        )
    except SignatureExpired:
        raise
    except BadSignature:
        raise invalid from None
    if not (
        isinstance(payload, list)
        and len(payload) == 3
        and isinstance(payload[0], int)
        and payload[1] == Channel.email.value
        and isinstance(payload[2], str)
    ):
        raise invalid
    contact = session.get(Contact, payload[0])
    row = channel_row(contact, Channel.email) if contact is not None else None
    if contact is None or row is None or contact.email is None:
        raise invalid
    if address_hash(secret, contact.id, contact.email) != payload[2]:
        raise invalid
    return contact, row


def email_link_view(db: Database, token: str, *, secret: str) -> EmailLink:
    """For the page a link opens (GET): says what confirming will do; changes nothing."""
    with db.transaction() as session:
        try:
            contact, row = _read_link(session, token, secret)
        except SignatureExpired:
            return EmailLink("expired", "", "")
        state = "already_confirmed" if row.verified_at is not None else "ready"
        return EmailLink(state, contact.service.name, mask_email(contact.email or ""))


def confirm_email_link(db: Database, token: str, *, secret: str) -> EmailLink:
    """The confirm button (POST): verifies the e-mail channel the link was sent for."""
    now = datetime.now(UTC)
    with db.transaction() as session:
        try:
            contact, row = _read_link(session, token, secret)
        except SignatureExpired:
            return EmailLink("expired", "", "")
        row = lock_channel(session, contact.id, Channel.email) or row
        masked = mask_email(contact.email or "")
        if row.verified_at is not None:
            return EmailLink("already_confirmed", contact.service.name, masked)
        mark_verified(session, row, "email_link", now)
        return EmailLink("confirmed", contact.service.name, masked)
