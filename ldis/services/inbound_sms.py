"""Texts people send us (Twilio's inbound webhook): STOP, START, HELP, ACK (confirming an
alert arrived, `ldis.services.acknowledgements`), or a code reply; from anyone, REPORT and
JOIN (public reports and subscriptions: docs/public-reports.md).

STOP and START change the sms channel of every contact with that number, in one
transaction with their audit events, and are honoured at once (the claim before each send
checks them). Twilio answers STOP and START itself (the carrier's required reply), so we
answer those with nothing; a second reply would confuse and cost a message.

Twilio retries a webhook it got no answer to. STOP and START are conditional updates, so a
repeat changes nothing; any other text records its reply as a notice keyed on the
MessageSid, and a repeat gets the same reply back without verifying (or acknowledging)
anything twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parseaddr

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ldis.domain.deliveries import DeliveryStatus
from ldis.domain.errors import ValidationFailed
from ldis.domain.inbound import Keyword, acknowledgement, keyword
from ldis.domain.public_phone import digest_of
from ldis.domain.public_reports import (
    Command,
    command,
    effects_in,
    find_area,
    find_substances,
)
from ldis.domain.recipients import normalise_phone
from ldis.services import (
    acknowledgements,
    audit,
    hygiene,
    notices,
    public_reports,
    public_subscriptions,
    public_texts,
    vocabulary,
)
from ldis.services.verification import confirm_sms_reply
from ldis.store.db import Database
from ldis.store.models import Area, Contact, ContactChannel, Notice, Service

NO_MATCH = "We could not match that; reply HELP for help."


@dataclass(frozen=True)
class Inbound:
    """What to answer (None: an empty TwiML response) and the notices to send after commit."""

    reply: str | None
    notice_ids: list[int] = field(default_factory=list)


def help_text(public_url: str, mail_from: str) -> str:
    """Who we are, how to reach the partnership, how to stop: one text where possible."""
    address = parseaddr(mail_from)[1]
    reach = f"{public_url} or {address}" if "." in address.rpartition("@")[2] else public_url
    return (
        "LDIS: drug alerts for local frontline services from your drug and alcohol "
        f"partnership. Help: {reach}. Reply STOP to stop."
    )


def handle(
    db: Database,
    *,
    sender: str,
    body: str,
    message_sid: str,
    help_reply: str,
    secret: str,
    public_url: str = "",
) -> Inbound:
    """Act on one inbound text; a sender that is not a UK mobile gets no answer."""
    try:
        phone = normalise_phone(sender)
    except ValueError:
        return Inbound(None)
    word = keyword(body)
    public = command(body)
    if public is not None:
        return Inbound(_public_command(db, phone, public, message_sid, secret))
    with db.transaction() as session:
        if word is Keyword.stop:
            public_subscriptions.stop(session, phone, secret)
            return Inbound(None, _stop(session, phone, public_url))
        if word is Keyword.start:
            _start(session, phone)
            # YES (one of Twilio's START words) also confirms a JOIN waiting for it.
            return Inbound(public_subscriptions.confirm(session, phone, secret))
        if not _is_contact(session, phone):
            if word is None and acknowledgement(body) is not None:
                # ACK (or an alert's reference) from a number we do not hold: a worker on a
                # new phone, most likely. Say nothing was acknowledged, not the public how-to.
                return Inbound(acknowledgements.UNKNOWN_NUMBER)
            # A member of the public: how to report or subscribe. Their number is not
            # written anywhere (no notice row, unlike a contact's reply).
            return Inbound(public_texts.current(session)["sms_help"])
        key = f"sms-reply:{message_sid}"
        record_id = None
        if message_sid:
            # Written first, so a concurrent repeat waits on its unique key and then finds it.
            record_id = notices.queue_notice(
                session,
                dedupe_key=key,
                purpose="sms_reply",
                channel="sms",
                recipient=phone,
                text="",
            )
            if record_id is None:
                earlier = session.scalar(select(Notice.text_body).where(Notice.dedupe_key == key))
                return Inbound(earlier or None)
        ack = acknowledgement(body) if word is None else None
        if word is Keyword.help:
            reply = help_reply
        elif ack is not None:
            reply = acknowledgements.acknowledge_sms(session, phone, ack).reply
        else:
            reply = _code_reply(session, phone, body, secret)
        if record_id is not None:
            # Sent by Twilio as our TwiML answer: recorded as sent so no worker sends it again.
            session.execute(
                update(Notice)
                .where(Notice.id == record_id)
                .values(
                    text_body=reply,
                    status=DeliveryStatus.sent.value,
                    sent_at=datetime.now(UTC),
                )
            )
        return Inbound(reply)


def _is_contact(session: Session, phone: str) -> bool:
    return session.scalar(select(Contact.id).where(Contact.phone == phone).limit(1)) is not None


def _public_command(
    db: Database, phone: str, public: Command, message_sid: str, secret: str
) -> str:
    """REPORT <what happened> or JOIN <area> from anyone (ldis.services.public_reports,
    ldis.services.public_subscriptions)."""
    texts = public_texts.read(db)
    if public.word == "join":
        with db.transaction() as session:
            return public_subscriptions.join(session, phone, public.rest, secret)
    if not public.rest:
        return texts["sms_report_empty"]
    with db.transaction() as session:
        areas = [(c, n) for c, n in session.execute(select(Area.code, Area.name)).all()]
        vocab = vocabulary.current(session)
    story = public.rest[: public_reports.MAX_STORY]
    now = datetime.now(UTC).isoformat()
    body: dict[str, object] = {
        "occurred_at": now,
        "area": find_area(story, areas),
        "suspected_substances": find_substances(story, vocab),
        "effects": effects_in(story),
        "what_happened": story,
    }
    # The MessageSid makes Twilio's retry of this webhook the same report, not a second.
    reference = message_sid or "sms-" + digest_of(phone + story + now)
    try:
        report = public_reports.validate(body, origin="public_sms", reference=reference)
    except ValidationFailed:
        return texts["sms_report_refused"]
    public_reports.file_public_report(db, report)
    return texts["sms_report_thanks"]


def _sms_channels(session: Session, phone: str) -> list[ContactChannel]:
    return list(
        session.scalars(
            select(ContactChannel)
            .join(Contact, Contact.id == ContactChannel.contact_id)
            .where(Contact.phone == phone, ContactChannel.channel == "sms")
            .order_by(ContactChannel.contact_id)
            .with_for_update(of=ContactChannel)
        )
    )


def _stop(session: Session, phone: str, public_url: str) -> list[int]:
    now = datetime.now(UTC)
    services: set[int] = set()
    for row in _sms_channels(session, phone):
        if row.opted_out_at is not None:
            continue
        row.opted_out_at = now
        services.add(row.contact.service_id)
        # The contact's id, never the number: the audit log is read more widely.
        audit.record(
            session,
            actor_id=None,
            action="contact.sms_opted_out",
            entity="contact",
            entity_id=row.contact_id,
            service_id=row.contact.service_id,
        )
    session.flush()
    ids: list[int] = []
    for service_id in sorted(services):
        ids += hygiene.check_reachable(session, service_id, "sms_stop", public_url=public_url)
    return ids


def _start(session: Session, phone: str) -> None:
    for row in _sms_channels(session, phone):
        if row.opted_out_at is None:
            continue
        row.opted_out_at = None
        audit.record(
            session,
            actor_id=None,
            action="contact.sms_opted_in",
            entity="contact",
            entity_id=row.contact_id,
            service_id=row.contact.service_id,
        )


def _code_reply(session: Session, phone: str, body: str, secret: str) -> str:
    contact_ids = confirm_sms_reply(session, phone, body, secret=secret)
    if not contact_ids:
        return NO_MATCH
    names = list(
        dict.fromkeys(
            session.scalars(
                select(Service.name)
                .join(Contact, Contact.service_id == Service.id)
                .where(Contact.id.in_(contact_ids))
                .order_by(Service.name)
            )
        )
    )
    services = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"Thanks, this number is confirmed for {services} drug alerts."
