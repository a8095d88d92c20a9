"""The partnership board's dashboard: the figures a board reports to the local drug and
alcohol partnership and the national outcomes framework, for a chosen period and area.

`parse_query` reads the period (`from`/`to` UK days, or a calendar `quarter` like
2026-Q3; the last 12 weeks by default) and the area; `dashboard` returns every figure with
the headline numbers; `one_figure` one figure (for its CSV). Definitions: the modules
`dashboard_reports`, `dashboard_alerts` and `dashboard_delivery`, and docs/dashboard.md.
Panel and admin only; nothing here writes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select

from ldis.domain.errors import NotFound, ValidationFailed
from ldis.domain.figures import (
    MAX_PERIOD_DAYS,
    Period,
    default_period,
    previous_quarter,
    quarter_period,
    uk_day,
)
from ldis.domain.principal import Principal
from ldis.domain.roles import Role
from ldis.services import dashboard_alerts, dashboard_delivery, dashboard_reports
from ldis.services.dashboard_base import Context, scope_for
from ldis.store.db import Database
from ldis.store.models import Area

READERS = (Role.panel, Role.admin)

FIGURES: dict[str, Callable[[Context], dict[str, Any]]] = {
    "reports-by-week": dashboard_reports.reports_by_week,
    "reports-by-area": dashboard_reports.reports_by_area,
    "signals": dashboard_reports.signals_outcomes,
    "alerts": dashboard_alerts.alerts_by_level,
    "time-to-alert": dashboard_alerts.time_to_alert,
    "response-targets": dashboard_alerts.response_targets,
    "delivery": dashboard_delivery.delivery,
    "naloxone": dashboard_reports.naloxone,
    "substances": dashboard_reports.substances,
}


@dataclass(frozen=True)
class DashboardQuery:
    period: Period
    area: str | None = None


def _day(value: str, name: str, errors: dict[str, str]) -> date | None:
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        errors[name] = "must be a real date, like 2026-07-01"
        return None
    if day.year < 2000:
        errors[name] = "must be in 2000 or later"
        return None
    return day


def parse_query(
    args: Mapping[str, str | None], *, today: date | None = None, quarterly: bool = False
) -> DashboardQuery:
    """The period and area asked for. `quarter` wins over `from`/`to`; with neither, the
    last 12 weeks (the last full quarter when `quarterly`). A `from` alone runs to today;
    a `to` alone starts 12 weeks before. Raises ValidationFailed naming each bad field."""
    today = today or uk_day(datetime.now(UTC))
    given = {k: (v or "").strip() for k, v in args.items()}
    area = given.get("area", "").upper() or None
    errors: dict[str, str] = {}
    if area is not None and len(area) > 40:
        errors["area"] = "must be an area code of 40 characters or fewer"
    period: Period | None = None
    if given.get("quarter"):
        try:
            period = quarter_period(given["quarter"])
        except ValueError as exc:
            errors["quarter"] = str(exc)
    elif given.get("from") or given.get("to"):
        first = _day(given["from"], "from", errors) if given.get("from") else None
        last = _day(given["to"], "to", errors) if given.get("to") else None
        if not errors:
            if last is None:
                last = max(today, first) if first else today
            if first is None:
                first = default_period(last).first
            if last < first:
                errors["to"] = "must be on or after the start of the period"
            elif (last - first).days + 1 > MAX_PERIOD_DAYS:
                errors["to"] = f"must be at most {MAX_PERIOD_DAYS} days after the start"
            else:
                period = Period(first, last)
    else:
        period = previous_quarter(today) if quarterly else default_period(today)
    if errors or period is None:
        raise ValidationFailed(errors)
    return DashboardQuery(period, area)


def area_choices(db: Database, actor: Principal) -> list[tuple[str, str]]:
    """(code, name) of every area, by name: what the board may choose from."""
    actor.require(*READERS)
    with db.transaction() as session:
        return [
            (code, name)
            for code, name in session.execute(
                select(Area.code, Area.name).order_by(Area.name, Area.code)
            )
        ]


def _context(session: Any, query: DashboardQuery) -> Context:
    scope = None
    if query.area is not None:
        scope = scope_for(session, query.area)
        if scope is None:
            raise ValidationFailed({"area": f"there is no area with the code {query.area}"})
    return Context(session=session, period=query.period, scope=scope)


def period_view(query: DashboardQuery, ctx: Context) -> dict[str, Any]:
    return {
        "first": query.period.first.isoformat(),
        "last": query.period.last.isoformat(),
        "quarter": query.period.label,
        "days": query.period.days,
        "weeks": len(query.period.weeks()),
        "area": None if ctx.scope is None else {"code": ctx.scope.code, "name": ctx.scope.name},
    }


def dashboard(db: Database, actor: Principal, query: DashboardQuery) -> dict[str, Any]:
    """Every figure for the period and area, and the headline numbers."""
    actor.require(*READERS)
    with db.transaction() as session:
        ctx = _context(session, query)
        figures = {key: build(ctx) for key, build in FIGURES.items()}
        exercises = dashboard_alerts.exercises(ctx)
        view = period_view(query, ctx)
    return {
        **view,
        "headline": headline(figures, exercises),
        "figures": list(figures.values()),
        "exercises": exercises,
        "empty": all(f["empty"] for f in figures.values()),
    }


def one_figure(db: Database, actor: Principal, query: DashboardQuery, key: str) -> dict[str, Any]:
    """One figure (its table is the CSV); NotFound for a key that is no figure."""
    actor.require(*READERS)
    build = FIGURES.get(key)
    if build is None:
        raise NotFound(f"There is no figure called {key}.")
    with db.transaction() as session:
        ctx = _context(session, query)
        found = build(ctx)
        found["period"] = period_view(query, ctx)
        return found


def _total_row(found: dict[str, Any], first: str = "all") -> dict[str, Any]:
    keys = [c["key"] for c in found["columns"]]
    for row in found["rows"]:
        if row[0] == first:
            return dict(zip(keys, row, strict=True))
    return {}


def headline(figures: dict[str, dict[str, Any]], exercises: int) -> list[dict[str, Any]]:
    """The numbers a board reads first, each with its figure."""
    weekly = figures["reports-by-week"]["rows"]
    naloxone = figures["naloxone"]["rows"]
    stages = {row[0]: row for row in figures["time-to-alert"]["rows"]}
    targets = {row[0]: row for row in figures["response-targets"]["rows"]}
    delivered = _total_row(figures["delivery"])
    substances = figures["substances"]["rows"]
    alerts = figures["alerts"]["rows"]
    loop = stages["report_to_delivery"]

    def item(key: str, label: str, value: Any, fmt: str, note: str, figure: str) -> dict[str, Any]:
        return {
            "key": key,
            "label": label,
            "value": value,
            "format": fmt,
            "note": note,
            "figure": figure,
        }

    decided = targets["decided_within_48h"]
    urgent = targets["urgent_decided_within_24h"]
    return [
        item("reports", "Reports", sum(r[-1] for r in weekly), "count", "", "reports-by-week"),
        item("near_misses", "Near misses", sum(r[1] for r in naloxone), "count", "", "naloxone"),
        item(
            "naloxone_doses",
            "Naloxone doses in near misses",
            sum(r[3] for r in naloxone),
            "count",
            "",
            "naloxone",
        ),
        item(
            "red_list_substances",
            "Red-list substances detected",
            sum(1 for r in substances if r[1] == "yes"),
            "count",
            f"of {len(substances)} substances detected",
            "substances",
        ),
        item(
            "signals",
            "Signals raised",
            sum(r[-1] for r in figures["signals"]["rows"]),
            "count",
            "",
            "signals",
        ),
        item(
            "alerts",
            "Alerts issued",
            sum(r[-1] for r in alerts),
            "count",
            (f"{sum(r[2] for r in alerts)} urgent" if alerts else "")
            + (
                f"; {exercises} exercise{'s' if exercises != 1 else ''} not counted"
                if exercises
                else ""
            ),
            "alerts",
        ),
        item(
            "median_report_to_delivery",
            "Median time, first report to first delivery",
            loop[3],
            "hours",
            f"90th percentile {loop[4]:.1f} h" if loop[4] is not None else "",
            "time-to-alert",
        ),
        item(
            "decided_within_48h",
            "Decided within 48 h",
            decided[5],
            "percent",
            f"{decided[4]} of {decided[3]} alerts"
            + (f"; urgent within 24 h: {urgent[4]} of {urgent[3]}" if urgent[3] else ""),
            "response-targets",
        ),
        item(
            "delivery_success",
            "Messages delivered or sent",
            delivered.get("success_percent"),
            "percent",
            f"{delivered.get('messages', 0)} messages",
            "delivery",
        ),
        item(
            "acknowledged",
            "Services that acknowledged",
            delivered.get("acknowledged_percent"),
            "percent",
            f"{delivered.get('services_acknowledged', 0)} of "
            f"{delivered.get('services_reached', 0)} services reached",
            "delivery",
        ),
    ]
