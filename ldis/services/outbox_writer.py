"""Turn an approved alert version into delivery rows: the transactional outbox.

Called inside the approval's transaction, so either the approval and every delivery row
exist together or neither does. The unique key (alert, version, contact, channel) makes a
second write impossible rather than merely unlikely.

Who gets a row is decided by `ldis.services.audience.resolve`, the same query the panel's
preview runs, so the preview and the sending can never disagree. A standard alert approved
during a contact's quiet hours gets `not_before` (the end of those hours); the workers do
not claim it until then, and the sweeper offers it once it is due.
"""

from __future__ import annotations

from datetime import datetime, time

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from ldis.domain.alerts import AlertKind, AlertLevel
from ldis.domain.audience import AudienceQuery, not_before
from ldis.domain.deliveries import DeliveryStatus
from ldis.services.audience import resolve
from ldis.services.gc_pause import collection_paused
from ldis.services.outbox_bulk import insert_queued
from ldis.store.db import dialect_insert, on_postgresql
from ldis.store.models import AlertVersion, Contact, Delivery
from ldis.store.models.base import utcnow


def audience_query(version: AlertVersion) -> AudienceQuery:
    """The audience question an approved version asks. Its content was validated when it
    was drafted, so it is taken as stored (older versions lack kind and neighbours), never
    refused at the moment of sending. An exercise reaches only its participating services."""
    content = version.content
    return AudienceQuery.model_construct(
        areas=[str(code).strip().upper() for code in content.get("areas", [])],
        service_types=[str(t).strip().lower() for t in content.get("service_types", [])],
        level=AlertLevel(version.level),
        kind=AlertKind(content.get("kind", AlertKind.drug_alert.value)),
        include_neighbours=bool(content.get("include_neighbours", False)),
        service_ids=[int(i) for i in content.get("participants", [])]
        if content.get("exercise")
        else [],
    )


# Earlier messages that reached (or may have reached) their contact.
_REACHED = (
    DeliveryStatus.sending.value,
    DeliveryStatus.sent.value,
    DeliveryStatus.delivered.value,
)


def _earlier_recipients(
    session: Session, alert_id: int, before_version: int, statuses: tuple[str, ...]
) -> list[tuple[int, str, time | None, time | None]]:
    """(contact, channel, quiet hours) of earlier versions' deliveries in `statuses`."""
    rows = session.execute(
        select(Delivery.contact_id, Delivery.channel, Contact.quiet_start, Contact.quiet_end)
        .join(Contact, Contact.id == Delivery.contact_id)
        .where(
            Delivery.alert_id == alert_id,
            Delivery.version < before_version,
            Delivery.status.in_(statuses),
        )
        .distinct()
    ).all()
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def cancel_queued(session: Session, alert_id: int, *, reason: str) -> int:
    """Stop what has not gone yet (withdrawn, expired, or replaced by an update)."""
    return int(
        session.execute(
            update(Delivery)
            .where(Delivery.alert_id == alert_id, Delivery.status == DeliveryStatus.queued.value)
            .values(status=DeliveryStatus.cancelled.value, last_error=reason)
        ).rowcount  # type: ignore[attr-defined]
    )


Targets = dict[tuple[int, str], tuple[time | None, time | None]]


def delivery_targets(
    session: Session,
    alert_id: int,
    version: AlertVersion,
    *,
    include_earlier_recipients: bool = False,
    only_earlier_recipients: bool = False,
    query: AudienceQuery | None = None,
) -> Targets:
    """{(contact, channel): quiet hours} a version goes to. The approval writes exactly
    these, and the approvers' preview counts exactly these.

    An update goes to its own audience plus everyone an earlier version was meant for
    (`include_earlier_recipients`); a withdrawal only to those earlier versions reached
    (`only_earlier_recipients`)."""
    targets: Targets = {}
    if not only_earlier_recipients:
        # `query`: another audience for the same version (a neighbour it is shared with).
        audience = resolve(session, query or audience_query(version))
        for contact, channel in audience.pairs():
            targets[(contact.contact_id, channel)] = (contact.quiet_start, contact.quiet_end)
    if include_earlier_recipients or only_earlier_recipients:
        statuses = (
            _REACHED
            if only_earlier_recipients
            else (*_REACHED, DeliveryStatus.queued.value, DeliveryStatus.cancelled.value)
        )
        for contact_id, channel, start, end in _earlier_recipients(
            session, alert_id, version.version, statuses
        ):
            targets.setdefault((contact_id, channel), (start, end))
    return targets


def version_targets(
    session: Session, alert_id: int, version: AlertVersion, query: AudienceQuery | None = None
) -> Targets:
    """Whom a version goes to, by its purpose: an update reaches its audience and every
    earlier recipient; a withdrawal only those earlier versions reached."""
    return delivery_targets(
        session,
        alert_id,
        version,
        include_earlier_recipients=version.purpose == "update",
        only_earlier_recipients=version.purpose == "withdrawal",
        query=query,
    )


def write_deliveries(
    session: Session,
    alert_id: int,
    version: AlertVersion,
    *,
    now: datetime | None = None,
    targets: Targets | None = None,
) -> int:
    """Insert one queued delivery per (contact, channel) of `version_targets` (or of
    `targets`: a neighbour's, written again on sharing, so a row already there is skipped
    by the unique key, never doubled); return the count written. On PostgreSQL in one
    statement (`ldis.services.outbox_bulk`), elsewhere as ORM rows: the same rows."""
    # Targets, slots and rows are ~60,000 short-lived tuples for a county: no collection
    # among them (ldis.services.gc_pause); they are freed as the call returns.
    with collection_paused():
        return _write(session, alert_id, version, now or utcnow(), targets)


def _write(
    session: Session,
    alert_id: int,
    version: AlertVersion,
    now: datetime,
    targets: Targets | None,
) -> int:
    again = targets is not None
    targets = version_targets(session, alert_id, version) if targets is None else targets
    # Many contacts share the same quiet hours: work out each pair's end once.
    ends: dict[tuple[time | None, time | None], datetime | None] = {}
    for key in targets.values():
        if key not in ends:
            ends[key] = not_before(version.priority, *key, now)
    if on_postgresql(session):
        return insert_queued(
            session,
            alert_id=alert_id,
            version=version.version,
            priority=version.priority,
            queued_at=now,
            rows=((contact, channel, ends[key]) for (contact, channel), key in targets.items()),
            skip_existing=again,
        )
    rows = [
        {
            "alert_id": alert_id,
            "version": version.version,
            "contact_id": contact_id,
            "channel": channel,
            "priority": version.priority,
            "status": DeliveryStatus.queued.value,
            "attempts": 0,
            "queued_at": now,
            "not_before": ends[key],
        }
        for (contact_id, channel), key in targets.items()
    ]
    if rows and again:
        done = session.execute(
            dialect_insert(session)(Delivery).on_conflict_do_nothing().returning(Delivery.id),
            rows,
        )
        return len(done.all())
    if rows:
        session.execute(insert(Delivery), rows)
    return len(rows)
