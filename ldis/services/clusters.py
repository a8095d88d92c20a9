"""Cluster signals: feed near misses and call-outs to the detectors, store what they find.

`detect_after` runs as new events arrive (a Celery task after each filing); `recompute` replays
everything (`ldis signals recompute`). Both raise or update signals through the same path as
the rules, keyed by the cluster's stable key, so a growing cluster stays one signal.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ldis.domain import clusters
from ldis.domain.rules import Severity
from ldis.services import signals
from ldis.services.areas import Locator
from ldis.store.db import Database
from ldis.store.models import Area, Partnership, Report, Signal
from ldis.store.models.signals import OPEN_STATUSES
from ldis.store.tenancy import acting_for

EVENT_KINDS = ("near_miss", "callout")
# Stronger evidence than this is red; anything the detectors report is at least amber.
RED_P_VALUE = 0.001


def _events(
    session: Session, partnership_id: int, since: Any = None, until: Any = None
) -> list[clusters.Event]:
    query = (
        select(Report.id, Report.occurred_at, Report.lat, Report.lon, Area.code, Report.data)
        .outerjoin(Area, Area.id == Report.area_id)
        .where(
            Report.partnership_id == partnership_id,
            Report.kind.in_(EVENT_KINDS),
            Report.occurred_at.is_not(None),
        )
        .order_by(Report.occurred_at, Report.id)
    )
    if since is not None:
        query = query.where(Report.occurred_at >= since)
    if until is not None:
        query = query.where(Report.occurred_at <= until)
    return [
        clusters.Event(
            id=row_id,
            at=at,
            lat=lat,
            lon=lon,
            area=code,
            time_known=bool(data.get("time_known", True)),
        )
        for row_id, at, lat, lon, code, data in session.execute(query)
    ]


def _area_id(
    cluster: clusters.Cluster, area_ids: dict[str, int], locator: Locator | None
) -> int | None:
    """The most specific area whose boundary contains a place cluster's centre; without
    boundaries there, the area most of its reports named (the detector's choice)."""
    if cluster.centre is not None and locator is not None:
        area = locator.most_specific(*cluster.centre)
        if area is not None:
            return area.id
    return area_ids.get(cluster.area) if cluster.area else None


def _store(session: Session, found: list[clusters.Cluster]) -> int:
    area_ids = dict(session.execute(select(Area.code, Area.id)).all())
    centres = [c.centre for c in found if c.centre is not None]
    locator = Locator(session, centres) if centres else None
    stored = 0
    for cluster in found:
        key = f"cluster:{cluster.key()}"
        # The panel already decided on this cluster (dismissed or alerted): do not reopen it.
        decided = session.scalar(
            select(Signal.id).where(Signal.key == key, Signal.status.not_in(OPEN_STATUSES))
        )
        if decided is not None:
            continue
        severity = Severity.red if cluster.p_value < RED_P_VALUE else Severity.amber
        signals.raise_signal(
            session,
            kind="cluster",
            key=key,
            severity=severity,
            summary=cluster.summary,
            area_id=_area_id(cluster, area_ids, locator),
            report_ids=list(cluster.event_ids),
            window=(cluster.start, cluster.end),
            details={
                "method": cluster.method,
                "observed": cluster.observed,
                "expected": round(cluster.expected, 3),
                "p_value": cluster.p_value,
                "centre": list(cluster.centre) if cluster.centre else None,
                "radius_m": cluster.radius_m,
            },
        )
        stored += 1
    return stored


def detect_after(db: Database, report_ids: list[int], settings: clusters.ClusterSettings) -> int:
    """Run the detectors as of the newest of these events, over the history they need:
    each partnership's events apart, acting for it (a cluster never mixes two panels')."""
    with db.transaction() as session:
        owners = sorted(
            set(session.scalars(select(Report.partnership_id).where(Report.id.in_(report_ids))))
        )
    stored = 0
    for partnership_id in owners:
        with acting_for(partnership_id):
            stored += _detect_after(db, partnership_id, report_ids, settings)
    return stored


def _detect_after(
    db: Database, partnership_id: int, report_ids: list[int], settings: clusters.ClusterSettings
) -> int:
    with db.transaction() as session:
        times = [
            t
            for t in session.scalars(
                select(Report.occurred_at).where(
                    Report.id.in_(report_ids),
                    Report.kind.in_(EVENT_KINDS),
                    Report.partnership_id == partnership_id,
                )
            )
            if t is not None
        ]
        if not times:
            return 0
        newest, oldest = max(times), min(times)
        history = timedelta(days=settings.history_days)
        if newest - oldest > timedelta(days=2):
            # A backfill (a CSV of history): replay it as it would have been seen.
            events = _events(session, partnership_id, oldest - history, newest)
            return _store(session, clusters.recompute(events, settings))
        events = _events(session, partnership_id, newest - history, newest)
        return _store(session, clusters.detect(events, newest, settings))


def recompute(db: Database, settings: clusters.ClusterSettings) -> int:
    with db.transaction() as session:
        owners = list(session.scalars(select(Partnership.id).order_by(Partnership.id)))
    stored = 0
    for partnership_id in owners:
        with acting_for(partnership_id), db.transaction() as session:
            events = _events(session, partnership_id)
            stored += _store(session, clusters.recompute(events, settings))
    return stored
