"""A contact's own choices, reached by the signed link in every message (no account): which
kinds of alert they want, quiet hours, unsubscribing from everything and coming back.

Each change is one transaction with its audit event (actor: none, it is the contact) and is
honoured at once: the claim before every send reads these rows. A link whose version is not
the contact's current `link_version` has been revoked and finds nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from ldis.domain.alerts import ALERT_KIND_LABELS, AlertKind
from ldis.domain.errors import NotFound, ValidationFailed
from ldis.domain.masking import mask_email, mask_phone
from ldis.domain.recipients import QuietHours
from ldis.services import audit, hygiene
from ldis.store.db import Database
from ldis.store.models import Contact, ContactChannel, ContactUnsubscription

CHANNEL_LABELS = {"sms": "Text messages", "email": "E-mail"}
STATES = {
    "receiving": "Receiving alerts",
    "unconfirmed": "Not confirmed yet: nothing is sent until the address is confirmed",
    "stopped_sms": "Stopped: you replied STOP. Text START to the same number to get alerts again",
    "stopped_email": "Stopped: you unsubscribed from alert e-mails",
    "failing": "Not arriving: your service's manager has been asked to check the address",
}


def _contact(session: Session, contact_id: int, link_version: int, lock: bool = False) -> Contact:
    contact = session.get(Contact, contact_id, with_for_update=lock or None)
    if contact is None or contact.link_version != link_version:
        raise NotFound("This link is not valid any more.")
    return contact


def _state(row: ContactChannel) -> str:
    if row.opted_out_at is not None:
        return "stopped_sms" if row.channel == "sms" else "stopped_email"
    if row.failed_at is not None:
        return "failing"
    if row.verified_at is None:
        return "unconfirmed"
    return "receiving"


def _offered_kinds(contact: Contact) -> list[AlertKind]:
    """The kinds the contact's service receives (all of them when it chose none)."""
    wanted = set(contact.service.alert_kinds or [])
    return [kind for kind in AlertKind if not wanted or kind.value in wanted]


def view(db: Database, contact_id: int, link_version: int) -> dict[str, Any]:
    with db.transaction() as session:
        contact = _contact(session, contact_id, link_version)
        unsubscribed = {u.alert_kind for u in contact.unsubscriptions}
        channels = []
        for row in sorted(contact.channels, key=lambda c: c.channel):
            address = contact.phone if row.channel == "sms" else contact.email
            masked = ""
            if address:
                masked = mask_phone(address) if row.channel == "sms" else mask_email(address)
            state = _state(row)
            channels.append(
                {
                    "channel": row.channel,
                    "label": CHANNEL_LABELS.get(row.channel, row.channel),
                    "address": masked,
                    "state": state,
                    "state_text": STATES[state],
                }
            )
        return {
            "service": contact.service.name,
            "channels": channels,
            "kinds": [
                {
                    "kind": kind.value,
                    "label": ALERT_KIND_LABELS[kind],
                    "subscribed": kind.value not in unsubscribed,
                }
                for kind in _offered_kinds(contact)
            ],
            "quiet_start": contact.quiet_start.strftime("%H:%M") if contact.quiet_start else "",
            "quiet_end": contact.quiet_end.strftime("%H:%M") if contact.quiet_end else "",
            "opted_out": contact.opted_out_at is not None,
        }


def set_kinds(db: Database, contact_id: int, link_version: int, wanted: list[str]) -> list[str]:
    """Receive exactly the `wanted` kinds of those the service gets; return those stopped."""
    known = {kind.value for kind in AlertKind}
    if any(value not in known for value in wanted):
        raise ValidationFailed({"kinds": "choose kinds from the list"})
    with db.transaction() as session:
        contact = _contact(session, contact_id, link_version, lock=True)
        offered = {kind.value for kind in _offered_kinds(contact)}
        stopped = sorted(offered - set(wanted))
        before = sorted(u.alert_kind for u in contact.unsubscriptions)
        # Kinds the service does not receive keep whatever the contact chose before.
        keep = [u for u in contact.unsubscriptions if u.alert_kind not in offered]
        current = {u.alert_kind: u for u in contact.unsubscriptions}
        contact.unsubscriptions = keep + [
            current.get(kind) or ContactUnsubscription(alert_kind=kind) for kind in stopped
        ]
        session.flush()
        after = sorted(u.alert_kind for u in contact.unsubscriptions)
        if after != before:
            audit.record(
                session,
                actor_id=None,
                action="contact.kinds_changed",
                entity="contact",
                entity_id=contact.id,
                service_id=contact.service_id,
                unsubscribed=after,
                via="self_service",
            )
        return stopped


def set_quiet_hours(
    db: Database, contact_id: int, link_version: int, start: str, end: str
) -> dict[str, str]:
    """Both times (UK, HH:MM) set quiet hours; both blank clears them."""
    start, end = start.strip(), end.strip()
    quiet: QuietHours | None = None
    if start or end:
        errors = {}
        if not start:
            errors["quiet_start"] = "Enter the time quiet hours start, like 22:00"
        if not end:
            errors["quiet_end"] = "Enter the time quiet hours end, like 07:00"
        if errors:
            raise ValidationFailed(errors)
        try:
            quiet = QuietHours.model_validate({"start": start, "end": end})
        except ValidationError as exc:
            raise ValidationFailed(_quiet_errors(exc)) from None
    with db.transaction() as session:
        contact = _contact(session, contact_id, link_version, lock=True)
        new = (quiet.start, quiet.end) if quiet else (None, None)
        if (contact.quiet_start, contact.quiet_end) != new:
            contact.quiet_start, contact.quiet_end = new
            contact.updated_at = datetime.now(UTC)
            audit.record(
                session,
                actor_id=None,
                action="contact.quiet_hours_changed",
                entity="contact",
                entity_id=contact.id,
                service_id=contact.service_id,
                quiet_hours=f"{start}-{end}" if quiet else None,
                via="self_service",
            )
    return {"start": start, "end": end}


def _quiet_errors(exc: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for error in exc.errors():
        where = error["loc"][0] if error["loc"] else ""
        if where == "start":
            errors.setdefault("quiet_start", "Enter a real time, like 22:00")
        elif where == "end":
            errors.setdefault("quiet_end", "Enter a real time, like 07:00")
        else:
            errors.setdefault(
                "quiet_end", "The end must differ from the start, like 22:00 to 07:00"
            )
    return errors


def unsubscribe_all(
    db: Database, contact_id: int, link_version: int, *, public_url: str = ""
) -> list[int]:
    """Stop every alert to this contact; return notices for the managers (if the service
    is now unreachable). Doing it twice changes nothing."""
    with db.transaction() as session:
        contact = _contact(session, contact_id, link_version, lock=True)
        if contact.opted_out_at is not None:
            return []
        contact.opted_out_at = datetime.now(UTC)
        audit.record(
            session,
            actor_id=None,
            action="contact.unsubscribed",
            entity="contact",
            entity_id=contact.id,
            service_id=contact.service_id,
            via="self_service",
        )
        session.flush()
        return hygiene.check_reachable(
            session, contact.service_id, "unsubscribed", public_url=public_url
        )


def resubscribe(db: Database, contact_id: int, link_version: int) -> bool:
    """Undo unsubscribing (everything, or alert e-mails by one click); SMS STOP stays until
    the phone texts START, since Twilio blocks the number until then."""
    with db.transaction() as session:
        contact = _contact(session, contact_id, link_version, lock=True)
        email = next((c for c in contact.channels if c.channel == "email"), None)
        changed = contact.opted_out_at is not None or (
            email is not None and email.opted_out_at is not None
        )
        if not changed:
            return False
        contact.opted_out_at = None
        if email is not None:
            email.opted_out_at = None
        audit.record(
            session,
            actor_id=None,
            action="contact.resubscribed",
            entity="contact",
            entity_id=contact.id,
            service_id=contact.service_id,
            via="self_service",
        )
        return True


def one_click(
    db: Database, contact_id: int, link_version: int, *, public_url: str = ""
) -> list[int]:
    """RFC 8058 one-click from a mail client: stop alert e-mails to this contact (as STOP
    stops texts). A contact with no e-mail channel is unsubscribed from everything."""
    with db.transaction() as session:
        contact = _contact(session, contact_id, link_version, lock=True)
        email = next((c for c in contact.channels if c.channel == "email"), None)
        if email is None:
            if contact.opted_out_at is not None:
                return []
            contact.opted_out_at = datetime.now(UTC)
            action, reason = "contact.unsubscribed", "unsubscribed"
        else:
            if email.opted_out_at is not None:
                return []
            email.opted_out_at = datetime.now(UTC)
            action, reason = "contact.email_opted_out", "email_unsubscribed"
        audit.record(
            session,
            actor_id=None,
            action=action,
            entity="contact",
            entity_id=contact.id,
            service_id=contact.service_id,
            via="one_click",
        )
        session.flush()
        return hygiene.check_reachable(session, contact.service_id, reason, public_url=public_url)
