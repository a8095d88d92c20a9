"""The progress of an alert once sent: per version, totals per channel and state, failures
grouped by reason (with the contact and service), the services that have not acknowledged
it (with their contacts, and for the panel a phone list to ring round), and the escalation
stages reached. And the one action the page offers: resend to failed.

Addresses are shown partly hidden (`07700 9•••23`); full phone numbers only to panel
members, who ring services that have not answered. Nothing here is logged with an address.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.orm import Session

from ldis.domain.alerts import AlertKind, AlertPriority, AlertStatus, VersionState
from ldis.domain.deliveries import DeliveryStatus
from ldis.domain.errors import Conflict
from ldis.domain.masking import mask_email, mask_phone
from ldis.domain.principal import Principal
from ldis.domain.recipients_csv import export_phone
from ldis.domain.roles import Role
from ldis.messages.context import reference
from ldis.services import audit
from ldis.services.alert_views import load_alert
from ldis.services.alerts import expire_if_due, locked_alert
from ldis.services.ports import TaskQueue
from ldis.store.db import Database
from ldis.store.models import (
    Alert,
    AlertVersion,
    Contact,
    ContactChannel,
    ContactUnsubscription,
    Delivery,
    Escalation,
    Service,
    ServiceType,
)

log = logging.getLogger(__name__)

# States as a reader sees them: "sending" is still on its way, so it counts as queued.
STATES = ("queued", "sent", "delivered", "failed", "cancelled")
CHANNELS = ("sms", "email")
# Failed deliveries listed per reason (the counts always count them all).
FAILURES_LISTED = 100
# Services not yet acknowledged listed in full per version (the count counts them all).
SERVICES_LISTED = 300
UNKNOWN_ERROR = "no reason recorded"


# --- a service's contacts and phone numbers (the page and the panel's e-mail) --------------


@dataclass(frozen=True)
class ContactLine:
    contact_id: int
    name: str
    role: str  # primary | backup
    phone: str | None  # E.164
    email: str | None
    channels: tuple[tuple[str, str], ...]  # (channel, state: receiving|unconfirmed|stopped|failing)

    @property
    def phone_display(self) -> str | None:
        """The full number as people dial it (07700 900123)."""
        return export_phone(self.phone) or None

    def masked(self, channel: str) -> str:
        if channel == "sms" and self.phone:
            return mask_phone(self.phone)
        if channel == "email" and self.email:
            return mask_email(self.email)
        return ""


@dataclass(frozen=True)
class ServiceContacts:
    service_id: int
    name: str
    type: str
    type_label: str
    contacts: list[ContactLine]


def _channel_state(row: ContactChannel) -> str:
    if row.opted_out_at is not None:
        return "stopped"
    if row.failed_at is not None:
        return "failing"
    return "receiving" if row.verified_at is not None else "unconfirmed"


def service_contacts(session: Session, service_ids: list[int]) -> list[ServiceContacts]:
    """The services (by name) with every contact, primaries first. The service record keeps
    no phone number of its own, so the phone list is its contacts' numbers."""
    if not service_ids:
        return []
    services = session.execute(
        select(Service.id, Service.name, Service.type, ServiceType.label)
        .outerjoin(ServiceType, ServiceType.code == Service.type)
        .where(Service.id.in_(service_ids))
    ).all()
    contacts: dict[int, list[ContactLine]] = defaultdict(list)
    for contact in session.scalars(
        select(Contact).where(Contact.service_id.in_(service_ids)).order_by(Contact.id)
    ):
        contacts[contact.service_id].append(
            ContactLine(
                contact_id=contact.id,
                name=contact.name,
                role=contact.role,
                phone=contact.phone,
                email=contact.email,
                channels=tuple(
                    (row.channel, _channel_state(row))
                    for row in sorted(contact.channels, key=lambda r: r.channel)
                ),
            )
        )
    found = [
        ServiceContacts(
            service_id=sid,
            name=name,
            type=type_code,
            type_label=label or type_code.replace("_", " "),
            contacts=sorted(
                contacts.get(sid, []),
                key=lambda c: (c.role != "primary", c.name.casefold(), c.contact_id),
            ),
        )
        for sid, name, type_code, label in services
    ]
    return sorted(found, key=lambda s: (s.name.casefold(), s.service_id))


# --- the progress view --------------------------------------------------------------------


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _state(status: str) -> str:
    return DeliveryStatus.queued.value if status == DeliveryStatus.sending.value else status


def _blank_counts() -> dict[str, int]:
    return {"total": 0, **dict.fromkeys(STATES, 0), "acknowledged": 0}


def resend_version(alert: Alert) -> AlertVersion | None:
    """The version whose failures "resend to failed" tries again: the last one that went
    out (an update replaces what came before; a withdrawal notice is the last word). None
    when the alert has expired or nothing was sent."""
    if alert.status == AlertStatus.expired.value:
        return None
    sent = [v for v in alert.versions if v.state == VersionState.approved.value]
    return max(sent, key=lambda v: v.version) if sent else None


def _resendable_clause(kind: str) -> ColumnElement[bool]:
    """A failed delivery may be tried again while its contact still has the channel,
    confirmed, and has not stopped (opted out, unsubscribed from this kind) nor had the
    address fail for good: those need the contact's details fixed first."""
    unsubscribed = (
        select(ContactUnsubscription.contact_id)
        .where(
            ContactUnsubscription.contact_id == Delivery.contact_id,
            ContactUnsubscription.alert_kind == kind,
        )
        .exists()
    )
    return (
        ContactChannel.contact_id.is_not(None)
        & ContactChannel.verified_at.is_not(None)
        & (Contact.opted_out_at.is_(None))
        & (ContactChannel.opted_out_at.is_(None))
        & (ContactChannel.failed_at.is_(None))
        & ~unsubscribed
    )


def _kind(version: AlertVersion) -> str:
    return str(version.content.get("kind") or AlertKind.drug_alert.value)


def _version_progress(
    session: Session,
    alert: Alert,
    version: AlertVersion,
    *,
    phones: bool,
    resendable_here: bool,
) -> dict[str, Any]:
    alert_id, number = alert.id, version.version
    of_version = (Delivery.alert_id == alert_id) & (Delivery.version == number)

    by_channel: dict[str, dict[str, int]] = {}
    overall = _blank_counts()
    for channel, status, count, acks in session.execute(
        select(
            Delivery.channel, Delivery.status, func.count(), func.count(Delivery.acknowledged_at)
        )
        .where(of_version)
        .group_by(Delivery.channel, Delivery.status)
    ):
        counts = by_channel.setdefault(channel, _blank_counts())
        for target in (counts, overall):
            target[_state(status)] += count
            target["total"] += count
            target["acknowledged"] += acks

    # Failures, grouped by what went wrong, each with its contact and service.
    resendable = _resendable_clause(_kind(version)).label("resendable")
    failures: dict[str, dict[str, Any]] = {}
    for row in session.execute(
        select(
            Delivery.id,
            Delivery.channel,
            Delivery.last_error,
            Delivery.attempts,
            Contact.id.label("contact_id"),
            Contact.name.label("contact"),
            Contact.phone,
            Contact.email,
            Service.id.label("service_id"),
            Service.name.label("service"),
            resendable,
        )
        .join(Contact, Contact.id == Delivery.contact_id)
        .join(Service, Service.id == Contact.service_id)
        .outerjoin(
            ContactChannel,
            (ContactChannel.contact_id == Delivery.contact_id)
            & (ContactChannel.channel == Delivery.channel),
        )
        .where(of_version, Delivery.status == DeliveryStatus.failed.value)
        .order_by(Service.name, Contact.name, Delivery.id)
    ):
        reason = row.last_error or UNKNOWN_ERROR
        group = failures.setdefault(
            reason, {"reason": reason, "count": 0, "resendable": 0, "deliveries": []}
        )
        can_resend = bool(row.resendable) and resendable_here
        group["count"] += 1
        group["resendable"] += int(can_resend)
        if len(group["deliveries"]) < FAILURES_LISTED:
            address = row.phone if row.channel == "sms" else row.email
            masked = (
                (mask_phone if row.channel == "sms" else mask_email)(address) if address else ""
            )
            group["deliveries"].append(
                {
                    "id": row.id,
                    "channel": row.channel,
                    "attempts": row.attempts,
                    "contact_id": row.contact_id,
                    "contact": row.contact,
                    "address": masked,
                    "service_id": row.service_id,
                    "service": row.service,
                    "resendable": can_resend,
                }
            )
    failure_list = sorted(failures.values(), key=lambda g: (-g["count"], g["reason"]))

    # Services sent this version (cancelled messages never went) and their acknowledgements.
    acks_by_service: dict[int, int] = {
        sid: int(acks)
        for sid, acks in session.execute(
            select(Contact.service_id, func.count(Delivery.acknowledged_at))
            .join(Contact, Contact.id == Delivery.contact_id)
            .where(of_version, Delivery.status != DeliveryStatus.cancelled.value)
            .group_by(Contact.service_id)
        )
    }
    waiting = [sid for sid, acks in acks_by_service.items() if not acks]

    stages: dict[int, list[dict[str, Any]]] = defaultdict(list)
    escalations = []
    for stage, service_id, service_name, at, messages in session.execute(
        select(
            Escalation.stage,
            Escalation.service_id,
            Service.name,
            Escalation.at,
            Escalation.messages,
        )
        .join(Service, Service.id == Escalation.service_id)
        .where(Escalation.alert_id == alert_id, Escalation.version == number)
        .order_by(Escalation.at, Escalation.id)
    ):
        entry = {"stage": stage, "at": _iso(at), "messages": messages}
        stages[service_id].append(entry)
        escalations.append({"service_id": service_id, "service": service_name, **entry})

    listed = service_contacts(session, waiting)[:SERVICES_LISTED]
    not_acknowledged = [
        {
            "id": s.service_id,
            "name": s.name,
            "type": s.type,
            "type_label": s.type_label,
            "escalations": stages.get(s.service_id, []),
            "contacts": [_contact_view(c, phones=phones) for c in s.contacts],
        }
        for s in listed
    ]
    return {
        "version": number,
        "reference": reference(alert_id, number),
        "purpose": version.purpose,
        "priority": version.priority,
        "title": version.title,
        "approved_at": _iso(version.approved_at),
        "totals": {"all": overall, "by_channel": dict(sorted(by_channel.items()))},
        "failures": failure_list,
        "resendable": sum(g["resendable"] for g in failure_list),
        "services": {
            "total": len(acks_by_service),
            "acknowledged": len(acks_by_service) - len(waiting),
            "not_acknowledged": len(waiting),
        },
        "not_acknowledged": not_acknowledged,
        "not_acknowledged_listed": len(not_acknowledged),
        "escalations": escalations,
    }


def _contact_view(contact: ContactLine, *, phones: bool) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": contact.contact_id,
        "name": contact.name,
        "role": contact.role,
        "channels": [
            {"channel": channel, "address": contact.masked(channel), "state": state}
            for channel, state in contact.channels
        ],
    }
    if phones:
        view["phone"] = contact.phone
        view["phone_display"] = contact.phone_display
    return view


def progress(
    db: Database, actor: Principal, alert_id: int, *, escalate_after_minutes: int | None = None
) -> dict[str, Any]:
    """The progress of every version sent, newest first. Panel members also get each
    not-yet-acknowledged contact's full phone number; admins see them partly hidden."""
    actor.require(Role.panel, Role.admin)
    phones = actor.has_any(Role.panel)
    with db.transaction() as session:
        alert = load_alert(session, alert_id)
        target = resend_version(alert)
        sent = sorted(
            (v for v in alert.versions if v.state == VersionState.approved.value),
            key=lambda v: v.version,
            reverse=True,
        )
        current = alert.version_row(alert.live_version or alert.current_version)
        return {
            "alert": {
                "id": alert.id,
                "title": current.title,
                "status": alert.status,
                "priority": current.priority,
                "exercise": alert.exercise,
                "live_version": alert.live_version,
            },
            "escalate_after_minutes": escalate_after_minutes,
            "phones_shown": phones,
            "resend_version": target.version if target else None,
            "versions": [
                _version_progress(
                    session,
                    alert,
                    version,
                    phones=phones,
                    resendable_here=target is not None and version.version == target.version,
                )
                for version in sent
            ],
        }


# --- resend to failed ---------------------------------------------------------------------


def resend_failed(
    db: Database,
    actor: Principal,
    alert_id: int,
    *,
    queue: TaskQueue | None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Put the last version's failed deliveries back in the queue (attempts reset) and
    enqueue them, except where the contact or channel has stopped or failed for good:
    those need the contact's details fixed first (Contact checks). Returns how many."""
    actor.require(Role.panel)
    now = now or datetime.now(UTC)
    with db.transaction() as session:
        alert = locked_alert(session, alert_id)
        if expire_if_due(session, alert, now) or alert.status == AlertStatus.expired.value:
            raise Conflict("The alert has expired; nothing is sent again.")
        version = resend_version(alert)
        if version is None:
            raise Conflict("Nothing has been sent for this alert yet.")
        candidates = select(Delivery.id).join(Contact, Contact.id == Delivery.contact_id)
        candidates = candidates.outerjoin(
            ContactChannel,
            (ContactChannel.contact_id == Delivery.contact_id)
            & (ContactChannel.channel == Delivery.channel),
        ).where(
            Delivery.alert_id == alert.id,
            Delivery.version == version.version,
            Delivery.status == DeliveryStatus.failed.value,
            _resendable_clause(_kind(version)),
        )
        ids = list(
            session.scalars(
                update(Delivery)
                .where(
                    Delivery.id.in_(candidates.scalar_subquery()),
                    Delivery.status == DeliveryStatus.failed.value,
                )
                .values(
                    status=DeliveryStatus.queued.value,
                    attempts=0,
                    last_error=None,
                    queued_at=now,
                    claimed_at=None,
                    sent_at=None,
                    delivered_at=None,
                    provider_id=None,
                    provider_status=None,
                )
                .returning(Delivery.id)
            )
        )
        ids.sort()
        if ids:
            audit.record(
                session,
                actor_id=actor.user_id,
                action="alert.resent",
                entity="alert",
                entity_id=alert.id,
                version=version.version,
                deliveries=len(ids),
            )
        urgent = version.priority == AlertPriority.urgent.value
        number = version.version
    if ids and queue is not None:
        try:
            queue.enqueue_deliveries(ids, urgent=urgent)
        except Exception:
            # The sweeper offers queued deliveries again within a minute or two.
            log.warning("broker unavailable: %s resent deliveries left for the sweeper", len(ids))
    return {"alert_id": alert_id, "version": number, "resent": len(ids)}
