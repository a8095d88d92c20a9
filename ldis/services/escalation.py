"""Escalation of urgent alerts a service has not acknowledged in time (run every minute by
the scheduler: `ldis.escalate_alerts`).

For the live version of every live **urgent** alert (purpose `alert` or `update`; not a
withdrawal notice) approved at least `after` (`LDIS_ESCALATE_AFTER_MINUTES`) ago, each
service it was sent to where no contact has acknowledged it moves up, one stage at a time:

1. **backup**: the service's backup contacts. The first wave already includes backups (the
   audience is every willing contact, whatever their role), so for a backup who got that
   version, a *reminder* goes on the same channel as a notice ("nobody at <service> has
   confirmed ...", with the link that acknowledges their own message). A backup who did
   not get it (added or confirmed since, or a channel that was not yet usable) gets the
   alert itself: a new delivery of the same version (the deliveries' unique key makes a
   repeat a no-op).
2. **panel**: `after` later, still no acknowledgement: one e-mail to each panel member
   listing the services not reached, with every phone number on file for each, so they
   can ring round. A service with no backup to try goes to the panel at once.

Each stage happens at most once per (alert, version, service): the `escalations` row is
inserted first (`ON CONFLICT DO NOTHING`), and only the run that inserted it writes the
messages and the audit event (`alert.escalated`), in the same transaction. Two runs at once
therefore do the work once; a second run finds nothing to do.

Exercises escalate too (they exist to rehearse the loop, and this is part of it): every
message they cause is marked EXERCISE like the exercise itself. Versions approved more than
`WINDOW` ago start no new escalation, so an old alert nobody acknowledged (e.g. from before
escalation existed) does not suddenly wake everyone up.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ldis.domain.alerts import AlertKind, AlertPriority, AlertStatus, VersionPurpose, VersionState
from ldis.domain.audience import (
    ChannelFacts,
    ContactFacts,
    channel_usable,
    contact_willing,
    has_address,
)
from ldis.domain.deliveries import DeliveryStatus
from ldis.domain.roles import Role
from ldis.messages.context import is_exercise, reference
from ldis.messages.render import EXERCISE_END, EXERCISE_START, EXERCISE_SUBJECT_PREFIX
from ldis.services import audit, notices
from ldis.services.links import Links
from ldis.services.ports import TaskQueue
from ldis.services.progress import ServiceContacts, service_contacts
from ldis.store.db import Database, dialect_insert
from ldis.store.models import (
    Alert,
    AlertVersion,
    Contact,
    Delivery,
    Escalation,
    Service,
    User,
    UserRole,
)

log = logging.getLogger(__name__)
LONDON = ZoneInfo("Europe/London")

BACKUP = "backup"
PANEL = "panel"
STAGES = (BACKUP, PANEL)
# A version approved longer ago than this starts no new escalation.
WINDOW = timedelta(hours=24)
# Messages that may have reached their contact: a backup who got one is reminded.
_REACHED = (
    DeliveryStatus.sending.value,
    DeliveryStatus.sent.value,
    DeliveryStatus.delivered.value,
)
_ENDED = (AlertStatus.withdrawn.value, AlertStatus.expired.value)


@dataclass
class Escalated:
    """What a run did: new deliveries and notices to enqueue after the commit, and each
    (alert, version, service, stage) it reached."""

    delivery_ids: list[int] = field(default_factory=list)
    notice_ids: list[int] = field(default_factory=list)
    stages: list[tuple[int, int, int, str]] = field(default_factory=list)


@dataclass(frozen=True)
class _Version:
    alert_id: int
    version: int
    title: str
    priority: str
    content: dict[str, Any]
    approved_at: datetime

    @property
    def ref(self) -> str:
        return reference(self.alert_id, self.version)

    @property
    def exercise(self) -> bool:
        return is_exercise(self.content)

    @property
    def kind(self) -> str:
        return str(self.content.get("kind") or AlertKind.drug_alert.value)


def escalate(
    db: Database,
    *,
    after: timedelta,
    links: Links,
    now: datetime | None = None,
) -> Escalated:
    """One run: every stage that is due, each in its own transaction. Idempotent. One
    alert that cannot be escalated (a bug, bad data) is logged and does not hold up the
    others; the next run tries it again."""
    now = now or datetime.now(UTC)
    result = Escalated()
    for version in _due_versions(db, after, now):
        try:
            _escalate_version(db, version, after, links, now, result)
        except Exception:
            log.exception("escalation of alert %s v%s failed", version.alert_id, version.version)
    return result


def _escalate_version(
    db: Database,
    version: _Version,
    after: timedelta,
    links: Links,
    now: datetime,
    result: Escalated,
) -> None:
    pending = _unacknowledged(db, version)
    if not pending:
        return
    stages = _stages(db, version)
    if version.approved_at > now - WINDOW:
        for service_id in sorted(pending):
            if BACKUP not in stages.get(service_id, {}):
                _backup_stage(db, version, service_id, links, now, result)
        stages = _stages(db, version)
    ready = sorted(
        service_id
        for service_id in pending
        if BACKUP in stages.get(service_id, {})
        and PANEL not in stages[service_id]
        and _backup_done(stages[service_id][BACKUP], after, now)
    )
    if ready:
        tried = {sid: stages[sid][BACKUP].messages for sid in ready}
        _panel_stage(db, version, ready, tried, links.public_url, now, result)


def enqueue(queue: TaskQueue | None, result: Escalated) -> None:
    """Ring the doorbell after the commit; if the broker is down the sweepers send them."""
    if queue is not None and result.delivery_ids:
        try:
            queue.enqueue_deliveries(result.delivery_ids, urgent=True)
        except Exception:
            log.warning(
                "broker unavailable: %s escalation deliveries left for the sweeper",
                len(result.delivery_ids),
            )
    notices.enqueue_quietly(queue, list(result.notice_ids))


# --- what is due --------------------------------------------------------------------------


def _due_versions(db: Database, after: timedelta, now: datetime) -> list[_Version]:
    with db.transaction() as session:
        rows = session.execute(
            select(
                AlertVersion.alert_id,
                AlertVersion.version,
                AlertVersion.title,
                AlertVersion.priority,
                AlertVersion.content,
                AlertVersion.approved_at,
            )
            .join(
                Alert,
                (Alert.id == AlertVersion.alert_id) & (Alert.live_version == AlertVersion.version),
            )
            .where(
                Alert.status.not_in(_ENDED),
                (Alert.expires_at.is_(None)) | (Alert.expires_at > now),
                AlertVersion.priority == AlertPriority.urgent.value,
                AlertVersion.purpose.in_([VersionPurpose.alert.value, VersionPurpose.update.value]),
                AlertVersion.state == VersionState.approved.value,
                AlertVersion.approved_at <= now - after,
            )
            .order_by(AlertVersion.alert_id)
        ).all()
    return [_Version(*row) for row in rows]


def _acknowledged_by(session: Session, version: _Version) -> dict[int, int]:
    """{service: acknowledgements} over every service the version was sent to (cancelled
    messages aside: they never went)."""
    rows = session.execute(
        select(Contact.service_id, func.count(Delivery.acknowledged_at))
        .join(Contact, Contact.id == Delivery.contact_id)
        .where(
            Delivery.alert_id == version.alert_id,
            Delivery.version == version.version,
            Delivery.status != DeliveryStatus.cancelled.value,
        )
        .group_by(Contact.service_id)
    ).all()
    return {service_id: int(acks) for service_id, acks in rows}


def _unacknowledged(db: Database, version: _Version) -> set[int]:
    with db.transaction() as session:
        return {sid for sid, acks in _acknowledged_by(session, version).items() if not acks}


def _still_unacknowledged(session: Session, version: _Version, service_id: int) -> bool:
    acknowledged = session.scalar(
        select(func.count())
        .select_from(Delivery)
        .join(Contact, Contact.id == Delivery.contact_id)
        .where(
            Delivery.alert_id == version.alert_id,
            Delivery.version == version.version,
            Contact.service_id == service_id,
            Delivery.acknowledged_at.is_not(None),
        )
    )
    return not acknowledged


def _stages(db: Database, version: _Version) -> dict[int, dict[str, Escalation]]:
    with db.transaction() as session:
        found: dict[int, dict[str, Escalation]] = defaultdict(dict)
        for row in session.scalars(
            select(Escalation).where(
                Escalation.alert_id == version.alert_id, Escalation.version == version.version
            )
        ):
            found[row.service_id][row.stage] = row
        session.expunge_all()
        return dict(found)


def _backup_done(backup: Escalation, after: timedelta, now: datetime) -> bool:
    """The panel's turn: the backups had `after` to answer, or there was nobody to try."""
    return backup.messages == 0 or backup.at <= now - after


def _claim_stage(
    session: Session, version: _Version, service_id: int, stage: str, now: datetime
) -> int | None:
    """Insert the stage's row; its id when this run won it, None when it already exists."""
    statement = (
        dialect_insert(session)(Escalation)
        .values(
            alert_id=version.alert_id,
            version=version.version,
            service_id=service_id,
            stage=stage,
            at=now,
            messages=0,
        )
        .on_conflict_do_nothing(index_elements=["alert_id", "version", "service_id", "stage"])
        .returning(Escalation.id)
    )
    won: int | None = session.execute(statement).scalar_one_or_none()
    return won


# --- stage 1: the service's backup contacts -----------------------------------------------


def _backup_stage(
    db: Database,
    version: _Version,
    service_id: int,
    links: Links,
    now: datetime,
    result: Escalated,
) -> None:
    new_deliveries: list[int] = []
    new_notices: list[int] = []
    with db.transaction() as session:
        if not _still_unacknowledged(session, version, service_id):
            return
        stage_id = _claim_stage(session, version, service_id, BACKUP, now)
        if stage_id is None:
            return  # another run did it
        backups = list(
            session.scalars(
                select(Contact)
                .where(Contact.service_id == service_id, Contact.role == "backup")
                .order_by(Contact.id)
            )
        )
        earlier = {
            (d.contact_id, d.channel): d
            for d in session.scalars(
                select(Delivery).where(
                    Delivery.alert_id == version.alert_id,
                    Delivery.version == version.version,
                    Delivery.contact_id.in_([c.id for c in backups]),
                )
            )
        }
        service_name = _service_name(session, service_id)
        for contact in backups:
            for channel in _usable_channels(contact, version.kind):
                sent = earlier.get((contact.id, channel))
                if sent is None:
                    delivery_id = _write_delivery(session, version, contact.id, channel, now)
                    if delivery_id is not None:
                        new_deliveries.append(delivery_id)
                elif sent.status in _REACHED and sent.acknowledged_at is None:
                    notice_id = _remind(
                        session, version, contact, sent, service_name, links, channel
                    )
                    if notice_id is not None:
                        new_notices.append(notice_id)
        messages = len(new_deliveries) + len(new_notices)
        session.execute(
            update(Escalation).where(Escalation.id == stage_id).values(messages=messages)
        )
        audit.record(
            session,
            actor_id=None,
            action="alert.escalated",
            entity="alert",
            entity_id=version.alert_id,
            version=version.version,
            service_id=service_id,
            stage=BACKUP,
            deliveries=len(new_deliveries),
            reminders=len(new_notices),
            exercise=version.exercise,
        )
    result.delivery_ids += new_deliveries
    result.notice_ids += new_notices
    result.stages.append((version.alert_id, version.version, service_id, BACKUP))
    log.info(
        "alert %s v%s escalated to the backups of service %s: %s messages",
        version.alert_id,
        version.version,
        service_id,
        messages,
    )


def _service_name(session: Session, service_id: int) -> str:
    return session.scalar(select(Service.name).where(Service.id == service_id)) or "the service"


def _usable_channels(contact: Contact, kind: str) -> list[str]:
    """The channels an alert of `kind` may go to this contact on, by the audience's rules."""
    willing = contact_willing(
        ContactFacts(
            opted_out=contact.opted_out_at is not None,
            unsubscribed=kind in {u.alert_kind for u in contact.unsubscriptions},
        )
    )
    if not willing:
        return []
    return sorted(
        row.channel
        for row in contact.channels
        if channel_usable(
            ChannelFacts(
                verified=row.verified_at is not None,
                opted_out=row.opted_out_at is not None,
                failed=row.failed_at is not None,
                addressed=has_address(row.channel, contact.phone, contact.email),
            )
        )
    )


def _write_delivery(
    session: Session, version: _Version, contact_id: int, channel: str, now: datetime
) -> int | None:
    """The alert itself, as one more delivery of the same version (urgent: sent at once)."""
    statement = (
        dialect_insert(session)(Delivery)
        .values(
            alert_id=version.alert_id,
            version=version.version,
            contact_id=contact_id,
            channel=channel,
            priority=version.priority,
            status=DeliveryStatus.queued.value,
            attempts=0,
            queued_at=now,
            not_before=None,
        )
        .on_conflict_do_nothing(index_elements=["alert_id", "version", "contact_id", "channel"])
        .returning(Delivery.id)
    )
    written: int | None = session.execute(statement).scalar_one_or_none()
    return written


def _uk(moment: datetime) -> str:
    return moment.astimezone(LONDON).strftime("%-d %b %Y, %H:%M")


def _marked(text: str, *, exercise: bool, sms: bool) -> str:
    if not exercise:
        return text
    gap = "\n" if sms else "\n\n"
    return f"{EXERCISE_START}{gap}{text}{gap}{EXERCISE_END}"


def _remind(
    session: Session,
    version: _Version,
    contact: Contact,
    sent: Delivery,
    service_name: str,
    links: Links,
    channel: str,
) -> int | None:
    """A backup who got the alert is asked to confirm it: the link acknowledges their own
    message, so the service counts as reached."""
    ack_url = links.ack_url(sent.id)
    when = _uk(sent.sent_at or version.approved_at)
    if channel == "sms":
        recipient = contact.phone or ""
        subject = None
        text = (
            f"URGENT LDIS: nobody at {service_name} has confirmed alert {version.ref} "
            f"sent {when}. Please read it and confirm: {ack_url} (or reply ACK)"
        )
    else:
        recipient = contact.email or ""
        subject = f"URGENT: please confirm {version.ref}: {version.title}"
        text = (
            f"Nobody at {service_name} has yet confirmed the urgent alert {version.ref} "
            f'"{version.title}", sent to you at {when} (UK time). You are one of the '
            "service's backup contacts.\n\n"
            f"Please read it, make sure your colleagues know, and confirm it here:\n{ack_url}\n"
        )
    if version.exercise and subject is not None:
        subject = EXERCISE_SUBJECT_PREFIX + subject
    return notices.queue_notice(
        session,
        dedupe_key=f"escalation:{version.alert_id}:v{version.version}:{contact.id}:{channel}",
        purpose="alert_escalation",
        channel=channel,
        recipient=recipient,
        subject=subject,
        text=_marked(text, exercise=version.exercise, sms=channel == "sms"),
    )


# --- stage 2: the panel, with a phone list ------------------------------------------------


def _panel_members(session: Session) -> list[tuple[int, str]]:
    """Every active panel member; if there is none, every active admin (somebody must ring)."""
    for role in (Role.panel, Role.admin):
        rows = session.execute(
            select(User.id, User.email)
            .join(UserRole, UserRole.user_id == User.id)
            .where(UserRole.role == role.value, User.active.is_(True))
            .order_by(User.id)
        ).all()
        if rows:
            return [(user_id, email) for user_id, email in rows]
    return []


def _panel_stage(
    db: Database,
    version: _Version,
    service_ids: Iterable[int],
    backups_tried: dict[int, int],
    public_url: str,
    now: datetime,
    result: Escalated,
) -> None:
    new_notices: list[int] = []
    with db.transaction() as session:
        won: dict[int, int] = {}
        for service_id in service_ids:
            if not _still_unacknowledged(session, version, service_id):
                continue
            stage_id = _claim_stage(session, version, service_id, PANEL, now)
            if stage_id is not None:
                won[service_id] = stage_id
        if not won:
            return
        members = _panel_members(session)
        subject, text = panel_notice(
            version_title=version.title,
            ref=version.ref,
            approved_at=version.approved_at,
            services=service_contacts(session, list(won)),
            backups_tried=backups_tried,
            progress_url=f"{public_url}/alerts/{version.alert_id}/deliveries",
            now=now,
        )
        if version.exercise:
            subject = EXERCISE_SUBJECT_PREFIX + subject
            text = _marked(text, exercise=True, sms=False)
        batch = min(won.values())  # this run's: a later batch is a new notice
        for user_id, email in members:
            notice_id = notices.queue_notice(
                session,
                dedupe_key=f"escalation-panel:{version.alert_id}:v{version.version}:{batch}:{user_id}",
                purpose="alert_escalation",
                channel="email",
                recipient=email,
                subject=subject,
                text=text,
            )
            if notice_id is not None:
                new_notices.append(notice_id)
        session.execute(
            update(Escalation)
            .where(Escalation.id.in_(list(won.values())))
            .values(messages=len(new_notices))
        )
        for service_id in won:
            audit.record(
                session,
                actor_id=None,
                action="alert.escalated",
                entity="alert",
                entity_id=version.alert_id,
                version=version.version,
                service_id=service_id,
                stage=PANEL,
                panel_members=len(members),
                exercise=version.exercise,
            )
    result.notice_ids += new_notices
    result.stages += [(version.alert_id, version.version, sid, PANEL) for sid in won]
    log.info(
        "alert %s v%s: %s services not reached, %s panel members told",
        version.alert_id,
        version.version,
        len(won),
        len(new_notices),
    )


def panel_notice(
    *,
    version_title: str,
    ref: str,
    approved_at: datetime,
    services: list[ServiceContacts],
    backups_tried: dict[int, int],
    progress_url: str,
    now: datetime,
) -> tuple[str, str]:
    """The panel's e-mail: the services not reached, each with every phone number on file
    (`backups_tried`: messages the backup stage sent, by service)."""
    count = len(services)
    which = "this service" if count == 1 else f"these {count} services"
    minutes = int((now - approved_at).total_seconds() // 60)
    lines = [
        f'Nobody at {which} has acknowledged the urgent alert {ref} "{version_title}", '
        f"sent {_uk(approved_at)} (UK time), {minutes} minutes ago.",
        "",
        "Please ring round to make sure they have it and know what to do:",
    ]
    for service in services:
        tried = backups_tried.get(service.service_id, 0)
        lines += [
            "",
            f"{service.name} ({service.type_label})",
            f"  Backup contacts: {tried} message{'s' if tried != 1 else ''} sent"
            if tried
            else "  Backup contacts: none to try",
        ]
        phones = [c for c in service.contacts if c.phone_display]
        for contact in phones:
            lines.append(f"  {contact.name} ({contact.role}): {contact.phone_display}")
        if not phones:
            lines.append("  No phone number on file: see the service's page.")
    lines += [
        "",
        f"Delivery progress and the services still to reach: {progress_url}",
        "",
        f"This list is as of {_uk(now)} (UK time); a service that acknowledges leaves it.",
    ]
    plural = "service has" if count == 1 else "services have"
    subject = f"URGENT: {count} {plural} not acknowledged {ref}: {version_title}"
    return subject, "\n".join(lines) + "\n"
