"""The dashboard's figures about what went out: alerts issued by level and priority, the
time from first report to first delivery (median and 90th percentile of each step) against
the board's response targets (delivery by service type: `dashboard_delivery`).

An alert is *issued* in the period when it was first approved in it (`alerts.approved_at`);
exercises are counted apart and left out of every figure. Its steps come from the
milestones stored on the alert at that approval (first report, decision, approval) and its
first message's earliest delivery (confirmed delivered, or else handed to the provider), as
the alert's own timing shows them (`alert_views.timing`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from ldis.domain.alerts import AlertLevel, AlertPriority, VersionPurpose
from ldis.domain.figures import (
    DECISION_TARGET_HOURS,
    URGENT_DECISION_TARGET_HOURS,
    hours,
    median,
    percentile,
    seconds_between,
    share_within,
)
from ldis.services.dashboard_base import Context, chart, column, figure, in_period, series
from ldis.store.models import Alert, AlertVersion, Delivery

LEVEL_LABELS = {"professional": "Professional alerts", "public": "Public alerts"}
PRIORITY_LABELS = {"urgent": "Urgent", "standard": "Standard"}
STAGES = (
    ("report_to_decision", "First report to panel decision"),
    ("decision_to_approval", "Decision to approval"),
    ("approval_to_delivery", "Approval to first delivery"),
    ("report_to_delivery", "Whole loop: first report to first delivery"),
)


@dataclass(frozen=True)
class Issued:
    """One alert first approved in the period, with its first message's level, priority,
    areas and the moments of its loop."""

    alert_id: int
    exercise: bool
    version: int
    level: str
    priority: str
    areas: frozenset[str]
    first_report_at: datetime | None
    decided_at: datetime | None
    approved_at: datetime | None
    first_delivery_at: datetime | None

    def seconds(self, stage: str) -> float | None:
        start, end = {
            "report_to_decision": (self.first_report_at, self.decided_at),
            "decision_to_approval": (self.decided_at, self.approved_at),
            "approval_to_delivery": (self.approved_at, self.first_delivery_at),
            "report_to_delivery": (self.first_report_at, self.first_delivery_at),
        }[stage]
        return seconds_between(start, end)


def issued(ctx: Context) -> list[Issued]:
    """Every alert (exercises too) first approved in the period that reached the chosen
    area: sent to it, to an area inside it, or to an area containing it."""
    if "issued" in ctx.cache:
        found: list[Issued] = ctx.cache["issued"]
        return found
    session = ctx.session
    alerts = session.execute(
        select(Alert.id, Alert.exercise, Alert.first_report_at, Alert.decided_at, Alert.approved_at)
        .where(Alert.approved_at.is_not(None), in_period(Alert.approved_at, ctx.period))
        .order_by(Alert.id)
    ).all()
    ids = [row.id for row in alerts]
    first: dict[int, AlertVersion] = {}
    if ids:
        for row_version in session.scalars(
            select(AlertVersion)
            .where(
                AlertVersion.alert_id.in_(ids),
                AlertVersion.approved_at.is_not(None),
                AlertVersion.purpose != VersionPurpose.withdrawal.value,
            )
            .order_by(AlertVersion.alert_id, AlertVersion.version)
        ):
            first.setdefault(row_version.alert_id, row_version)
    done = func.coalesce(Delivery.delivered_at, Delivery.sent_at)
    delivered: dict[tuple[int, int], datetime | None] = {}
    if ids:
        for alert_id, number, moment in session.execute(
            select(Delivery.alert_id, Delivery.version, func.min(done))
            .where(Delivery.alert_id.in_(ids))
            .group_by(Delivery.alert_id, Delivery.version)
        ):
            delivered[(alert_id, number)] = moment
    wanted = None if ctx.scope is None else ctx.scope.codes | ctx.scope.around
    result = []
    for row in alerts:
        version = first.get(row.id)
        if version is None:
            continue
        areas = frozenset(str(code).upper() for code in version.content.get("areas", []))
        if wanted is not None and not areas & wanted:
            continue
        result.append(
            Issued(
                alert_id=row.id,
                exercise=bool(row.exercise),
                version=version.version,
                level=version.level,
                priority=version.priority,
                areas=areas,
                first_report_at=row.first_report_at,
                decided_at=row.decided_at,
                approved_at=row.approved_at,
                first_delivery_at=delivered.get((row.id, version.version)),
            )
        )
    ctx.cache["issued"] = result
    return result


def counted(ctx: Context) -> list[Issued]:
    """The alerts the figures count: exercises left out."""
    return [alert for alert in issued(ctx) if not alert.exercise]


def exercises(ctx: Context) -> int:
    return sum(1 for alert in issued(ctx) if alert.exercise)


def alerts_by_level(ctx: Context) -> dict[str, Any]:
    alerts = counted(ctx)
    levels = [level.value for level in AlertLevel]
    levels += sorted({a.level for a in alerts} - set(levels))
    priorities = [priority.value for priority in AlertPriority]
    priorities += sorted({a.priority for a in alerts} - set(priorities))
    rows: list[list[Any]] = []
    for level in levels:
        values = [
            sum(1 for a in alerts if a.level == level and a.priority == p) for p in priorities
        ]
        rows.append([level, LEVEL_LABELS.get(level, level), *values, sum(values)])
    return figure(
        "alerts",
        "Alerts issued, by level and priority",
        "Alerts first approved (and so sent) in the period, by the level and priority of "
        "their first message; updates and withdrawals of an alert are not counted again, "
        "and exercises are left out.",
        [
            column("level", "Level code", "code"),
            column("alerts", "Level", "text"),
            *[column(p, PRIORITY_LABELS.get(p, p)) for p in priorities],
            column("total", "All alerts"),
        ],
        rows,
        chart(
            "hbars",
            [row[1] for row in rows],
            [
                series(PRIORITY_LABELS.get(p, p), [row[2 + i] for row in rows])
                for i, p in enumerate(priorities)
            ],
        ),
        empty=not alerts,
        empty_text="No alerts were issued in this period.",
    )


def time_to_alert(ctx: Context) -> dict[str, Any]:
    alerts = counted(ctx)
    rows: list[list[Any]] = []
    for key, label in STAGES:
        durations = [s for s in (a.seconds(key) for a in alerts) if s is not None]
        rows.append(
            [
                key,
                label,
                len(durations),
                hours(median(durations)),
                hours(percentile(durations, 90)),
            ]
        )
    return figure(
        "time-to-alert",
        "Time to alert: median and 90th percentile",
        "For the alerts issued in the period, the time each step of the loop took: from "
        "the case's first report reaching ldis to the panel's decision, to the last "
        "approval, to the first message delivered (confirmed delivered, or else handed to "
        "the SMS or e-mail provider). Median: half the alerts were quicker. 90th "
        "percentile: nine in ten were quicker. In hours; an alert with a step not known "
        "is left out of that step.",
        [
            column("stage", "Stage code", "code"),
            column("step", "Step", "text"),
            column("alerts", "Alerts"),
            column("median_hours", "Median (hours)", "hours"),
            column("p90_hours", "90th percentile (hours)", "hours"),
        ],
        rows,
        chart(
            "hbars",
            [row[1] for row in rows],
            [
                series("Median", [row[3] for row in rows]),
                series("90th percentile", [row[4] for row in rows]),
            ],
            stacked=False,
            unit="hours",
        ),
        empty=not any(row[2] for row in rows),
        empty_text="No alerts were issued in this period, so there are no times to show.",
    )


def response_targets(ctx: Context) -> dict[str, Any]:
    alerts = counted(ctx)
    everyone = [s for s in (a.seconds("report_to_decision") for a in alerts) if s is not None]
    urgent = [
        s
        for s in (
            a.seconds("report_to_decision")
            for a in alerts
            if a.priority == AlertPriority.urgent.value
        )
        if s is not None
    ]
    targets = [
        (
            "decided_within_48h",
            f"Decided within {DECISION_TARGET_HOURS} h",
            DECISION_TARGET_HOURS,
            share_within(everyone, DECISION_TARGET_HOURS),
        ),
        (
            "urgent_decided_within_24h",
            f"Urgent: decided within {URGENT_DECISION_TARGET_HOURS} h",
            URGENT_DECISION_TARGET_HOURS,
            share_within(urgent, URGENT_DECISION_TARGET_HOURS),
        ),
    ]
    rows: list[list[Any]] = [
        [key, label, limit, share.total, share.met, share.percent]
        for key, label, limit, share in targets
    ]
    return figure(
        "response-targets",
        "Response targets: decided within 48 hours, urgent within 24",
        f"Of the alerts issued in the period, the share whose case the panel decided on "
        f"within {DECISION_TARGET_HOURS} hours of its first report; and of the urgent "
        f"ones, within {URGENT_DECISION_TARGET_HOURS} hours. A case decided exactly on the "
        "limit met it.",
        [
            column("target", "Target code", "code"),
            column("description", "Target", "text"),
            column("hours", "Within (hours)"),
            column("cases", "Alerts"),
            column("met", "Met the target"),
            column("percent", "Share (%)", "percent"),
        ],
        rows,
        chart(
            "hbars",
            [row[1] for row in rows],
            [series("Met the target (%)", [row[5] for row in rows])],
            stacked=False,
            unit="percent",
            max_value=100,
        ),
        empty=not everyone,
        empty_text="No alerts with a known decision time were issued in this period.",
    )
