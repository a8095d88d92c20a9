"""Turn an approved alert version into delivery rows: the transactional outbox.

Called inside the approval's transaction, so either the approval and every delivery row
exist together or neither does. The unique key (alert, version, contact, channel) makes a
second write impossible rather than merely unlikely.
"""

from __future__ import annotations

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from ldis.domain.audience import ServiceCoverage, services_in_audience
from ldis.domain.deliveries import DeliveryStatus
from ldis.store.models import (
    AlertVersion,
    Area,
    Contact,
    ContactChannel,
    Delivery,
    Service,
    ServiceArea,
)
from ldis.store.models.base import utcnow


def write_deliveries(session: Session, alert_id: int, version: AlertVersion) -> int:
    """Insert one queued delivery per verified (contact, channel) in the audience; return count."""
    parent_of = dict(session.execute(select(Area.id, Area.parent_id)).all())
    codes = version.content.get("areas", [])
    alert_area_ids = list(session.scalars(select(Area.id).where(Area.code.in_(codes))))
    coverage: dict[int, tuple[str, set[int]]] = {}
    for service_id, service_type, area_id in session.execute(
        select(Service.id, Service.type, ServiceArea.area_id).join(
            ServiceArea, ServiceArea.service_id == Service.id
        )
    ):
        coverage.setdefault(service_id, (service_type, set()))[1].add(area_id)
    services = [
        ServiceCoverage(service_id=sid, service_type=stype, area_ids=frozenset(areas))
        for sid, (stype, areas) in coverage.items()
    ]
    chosen = services_in_audience(
        services, alert_area_ids, version.content.get("service_types", []), parent_of
    )
    if not chosen:
        return 0
    targets = session.execute(
        select(ContactChannel.contact_id, ContactChannel.channel)
        .join(Contact, Contact.id == ContactChannel.contact_id)
        .where(Contact.service_id.in_(chosen), ContactChannel.verified_at.is_not(None))
        .order_by(ContactChannel.contact_id, ContactChannel.channel)
    ).all()
    now = utcnow()
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
        }
        for contact_id, channel in targets
    ]
    if rows:
        session.execute(insert(Delivery), rows)
    return len(rows)
