"""Proving a contact holds an address before anything is sent to it.

A new or changed channel starts unverified; `start` writes, in the caller's transaction, a
notice with a 6-digit code (SMS: the person replies with it, or someone types it in) or a
signed link (e-mail: a page with a confirm button; the GET alone verifies nothing, because
mail scanners follow links). Only an HMAC of a code is stored; an e-mail link carries an
HMAC of the address, so a link sent to an old address stops working when it changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ldis.domain.deliveries import Channel
from ldis.domain.errors import Conflict, NotFound, ValidationFailed
from ldis.domain.principal import Principal
from ldis.domain.verification import (
    CODE_DIGITS,
    CODE_LIFETIME,
    MAX_ATTEMPTS,
    code_hash,
    code_matches,
    new_code,
)
from ldis.services import audit, notices, permissions
from ldis.services.ports import TaskQueue
from ldis.store.db import Database
from ldis.store.models import Contact, ContactChannel

EMAIL_SALT = "ldis.verify-email"
EMAIL_LINK_MAX_AGE = timedelta(days=7)
RESEND_INTERVAL = timedelta(seconds=60)
SERVICE_NAME_IN_SMS = 40  # keeps the code text to two SMS segments at most


@dataclass(frozen=True)
class Sending:
    """What a use case needs to start verification: the key for codes and links, the
    public address links point at, and the queue to ring once the change has committed."""

    secret: str
    public_url: str
    queue: TaskQueue | None = None


def address_of(contact: Contact, channel: str) -> str | None:
    return contact.phone if channel == Channel.sms else contact.email


def channel_row(contact: Contact, channel: str) -> ContactChannel | None:
    return next((c for c in contact.channels if c.channel == channel), None)


def address_hash(secret: str, contact_id: int, address: str) -> str:
    return code_hash(secret, contact_id, "email-link", address.lower())[:32]


def link_serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=EMAIL_SALT)


def email_link(sending: Sending, contact_id: int, address: str) -> str:
    payload = [contact_id, Channel.email.value, address_hash(sending.secret, contact_id, address)]
    token = link_serializer(sending.secret).dumps(payload)
    return f"{sending.public_url.rstrip('/')}/verify/{token}"


def _sms_text(service: str, code: str) -> str:
    if len(service) > SERVICE_NAME_IN_SMS:
        service = service[: SERVICE_NAME_IN_SMS - 1].rstrip() + "…"
    return (
        f"ldis: your code to confirm this number for {service} drug alerts is {code}. "
        "Reply with the code to confirm. Reply STOP to opt out."
    )


def _email_text(service: str, url: str) -> str:
    return (
        f"{service} has added this e-mail address to ldis, the local drug information "
        "system, to receive drug alerts.\n\n"
        "To confirm it is yours, open this link and press the Confirm button:\n"
        f"{url}\n\n"
        "The link works for 7 days. If you did not expect this message, ignore it: nothing "
        "is sent to an address until it is confirmed.\n"
    )


def _stopped_at(session: Session, phone: str) -> datetime | None:
    """When `phone` last replied STOP, if it still stands for any contact with it."""
    return session.scalar(
        select(func.max(ContactChannel.opted_out_at))
        .join(Contact, Contact.id == ContactChannel.contact_id)
        .where(Contact.phone == phone, ContactChannel.channel == Channel.sms.value)
    )


def start(
    session: Session,
    contact: Contact,
    channel: str,
    sending: Sending,
    now: datetime | None = None,
) -> int | None:
    """Start (or restart) verifying one of `contact`'s channels: reset it to unverified and
    queue the code or link in the caller's transaction. Returns the notice id to enqueue
    after the commit (`notices.enqueue_quietly(queue, [id])`), or None when nothing can be
    sent: a number that replied STOP stays opted out, and gets no code."""
    now = now or datetime.now(UTC)
    row = channel_row(contact, channel)
    address = address_of(contact, channel)
    if row is None or address is None:
        raise ValueError(f"contact {contact.id} has no {channel} address to verify")
    session.flush()  # the contact's id is part of the code's hash
    row.verified_at = None
    row.verification_attempts = 0
    if channel == Channel.sms and row.opted_out_at is None:
        # Texting STOP blocks our number for that phone, whichever service added it.
        row.opted_out_at = _stopped_at(session, address)
    if row.opted_out_at is not None:
        row.verification_hash = None
        return None
    row.verification_sent_at = now
    service = contact.service.name
    if channel == Channel.sms:
        code = new_code()
        row.verification_hash = code_hash(sending.secret, contact.id, channel, code)
        text, subject = _sms_text(service, code), None
    else:
        row.verification_hash = None
        url = email_link(sending, contact.id, address)
        text, subject = _email_text(service, url), "Confirm your e-mail address for drug alerts"
    return notices.queue_notice(
        session,
        dedupe_key=f"verify:{contact.id}:{channel}:{now.isoformat()}",
        purpose=f"verify_{channel}",
        channel=channel,
        recipient=address,
        text=text,
        subject=subject,
    )


def mark_verified(session: Session, row: ContactChannel, method: str, now: datetime) -> None:
    row.verified_at = now
    row.verification_hash = None
    row.verification_attempts = 0
    # Proven to receive messages again: an earlier permanent failure no longer holds.
    row.failed_at = None
    row.failure_reason = None
    audit.record(
        session,
        actor_id=None,
        action="contact.channel_verified",
        entity="contact",
        entity_id=row.contact_id,
        channel=row.channel,
        method=method,
    )


def lock_channel(session: Session, contact_id: int, channel: str) -> ContactChannel | None:
    return session.scalar(
        select(ContactChannel)
        .where(ContactChannel.contact_id == contact_id, ContactChannel.channel == channel)
        .with_for_update()
    )


def _matches(row: ContactChannel, code: str, secret: str, now: datetime) -> bool:
    return code_matches(
        secret,
        row.contact_id,
        row.channel,
        code,
        row.verification_hash,
        row.verification_sent_at,
        row.verification_attempts,
        now,
    )


def _wrong_guess(row: ContactChannel) -> None:
    """Count a wrong code; after MAX_ATTEMPTS the code is void and a new one must be sent."""
    if row.verification_hash is not None:
        row.verification_attempts += 1
        if row.verification_attempts >= MAX_ATTEMPTS:
            row.verification_hash = None


def confirm_code(db: Database, contact_id: int, channel: str, code: str, *, secret: str) -> bool:
    """True when `code` is the live code for this channel, which is then verified. A wrong
    code is counted (and committed, so retries cannot dodge the limit)."""
    now = datetime.now(UTC)
    with db.transaction() as session:
        row = lock_channel(session, contact_id, channel)
        if row is None or row.verified_at is not None:
            return False
        if _matches(row, code, secret, now):
            mark_verified(session, row, "code", now)
            return True
        _wrong_guess(row)
        return False


def confirm_sms_reply(session: Session, phone_e164: str, body: str, *, secret: str) -> list[int]:
    """An inbound text from `phone_e164`: verify every pending SMS code for that number (at
    any service) that matches the digits in `body`; return those contacts' ids. A reply
    that matches none counts as one wrong guess against each pending code."""
    digits = "".join(re.findall(r"\d", body))
    if len(digits) != CODE_DIGITS:
        return []
    key, now = secret, datetime.now(UTC)
    rows = list(
        session.scalars(
            select(ContactChannel)
            .join(Contact, Contact.id == ContactChannel.contact_id)
            .where(
                Contact.phone == phone_e164,
                ContactChannel.channel == Channel.sms.value,
                ContactChannel.verified_at.is_(None),
                ContactChannel.verification_hash.is_not(None),
            )
            .order_by(ContactChannel.contact_id)
            .with_for_update(of=ContactChannel)
        )
    )
    matched = [row.contact_id for row in rows if _matches(row, digits, key, now)]
    for row in rows:
        if row.contact_id in matched:
            mark_verified(session, row, "sms_reply", now)
        elif not matched:
            _wrong_guess(row)
    return matched


def channel_status(row: ContactChannel, now: datetime | None = None) -> dict[str, Any]:
    """A channel as people need to see it: verified, waiting for a code or link, or stopped."""
    now = now or datetime.now(UTC)
    sent = row.verification_sent_at
    if row.channel == Channel.sms:
        pending = (
            row.verification_hash is not None
            and sent is not None
            and now - sent <= CODE_LIFETIME
            and row.verification_attempts < MAX_ATTEMPTS
        )
    else:
        pending = sent is not None and now - sent <= EMAIL_LINK_MAX_AGE
    pending = pending and row.verified_at is None
    if row.opted_out_at is not None:
        status = "opted_out"
    elif row.failed_at is not None:
        status = "failed"
    elif row.verified_at is not None:
        status = "verified"
    else:
        status = "pending" if pending else "unverified"
    return {
        "status": status,
        "verified": row.verified_at is not None,
        "pending_verification": pending,
        "opted_out": row.opted_out_at is not None,
        "failed": row.failed_at is not None,
        "failure_reason": row.failure_reason,
        "verified_at": row.verified_at.isoformat() if row.verified_at else None,
        "verification_sent_at": sent.isoformat() if sent else None,
    }


def _managed_channel(
    session: Session, actor: Principal, contact_id: int, channel: str
) -> tuple[Contact, ContactChannel]:
    contact = permissions.contact_for(session, actor, contact_id, lock=True)
    row = channel_row(contact, channel)
    if row is None:
        raise NotFound(f"Contact {contact_id} has no {channel} channel.")
    if row.verified_at is not None:
        raise Conflict(f"The {channel} channel is already confirmed.")
    return contact, row


def resend(
    db: Database,
    actor: Principal,
    contact_id: int,
    channel: str,
    *,
    sending: Sending,
) -> dict[str, Any]:
    """Send a new code or link (the old code stops working); one per minute per channel."""
    now = datetime.now(UTC)
    with db.transaction() as session:
        contact, row = _managed_channel(session, actor, contact_id, channel)
        if row.opted_out_at is not None:
            raise Conflict(
                "This number replied STOP; nothing can be sent to it until its owner texts START."
            )
        if row.verification_sent_at is not None:
            wait = RESEND_INTERVAL - (now - row.verification_sent_at)
            if wait > timedelta(0):
                seconds = max(1, round(wait.total_seconds()))
                raise Conflict(
                    f"A code was sent less than a minute ago; wait {seconds} seconds "
                    "before sending another."
                )
        notice_id = start(session, contact, channel, sending, now)
        audit.record(
            session,
            actor_id=actor.db_id,
            action="contact.verification_sent",
            entity="contact",
            entity_id=contact.id,
            channel=channel,
        )
        status = {"contact_id": contact.id, "channel": channel, **channel_status(row, now)}
    notices.enqueue_quietly(sending.queue, [notice_id])
    return status


def confirm(
    db: Database,
    actor: Principal,
    contact_id: int,
    channel: str,
    code: Any,
    *,
    secret: str,
) -> dict[str, Any]:
    """A code typed in by an admin or the service's manager on the person's behalf."""
    with db.transaction() as session:
        _managed_channel(session, actor, contact_id, channel)
    if channel != Channel.sms:
        raise ValidationFailed(
            {"channel": "e-mail addresses are confirmed with the link in the e-mail"}
        )
    typed = re.sub(r"\s", "", code) if isinstance(code, str) else ""
    if not re.fullmatch(rf"\d{{{CODE_DIGITS}}}", typed):
        raise ValidationFailed({"code": f"enter the {CODE_DIGITS}-digit code from the text"})
    verified = confirm_code(db, contact_id, channel, typed, secret=secret)
    with db.transaction() as session:
        row = session.get(ContactChannel, (contact_id, channel))
        assert row is not None, "checked above; channels are only removed with a lock held"
        status = {"contact_id": contact_id, "channel": channel, **channel_status(row)}
        sent_at, left = row.verification_sent_at, MAX_ATTEMPTS - row.verification_attempts
        void = row.verification_hash is None
    if verified:
        return status
    if void or left <= 0 or sent_at is None or datetime.now(UTC) - sent_at > CODE_LIFETIME:
        raise ValidationFailed(
            {"code": "is no longer valid (expired or tried too often); send a new code"}
        )
    raise ValidationFailed(
        {"code": f"is not the code we sent; {left} {'try' if left == 1 else 'tries'} left"}
    )
