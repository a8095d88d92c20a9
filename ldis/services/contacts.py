"""A service's contacts: who receives its alerts, on which channels, and when not.

Contact details are staff personal data: they appear in the views people with the right
to manage the service read, never in audit details or logs. A removed contact keeps its
row (so delivery history still adds up) with every personal detail erased, down to the
kept copies of what was sent to them (see `remove_contact`).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, false, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ldis.domain.deliveries import Channel, DeliveryStatus
from ldis.domain.errors import Conflict, Forbidden, ValidationFailed
from ldis.domain.principal import Principal
from ldis.domain.recipients import ContactInput, ContactUpdate
from ldis.domain.recipients_csv import export_phone
from ldis.domain.roles import Role
from ldis.domain.validation import parse
from ldis.services import audit, notices, permissions, verification
from ldis.services.verification import Sending, address_of, channel_row, channel_status
from ldis.store.db import Database
from ldis.store.models import (
    Contact,
    ContactChannel,
    Delivery,
    DeliveryAttempt,
    Notice,
    OutboxMessage,
)

REMOVED_NAME = "Former contact"
# What replaces an erased address (and the whole text of a verification message).
ERASED = "(removed)"
CHANNEL_ORDER = [c.value for c in Channel]
DUPLICATE = {
    "email": "a contact with this e-mail address is already at this service",
    "phone": "a contact with this mobile number is already at this service",
}


def is_removed(contact: Contact) -> bool:
    # Every live contact has at least one channel (the inputs require one); removal drops all.
    return not contact.channels and contact.email is None and contact.phone is None


def is_reachable(contact: Contact) -> bool:
    """Whether an alert could reach this person now on at least one channel."""
    if contact.opted_out_at is not None:
        return False
    return any(
        c.verified_at is not None
        and c.opted_out_at is None
        and c.failed_at is None
        and address_of(contact, c.channel)
        for c in contact.channels
    )


def _hhmm(value: Any) -> str:
    return str(value.strftime("%H:%M"))


def contact_view(contact: Contact, now: datetime | None = None) -> dict[str, Any]:
    channels = sorted(contact.channels, key=lambda c: CHANNEL_ORDER.index(c.channel))
    quiet = None
    if contact.quiet_start is not None and contact.quiet_end is not None:
        quiet = {"start": _hhmm(contact.quiet_start), "end": _hhmm(contact.quiet_end)}
    return {
        "id": contact.id,
        "service_id": contact.service_id,
        "name": contact.name,
        "role": contact.role,
        "email": contact.email,
        "phone": contact.phone,
        "quiet_hours": quiet,
        "channels": [c.channel for c in channels],
        "verified": {c.channel: c.verified_at is not None for c in channels},
        "channel_status": {c.channel: channel_status(c, now) for c in channels},
        "reachable": is_reachable(contact),
        "opted_out_at": contact.opted_out_at.isoformat() if contact.opted_out_at else None,
        "flagged_at": contact.flagged_at.isoformat() if contact.flagged_at else None,
        "flag_reason": contact.flag_reason,
        "removed": is_removed(contact),
        "created_at": contact.created_at.isoformat(),
        "updated_at": contact.updated_at.isoformat() if contact.updated_at else None,
        "erased_at": contact.erased_at.isoformat() if contact.erased_at else None,
    }


def _refuse_duplicates(
    session: Session,
    service_id: int,
    *,
    email: str | None,
    phone: str | None,
    other_than: int | None = None,
) -> None:
    """Conflict naming each field that another contact of this service already has: the
    same person twice would get every alert twice."""
    clashes = {}
    # E-mail compared without case: mailboxes ignore it in practice, so it is one person.
    for field, value, column in (
        ("email", email.lower() if email else None, func.lower(Contact.email)),
        ("phone", phone, Contact.phone),
    ):
        if value is None:
            continue
        query = select(Contact.id).where(Contact.service_id == service_id, column == value)
        if other_than is not None:
            query = query.where(Contact.id != other_than)
        if session.scalar(query.limit(1)) is not None:
            clashes[field] = DUPLICATE[field]
    if clashes:
        raise _conflict(clashes)


def _conflict(clashes: dict[str, str]) -> Conflict:
    first = next(iter(clashes.values()))
    return Conflict(first[0].upper() + first[1:] + ".", clashes)


def _race(exc: IntegrityError) -> Conflict:
    """The unique indexes caught a duplicate that a concurrent request added meanwhile."""
    text = str(exc.orig)
    for field in ("email", "phone"):
        if f"uq_contacts_service_{field}" in text or f"contacts.{field}" in text:
            return _conflict({field: DUPLICATE[field]})
    raise exc


def add_contact(
    db: Database,
    actor: Principal,
    service_id: int,
    body: Any,
    *,
    sending: Sending,
) -> dict[str, Any]:
    """Add a contact; each channel gets a code or link to prove it, unless an admin marks
    the channels already verified (a known list being loaded)."""
    actor.require(*permissions.MANAGERS)
    data = parse(ContactInput, body)
    if data.verified and not actor.has_any(Role.admin):
        raise Forbidden("Only an admin can mark a contact's channels as already verified.")
    now = datetime.now(UTC)
    try:
        with db.transaction() as session:
            # The lock serialises additions to one service, so the duplicate check holds.
            service = permissions.service_for(session, actor, service_id, lock=True)
            _refuse_duplicates(session, service.id, email=data.email, phone=data.phone)
            contact = Contact(
                service=service,
                name=data.name,
                role=data.role.value,
                email=data.email,
                phone=data.phone,
                quiet_start=data.quiet_hours.start if data.quiet_hours else None,
                quiet_end=data.quiet_hours.end if data.quiet_hours else None,
                channels=[
                    ContactChannel(channel=ch.value, verified_at=now if data.verified else None)
                    for ch in data.channels
                ],
            )
            session.add(contact)
            session.flush()
            sent = []
            if not data.verified:
                sent = [
                    verification.start(session, contact, ch, sending, now) for ch in data.channels
                ]
            # No contact details in the audit log: it is read more widely than the contacts.
            audit.record(
                session,
                actor_id=actor.db_id,
                action="contact.created",
                entity="contact",
                entity_id=contact.id,
                service_id=service.id,
                channels=[c.value for c in data.channels],
                verified_by_admin=data.verified,
            )
            view = contact_view(contact, now)
    except IntegrityError as exc:
        raise _race(exc) from None
    notices.enqueue_quietly(sending.queue, sent)
    return view


def list_contacts(
    db: Database, actor: Principal, service_id: int, *, include_removed: bool = False
) -> list[dict[str, Any]]:
    with db.transaction() as session:
        service = permissions.service_for(session, actor, service_id)
        now = datetime.now(UTC)
        contacts = sorted(service.contacts, key=lambda c: (c.role != "primary", c.name, c.id))
        return [contact_view(c, now) for c in contacts if include_removed or not is_removed(c)]


def get_contact(db: Database, actor: Principal, contact_id: int) -> dict[str, Any]:
    with db.transaction() as session:
        return contact_view(permissions.contact_for(session, actor, contact_id))


def _merged_check(data: ContactUpdate, contact: Contact) -> None:
    """Refuse a change that would leave the contact without a name or role, or with a
    channel it has no address for."""
    cleared = sorted(
        f
        for f in ("name", "role", "channels")
        if f in data.model_fields_set and getattr(data, f) is None
    )
    if cleared:
        raise ValidationFailed({f: "cannot be cleared; leave it out to keep it" for f in cleared})
    try:
        data.merged_check(
            contact.phone, contact.email, [Channel(c.channel) for c in contact.channels]
        )
    except ValueError as exc:
        field, _, message = str(exc).partition(": ")
        raise ValidationFailed({field: message} if message else {"body": str(exc)}) from None


def _restart(row: ContactChannel) -> None:
    """A new address proves nothing yet, and an old number's STOP or failure is not its."""
    row.verified_at = None
    row.opted_out_at = None
    row.failed_at = None
    row.failure_reason = None


def _apply_details(
    data: ContactUpdate, contact: Contact, email: str | None, phone: str | None
) -> tuple[list[str], set[str]]:
    """Set the changed details; return their names and the channels to verify again."""
    changed: list[str] = []
    restart: set[str] = set()
    if data.name is not None and data.name != contact.name:
        contact.name = data.name
        changed.append("name")
    if data.role is not None and data.role.value != contact.role:
        contact.role = data.role.value
        changed.append("role")
    if email != contact.email:
        if (email or "").lower() != (contact.email or "").lower():
            restart.add(Channel.email.value)  # a new mailbox, not the same one re-typed
        contact.email = email
        changed.append("email")
    if phone != contact.phone:
        contact.phone = phone
        changed.append("phone")
        restart.add(Channel.sms.value)
    if "quiet_hours" in data.model_fields_set:
        quiet = data.quiet_hours
        start, end = (quiet.start, quiet.end) if quiet else (None, None)
        if (start, end) != (contact.quiet_start, contact.quiet_end):
            contact.quiet_start, contact.quiet_end = start, end
            changed.append("quiet_hours")
    return changed, restart


def _apply_channels(wanted: list[Channel] | None, contact: Contact) -> tuple[list[str], list[str]]:
    """Drop the channels no longer wanted and add new ones; return (added, removed)."""
    if wanted is None:
        return [], []
    names = [c.value for c in wanted]
    removed = [row.channel for row in contact.channels if row.channel not in names]
    for row in [r for r in contact.channels if r.channel in removed]:
        contact.channels.remove(row)
    added = [name for name in names if channel_row(contact, name) is None]
    contact.channels.extend(ContactChannel(channel=name) for name in added)
    return added, removed


def update_contact(
    db: Database,
    actor: Principal,
    contact_id: int,
    body: Any,
    *,
    sending: Sending,
) -> dict[str, Any]:
    """Change only the fields sent. A changed address, or a channel added, must be verified
    (a code or link goes out at once); a channel taken away is dropped with its state."""
    data = parse(ContactUpdate, body)
    given = data.model_fields_set
    now = datetime.now(UTC)
    try:
        with db.transaction() as session:
            contact = permissions.contact_for(session, actor, contact_id, lock=True)
            if is_removed(contact):
                raise Conflict("This contact was removed; add the person again instead.")
            _merged_check(data, contact)
            email = data.email if "email" in given else contact.email
            phone = data.phone if "phone" in given else contact.phone
            _refuse_duplicates(
                session,
                contact.service_id,
                email=email if email != contact.email else None,
                phone=phone if phone != contact.phone else None,
                other_than=contact.id,
            )
            changed, restart = _apply_details(data, contact, email, phone)
            added, removed = _apply_channels(data.channels, contact)
            sent = []
            for name in sorted(restart | set(added)):
                row = channel_row(contact, name)
                if row is not None:
                    _restart(row)
                    sent.append(verification.start(session, contact, name, sending, now))
            if changed or added or removed:
                contact.updated_at = now
                audit.record(
                    session,
                    actor_id=actor.db_id,
                    action="contact.changed",
                    entity="contact",
                    entity_id=contact.id,
                    service_id=contact.service_id,
                    fields=changed,
                    channels_added=added,
                    channels_removed=removed,
                )
            session.flush()
            view = contact_view(contact, now)
    except IntegrityError as exc:
        raise _race(exc) from None
    notices.enqueue_quietly(sending.queue, sent)
    return view


def remove_contact(db: Database, actor: Principal, contact_id: int) -> dict[str, Any]:
    """The person has left: erase their details but keep the row, so delivery history
    still adds up.

    Gone: their name ("Former contact"), e-mail address, number, quiet hours, channels
    (with any verification code hash), unsubscriptions and flag; every self-service link is
    revoked. Their deliveries stay (alert, version, channel, status, times: the counts)
    with the address scrubbed from any error text; the kept copies of messages sent to
    them (the local outbox, notices such as codes, escalations and text replies) lose the
    address and any mention of their name or number; so do the panel's ring-round e-mails
    that listed them. Audited twice, without personal data: `contact.removed` (what the
    manager did) and `contact.erased` (how much was scrubbed).
    """
    now = datetime.now(UTC)
    with db.transaction() as session:
        contact = permissions.contact_for(session, actor, contact_id, lock=True)
        if is_removed(contact):
            return contact_view(contact, now)
        erased = _erase_traces(session, contact)
        contact.name = REMOVED_NAME
        contact.email = contact.phone = None
        contact.quiet_start = contact.quiet_end = None
        contact.flagged_at, contact.flag_reason = None, None
        contact.channels.clear()
        contact.unsubscriptions.clear()
        contact.opted_out_at = contact.opted_out_at or now
        contact.link_version += 1  # revokes every self-service link already sent
        contact.updated_at = now
        contact.erased_at = now
        _forget_verification_notices(session, contact.id)
        audit.record(
            session,
            actor_id=actor.db_id,
            action="contact.removed",
            entity="contact",
            entity_id=contact.id,
            service_id=contact.service_id,
        )
        audit.record(
            session,
            actor_id=actor.db_id,
            action="contact.erased",
            entity="contact",
            entity_id=contact.id,
            service_id=contact.service_id,
            **erased,
        )
        session.flush()
        return contact_view(contact, now)


Scrub = Callable[[str | None], str | None]


def _scrubber(name: str, email: str | None, phone: str | None) -> Scrub:
    """A function replacing, as whole words, the person's name (with "Former contact")
    and their address and number in every form a message shows them (with "(removed)")."""
    names = {name.strip().casefold()} if name.strip() and name != REMOVED_NAME else set()
    names |= {html.escape(n, quote=True) for n in names}
    addresses: set[str] = set()
    if email:
        addresses |= {email.casefold(), html.escape(email.casefold(), quote=True)}
    if phone:
        addresses |= {phone, phone.lstrip("+"), export_phone(phone)}
    words = sorted((w for w in names | addresses if w), key=len, reverse=True)
    if not words:
        return lambda text: text
    pattern = re.compile(
        r"(?<![\w@.+])(?:" + "|".join(re.escape(w) for w in words) + r")(?![\w@])",
        re.IGNORECASE,
    )

    def replace(found: re.Match[str]) -> str:
        return REMOVED_NAME if found.group().casefold() in names else ERASED

    def scrub(text: str | None) -> str | None:
        return pattern.sub(replace, text) if text else text

    return scrub


def their_notices(session: Session, contact: Contact, *, exclusive: bool) -> ColumnElement[bool]:
    """Notices sent to this contact: by the key of those written for them (verification
    codes and links, escalations to a backup) and by their address (replies to their
    texts, notices to their mailbox). With `exclusive`, an address another live contact
    also has (the same person at a second service) does not count: those are theirs too."""
    keyed = or_(
        Notice.dedupe_key.startswith(f"verify:{contact.id}:", autoescape=True),
        Notice.dedupe_key.like(f"escalation:%:v%:{contact.id}:sms"),
        Notice.dedupe_key.like(f"escalation:%:v%:{contact.id}:email"),
    )
    emails = {contact.email.lower()} if contact.email else set()
    phones = {contact.phone} if contact.phone else set()
    if exclusive and (emails or phones):
        shared = session.execute(
            select(func.lower(Contact.email), Contact.phone).where(
                Contact.id != contact.id,
                or_(func.lower(Contact.email).in_(emails), Contact.phone.in_(phones)),
            )
        ).all()
        emails -= {email for email, _ in shared}
        phones -= {phone for _, phone in shared}
    addressed = func.lower(Notice.recipient).in_(emails | phones) if emails or phones else false()
    return or_(keyed, addressed)


def _erase_traces(session: Session, contact: Contact) -> dict[str, int]:
    """Scrub the contact's details from what was sent to them and about them; return how
    many rows of each kind were touched (for the audit event, no personal data)."""
    scrub = _scrubber(contact.name, contact.email, contact.phone)
    delivery_ids = select(Delivery.id).where(Delivery.contact_id == contact.id)
    deliveries = session.scalar(
        select(func.count()).select_from(Delivery).where(Delivery.contact_id == contact.id)
    )
    for delivery in session.scalars(
        select(Delivery).where(Delivery.contact_id == contact.id, Delivery.last_error.is_not(None))
    ):
        delivery.last_error = scrub(delivery.last_error)
    for attempt in session.scalars(
        select(DeliveryAttempt).where(
            DeliveryAttempt.delivery_id.in_(delivery_ids), DeliveryAttempt.error.is_not(None)
        )
    ):
        attempt.error = scrub(attempt.error)
    copies = 0
    for message in session.scalars(
        select(OutboxMessage).where(OutboxMessage.delivery_id.in_(delivery_ids))
    ):
        _scrub_copy(message, scrub)
        copies += 1
    sent_to_them = list(
        session.scalars(select(Notice).where(their_notices(session, contact, exclusive=True)))
    )
    for notice in sent_to_them:
        if notice.status == DeliveryStatus.queued.value:
            notice.status = DeliveryStatus.failed.value
            notice.last_error = "contact removed"
        notice.recipient = ERASED
        notice.subject = scrub(notice.subject)
        notice.text_body = scrub(notice.text_body) or ""
        notice.html_body = scrub(notice.html_body)
        notice.last_error = scrub(notice.last_error)
    mentioned = _panel_lists_naming(session, contact)
    for notice in mentioned:
        notice.text_body = scrub(notice.text_body) or ""
        notice.html_body = scrub(notice.html_body)
    notice_ids = [n.id for n in sent_to_them]
    for message in session.scalars(
        select(OutboxMessage).where(OutboxMessage.notice_id.in_(notice_ids))
    ):
        _scrub_copy(message, scrub)
        copies += 1
    for message in session.scalars(
        select(OutboxMessage).where(OutboxMessage.notice_id.in_([n.id for n in mentioned]))
    ):
        message.text_body = scrub(message.text_body) or ""
        message.html_body = scrub(message.html_body)
        copies += 1
    session.flush()
    return {
        "deliveries_kept": int(deliveries or 0),
        "notices_scrubbed": len(sent_to_them) + len(mentioned),
        "outbox_copies_scrubbed": copies,
    }


def _scrub_copy(message: OutboxMessage, scrub: Scrub) -> None:
    message.recipient = ERASED
    message.subject = scrub(message.subject)
    message.text_body = scrub(message.text_body) or ""
    message.html_body = scrub(message.html_body)


def _panel_lists_naming(session: Session, contact: Contact) -> list[Notice]:
    """The panel's escalation e-mails that list this contact's number to ring."""
    if not contact.phone:
        return []
    shown = export_phone(contact.phone)
    return list(
        session.scalars(
            select(Notice).where(
                Notice.dedupe_key.startswith("escalation-panel:"),
                Notice.text_body.contains(shown, autoescape=True),
            )
        )
    )


def _forget_verification_notices(session: Session, contact_id: int) -> None:
    """Codes and links not yet sent are cancelled; the copies kept of those sent lose the
    address and text, which are the removed person's details."""
    prefix = Notice.dedupe_key.startswith(f"verify:{contact_id}:", autoescape=True)
    session.execute(
        update(Notice)
        .where(prefix, Notice.status == DeliveryStatus.queued.value)
        .values(status=DeliveryStatus.failed.value, last_error="contact removed")
    )
    session.execute(
        update(Notice).where(prefix).values(recipient="(removed)", text_body="(removed)")
    )
