"""What a neighbouring partnership receives of an alert shared with it.

Its audience is its own services that want the alert's level and kind (and its service
types, if the alert names some), in any of its areas: the sharing panel cannot see the
neighbour's areas (row-level security), and it shared the alert because the neighbour as a
whole should know. Updates reach that audience and the neighbour's earlier recipients, a
withdrawal only those earlier recipients, as on the alert's own side. The rows are written
in the approval's (or the share's) transaction, acting for the neighbour meanwhile, with
the same unique key (alert, version, contact, channel): written twice, sent once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ldis.domain.alerts import VersionPurpose
from ldis.services.outbox_writer import (
    Targets,
    audience_query,
    cancel_queued,
    version_targets,
    write_deliveries,
)
from ldis.store.models import Alert, AlertShare, AlertVersion, Area, Partnership
from ldis.store.tenancy import switched

SHARED_READ_ONLY = (
    "This alert was shared with your partnership by another one: you can read it, but only "
    "its own panel can change or approve it."
)


def shared_with(session: Session, alert_id: int) -> list[int]:
    return list(
        session.scalars(
            select(AlertShare.partnership_id)
            .where(AlertShare.alert_id == alert_id)
            .order_by(AlertShare.partnership_id)
        )
    )


def write_for(
    session: Session, alert: Alert, version: AlertVersion, partnership_id: int, now: datetime
) -> int:
    """Queue `version` for the neighbour `partnership_id`; return the rows written."""
    if alert.exercise:
        return 0  # an exercise reaches its participating services only
    with switched(session.connection(), partnership_id):
        if version.purpose != VersionPurpose.alert.value:
            # What the neighbour has not been sent yet is replaced, or stopped.
            withdrawn = version.purpose == VersionPurpose.withdrawal.value
            cancel_queued(
                session,
                alert.id,
                reason="alert withdrawn" if withdrawn else "replaced by an update",
            )
        targets = _targets(session, alert, version, partnership_id)
        return write_deliveries(session, alert.id, version, now=now, targets=targets)


def targets_for(
    session: Session, alert: Alert, version: AlertVersion, partnership_id: int
) -> Targets:
    """Whom `version` reaches in the neighbour `partnership_id` (what its panel's preview
    counts), without writing anything."""
    if alert.exercise:
        return {}
    with switched(session.connection(), partnership_id):
        return _targets(session, alert, version, partnership_id)


def _targets(session: Session, alert: Alert, version: AlertVersion, partnership_id: int) -> Targets:
    roots = list(
        session.scalars(
            select(Area.code).where(Area.partnership_id == partnership_id, Area.parent_id.is_(None))
        )
    )
    if not roots and version.purpose != VersionPurpose.withdrawal.value:
        return {}
    query = audience_query(version).model_copy(
        update={"areas": roots, "include_neighbours": False, "service_ids": []}
    )
    return version_targets(session, alert.id, version, query)


def write_shared(session: Session, alert: Alert, version: AlertVersion, now: datetime) -> int:
    """Queue `version` for every partnership the alert is shared with."""
    return sum(write_for(session, alert, version, p, now) for p in shared_with(session, alert.id))


def shares_of(session: Session, alert_id: int) -> list[dict[str, Any]]:
    """The partnerships an alert is shared with (that the reader may see: its own panel sees
    every share, a neighbour only its own)."""
    rows = session.execute(
        select(Partnership.code, Partnership.name, AlertShare.shared_at)
        .join(AlertShare, AlertShare.partnership_id == Partnership.id)
        .where(AlertShare.alert_id == alert_id)
        .order_by(Partnership.code)
    )
    return [
        {"code": code, "name": name, "shared_at": at.isoformat().replace("+00:00", "Z")}
        for code, name, at in rows
    ]
