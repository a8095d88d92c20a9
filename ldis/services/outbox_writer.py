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

from sqlalchemy import insert
from sqlalchemy.orm import Session

from ldis.domain.alerts import AlertKind, AlertLevel
from ldis.domain.audience import AudienceQuery, not_before
from ldis.domain.deliveries import DeliveryStatus
from ldis.services.audience import resolve
from ldis.store.models import AlertVersion, Delivery
from ldis.store.models.base import utcnow


def audience_query(version: AlertVersion) -> AudienceQuery:
    """The audience question an approved version asks. Its content was validated when it
    was drafted, so it is taken as stored (older versions lack kind and neighbours), never
    refused at the moment of sending."""
    content = version.content
    return AudienceQuery.model_construct(
        areas=[str(code).strip().upper() for code in content.get("areas", [])],
        service_types=[str(t).strip().lower() for t in content.get("service_types", [])],
        level=AlertLevel(version.level),
        kind=AlertKind(content.get("kind", AlertKind.drug_alert.value)),
        include_neighbours=bool(content.get("include_neighbours", False)),
    )


def write_deliveries(
    session: Session, alert_id: int, version: AlertVersion, *, now: datetime | None = None
) -> int:
    """Insert one queued delivery per reachable (contact, channel); return the count."""
    audience = resolve(session, audience_query(version))
    now = now or utcnow()
    # Many contacts share the same quiet hours: work out each pair's end once.
    ends: dict[tuple[time | None, time | None], datetime | None] = {}
    rows = []
    for contact, channel in audience.pairs():
        key = (contact.quiet_start, contact.quiet_end)
        if key not in ends:
            ends[key] = not_before(version.priority, *key, now)
        rows.append(
            {
                "alert_id": alert_id,
                "version": version.version,
                "contact_id": contact.contact_id,
                "channel": channel,
                "priority": version.priority,
                "status": DeliveryStatus.queued.value,
                "attempts": 0,
                "queued_at": now,
                "not_before": ends[key],
            }
        )
    if rows:
        session.execute(insert(Delivery), rows)
    return len(rows)
