"""Keeping each service reachable: tell its managers when it is left with no contact who can
receive alerts, flag contacts whose messages fail for good, remind each service to review
its details (yearly by default), and the overview behind the /hygiene page.

Notices are written in the caller's transaction (so they go out if and only if the change
committed) and carry no contact's details: a manager is told "a contact", and sees who on
the signed-in page. Every dedupe key is per service (or channel) per day or month, so a
retried webhook or a job run twice writes nothing new.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from ldis.domain.errors import Conflict
from ldis.domain.hygiene import RecipientFailure, review_due, review_overdue
from ldis.domain.principal import Principal
from ldis.services import audit, notices
from ldis.services.permissions import contact_for, managed_ids
from ldis.store.db import Database
from ldis.store.models import (
    Contact,
    ContactChannel,
    Service,
    ServiceManager,
    User,
    UserRole,
)

# Why a service may have become unreachable, as a manager reads it (never who).
REASONS = {
    "sms_stop": "a contact replied STOP to our text messages",
    "unsubscribed": "a contact unsubscribed from all alerts",
    "email_unsubscribed": "a contact unsubscribed from alert e-mails",
    "failed": "messages to a contact failed and cannot be delivered",
}
CHANNEL_LABELS = {"sms": "Text messages", "email": "E-mail"}


@dataclass(frozen=True)
class Recipient:
    user_id: int
    email: str
    is_manager: bool


def recipients_for(session: Session, service_id: int) -> list[Recipient]:
    """The service's active managers; when it has none, every active admin."""
    managers = session.execute(
        select(User.id, User.email)
        .join(ServiceManager, ServiceManager.user_id == User.id)
        .where(ServiceManager.service_id == service_id, User.active.is_(True))
        .order_by(User.id)
    ).all()
    if managers:
        return [Recipient(uid, email, True) for uid, email in managers]
    admins = session.execute(
        select(User.id, User.email)
        .join(UserRole, UserRole.user_id == User.id)
        .where(UserRole.role == "admin", User.active.is_(True))
        .order_by(User.id)
    ).all()
    return [Recipient(uid, email, False) for uid, email in admins]


def _reachable_clause() -> Any:
    return and_(
        Contact.opted_out_at.is_(None),
        ContactChannel.verified_at.is_not(None),
        ContactChannel.opted_out_at.is_(None),
        ContactChannel.failed_at.is_(None),
    )


def reachable_service_ids(session: Session, service_ids: list[int] | None = None) -> set[int]:
    """Services with at least one contact on a verified, not opted-out, not failed channel."""
    query = (
        select(Contact.service_id)
        .join(ContactChannel, ContactChannel.contact_id == Contact.id)
        .where(_reachable_clause())
        .distinct()
    )
    if service_ids is not None:
        query = query.where(Contact.service_id.in_(service_ids))
    return set(session.scalars(query))


def _signature(recipient: Recipient, service_name: str) -> str:
    why = "you manage" if recipient.is_manager else "no manager is set for"
    return f"You get this from the Local Drug Information System because {why} {service_name}."


def _link(public_url: str, path: str) -> str:
    return f"{public_url.rstrip('/')}{path}" if public_url else f"the page {path} in ldis"


def _email_people(
    session: Session,
    service_id: int,
    service_name: str,
    *,
    purpose: str,
    dedupe_key: str,
    subject: str,
    body: str,
) -> list[int]:
    """Queue one e-mail per person responsible for the service (`recipients_for`), signed
    for that person; `dedupe_key` gets their user id, so a repeat writes nothing."""
    ids = []
    for recipient in recipients_for(session, service_id):
        notice_id = notices.queue_notice(
            session,
            dedupe_key=f"{dedupe_key}:{recipient.user_id}",
            purpose=purpose,
            channel="email",
            recipient=recipient.email,
            subject=subject,
            text=f"{body}\n\n{_signature(recipient, service_name)}",
        )
        if notice_id is not None:
            ids.append(notice_id)
    return ids


def check_reachable(
    session: Session, service_id: int, reason: str, *, public_url: str = ""
) -> list[int]:
    """After an opt-out or a failure: if the service now has no reachable contact, queue an
    e-mail to each of its managers (or every admin) and return the notice ids."""
    if reachable_service_ids(session, [service_id]):
        return []
    service = session.get(Service, service_id)
    if service is None:
        return []
    today = datetime.now(UTC).date().isoformat()
    why = REASONS.get(reason, "a contact can no longer be reached")
    ids = _email_people(
        session,
        service_id,
        service.name,
        purpose="manager_alert",
        dedupe_key=f"unreachable:{service_id}:{today}",
        subject=f"{service.name} can no longer receive drug alerts",
        body=(
            f"{service.name} has no contact left who can receive drug alerts: {why}.\n\n"
            "Until a contact is added or fixed, alerts for the service's areas will not reach "
            "it. Please add a contact, or ask a colleague to confirm their mobile number or "
            f"e-mail address, at {_link(public_url, f'/services/{service_id}')}."
        ),
    )
    if ids:
        audit.record(
            session,
            actor_id=None,
            action="service.unreachable",
            entity="service",
            entity_id=service_id,
            reason=reason,
            notices=len(ids),
        )
    return ids


def flag_failure(
    session: Session,
    contact_id: int,
    channel: str,
    failure: RecipientFailure,
    *,
    public_url: str = "",
) -> list[int]:
    """A message to this contact's channel failed for good: stop using the channel, flag the
    contact for the manager, tell the managers; return the notice ids queued."""
    contact = session.get(Contact, contact_id, with_for_update=True)
    if contact is None:
        return []
    now = datetime.now(UTC)
    row = next((c for c in contact.channels if c.channel == channel), None)
    if row is not None and row.failed_at is not None:
        return []  # already flagged for this channel (another delivery in the same batch)
    label = CHANNEL_LABELS.get(channel, channel)
    if row is not None:
        row.failed_at = now
        row.failure_reason = failure.reason[:300]
        if failure.opted_out and row.opted_out_at is None:
            row.opted_out_at = now
    contact.flagged_at = now
    contact.flag_reason = f"{label}: {failure.reason}"[:300]
    audit.record(
        session,
        actor_id=None,
        action="contact.flagged",
        entity="contact",
        entity_id=contact.id,
        service_id=contact.service_id,
        channel=channel,
        reason=failure.reason,
    )
    service_name = contact.service.name
    today = now.date().isoformat()
    ids = _email_people(
        session,
        contact.service_id,
        service_name,
        purpose="manager_alert",
        dedupe_key=f"channel-failed:{contact.id}:{channel}:{today}",
        subject=f"A contact at {service_name} needs checking",
        body=(
            f"{label} to a contact at {service_name} cannot be delivered: {failure.reason}.\n\n"
            "The contact is flagged and gets no more alerts on this channel until it is fixed. "
            "Please check their details, then clear the flag, at "
            f"{_link(public_url, '/hygiene')}."
        ),
    )
    session.flush()
    return ids + check_reachable(session, contact.service_id, "failed", public_url=public_url)


def review_reminders(
    db: Database, *, interval: timedelta, public_url: str, now: datetime | None = None
) -> list[int]:
    """Ask every service whose details are older than `interval` (and that was not asked in
    the last 30 days) to confirm or fix them; return the notice ids queued."""
    now = now or datetime.now(UTC)
    cutoff = now - interval
    month = now.strftime("%Y-%m")
    ids: list[int] = []
    with db.transaction() as session:
        candidates = session.scalars(
            select(Service)
            .where(
                or_(
                    Service.confirmed_at <= cutoff,
                    and_(Service.confirmed_at.is_(None), Service.created_at <= cutoff),
                )
            )
            .order_by(Service.id)
            .with_for_update(skip_locked=True)
        ).all()
        for service in candidates:
            if not review_due(
                confirmed_at=service.confirmed_at,
                created_at=service.created_at,
                reminded_at=service.review_reminded_at,
                now=now,
                interval=interval,
            ):
                continue
            ids.extend(_remind(session, service, month, public_url))
            service.review_reminded_at = now
            audit.record(
                session,
                actor_id=None,
                action="service.review_reminded",
                entity="service",
                entity_id=service.id,
            )
    return ids


def _remind(session: Session, service: Service, month: str, public_url: str) -> list[int]:
    last = service.confirmed_at or service.created_at
    confirmed = "were last confirmed" if service.confirmed_at else "were entered"
    return _email_people(
        session,
        service.id,
        service.name,
        purpose="review",
        dedupe_key=f"review:{service.id}:{month}",
        subject=f"Yearly check: are {service.name}'s details still right?",
        body=(
            f"Please check the details ldis holds for {service.name}: the areas it covers, the "
            "alerts it wants and its contacts (names, mobile numbers, e-mail addresses). They "
            f"{confirmed} on {last:%-d %B %Y}. National guidance asks every local drug "
            "information system to review its distribution lists at least once a year.\n\n"
            f"Open {_link(public_url, f'/services/{service.id}')}, fix anything out of date "
            "and confirm the details."
        ),
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def overview(db: Database, actor: Principal, *, interval: timedelta) -> dict[str, Any]:
    """What needs a manager's attention, within the services `actor` manages."""
    now = datetime.now(UTC)
    with db.transaction() as session:
        allowed = managed_ids(session, actor)
        query = select(Service).order_by(Service.name, Service.id)
        if allowed is not None:
            query = query.where(Service.id.in_(allowed))
        services = list(session.scalars(query))
        reachable = reachable_service_ids(session, [s.id for s in services])
        flagged = [
            {
                "id": contact.id,
                "name": contact.name,
                "service_id": service.id,
                "service": service.name,
                "reason": contact.flag_reason,
                "flagged_at": _iso(contact.flagged_at),
                "channels": [
                    {
                        "channel": ch.channel,
                        "failure": ch.failure_reason if ch.failed_at else None,
                        "opted_out": ch.opted_out_at is not None,
                    }
                    for ch in contact.channels
                ],
            }
            for service in services
            for contact in sorted(service.contacts, key=lambda c: (c.name, c.id))
            if contact.flagged_at is not None
        ]
        return {
            "flagged": flagged,
            "unreachable": [
                {"id": s.id, "name": s.name, "contacts": len(s.contacts)}
                for s in services
                if s.id not in reachable
            ],
            "review_due": [
                {
                    "id": s.id,
                    "name": s.name,
                    "confirmed_at": _iso(s.confirmed_at),
                    "created_at": _iso(s.created_at),
                    "reminded_at": _iso(s.review_reminded_at),
                }
                for s in services
                if review_overdue(
                    confirmed_at=s.confirmed_at, created_at=s.created_at, now=now, interval=interval
                )
            ],
            "interval_days": interval.days,
        }


def clear_flag(db: Database, actor: Principal, contact_id: int) -> dict[str, Any]:
    """After the details are fixed: clear the contact's flag and its channels' failures, so
    alerts are tried again. An opt-out stays: only the person can lift it (START, or their
    own preferences page)."""
    with db.transaction() as session:
        contact = contact_for(session, actor, contact_id, lock=True)
        if contact.flagged_at is None and not any(c.failed_at for c in contact.channels):
            raise Conflict("This contact is not flagged; there is nothing to clear.")
        cleared = sorted(c.channel for c in contact.channels if c.failed_at is not None)
        for row in contact.channels:
            row.failed_at = None
            row.failure_reason = None
        contact.flagged_at = None
        contact.flag_reason = None
        audit.record(
            session,
            actor_id=actor.db_id,
            action="contact.flag_cleared",
            entity="contact",
            entity_id=contact.id,
            service_id=contact.service_id,
            channels=cleared,
        )
        return {"id": contact.id, "service_id": contact.service_id, "cleared": cleared}
