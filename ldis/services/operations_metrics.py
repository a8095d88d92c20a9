"""Figures for operators' monitoring, read from the database when /metrics is scraped.

Each is one grouped query (the database is the truth, whichever worker did the work), kept
cheap enough for a scrape every 15 to 60 seconds: counts by state, the age of the oldest
delivery not yet handed to a provider, and the times to alert of the last 30 days' alerts.
No person is named or counted individually.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, literal, select

from ldis.domain.deliveries import DeliveryStatus
from ldis.store.db import Database
from ldis.store.models import Alert, Delivery, Signal

TIME_TO_ALERT_WINDOW = timedelta(days=30)
PENDING = (DeliveryStatus.queued.value, DeliveryStatus.sending.value)
# Written into the SQL, not bound, so that a prepared statement's generic plan also proves
# the status index's predicate (it holds only these rows: migration 0010).
PENDING_WRITTEN = [literal(status, literal_execute=True) for status in PENDING]


@dataclass(frozen=True)
class Figures:
    deliveries: dict[tuple[str, str], int]  # (channel, status) -> deliveries
    oldest_pending_seconds: dict[str, float]  # queued / sending -> age of the oldest
    signals: dict[tuple[str, str], int]  # (status, severity) -> signals
    # stage -> seconds, one per alert first approved within TIME_TO_ALERT_WINDOW
    time_to_alert: dict[str, list[float]]


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def read(db: Database, now: datetime | None = None) -> Figures:
    now = now or datetime.now(UTC)
    done = func.coalesce(Delivery.delivered_at, Delivery.sent_at)
    with db.transaction() as session:
        deliveries = {
            (channel, status): count
            for channel, status, count in session.execute(
                select(Delivery.channel, Delivery.status, func.count()).group_by(
                    Delivery.channel, Delivery.status
                )
            )
        }
        oldest = {
            status: max(0.0, (now - _utc(queued_at)).total_seconds())
            for status, queued_at in session.execute(
                select(Delivery.status, func.min(Delivery.queued_at))
                .where(Delivery.status.in_(PENDING_WRITTEN))
                .group_by(Delivery.status)
            )
            if queued_at is not None
        }
        signals = {
            (status, severity): count
            for status, severity, count in session.execute(
                select(Signal.status, Signal.severity, func.count())
                .where(Signal.merged_into_id.is_(None))
                .group_by(Signal.status, Signal.severity)
            )
        }
        stages: dict[str, list[float]] = {"approval_to_delivery": [], "report_to_delivery": []}
        for approved_at, first_report_at, first_delivery in session.execute(
            select(Alert.approved_at, Alert.first_report_at, func.min(done))
            .join(Delivery, Delivery.alert_id == Alert.id)
            .where(
                Alert.approved_at >= now - TIME_TO_ALERT_WINDOW,
                Alert.exercise.is_(False),
            )
            .group_by(Alert.id, Alert.approved_at, Alert.first_report_at)
        ):
            if first_delivery is None:
                continue
            for stage, start in (
                ("approval_to_delivery", approved_at),
                ("report_to_delivery", first_report_at),
            ):
                if start is not None and first_delivery >= start:
                    stages[stage].append((_utc(first_delivery) - _utc(start)).total_seconds())
    return Figures(deliveries, oldest, signals, stages)
