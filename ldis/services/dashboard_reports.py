"""The dashboard's figures about what came in: reports per week by kind and by area,
signals and how they ended, naloxone in near misses, and substances detected per week.

Each is one SQL aggregate (grouped by the weekly bucket of `dashboard_base.week_bucket`,
which PostgreSQL and SQLite both run); a report's moment is when it happened (its
`occurred_at`: a near miss's time, a call-out's time, a sample's day) or, when that is not
known, when ldis received it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Integer, and_, case, func, select
from sqlalchemy.orm import aliased

from ldis.domain.grading import DECISION_LABELS, Decision
from ldis.domain.reports import REPORT_KINDS
from ldis.services.dashboard_base import (
    Context,
    chart,
    column,
    figure,
    in_period,
    series,
    top_groups,
    week_bucket,
)
from ldis.store.models import PanelDecision, Report, ReportSubstance, Signal

KIND_LABELS = {
    "drug_checking": "Drug checking results",
    "near_miss": "Near misses",
    "callout": "Ambulance call-outs",
}
SIGNAL_OUTCOMES = {
    "open": "Still open",
    "monitoring": "Being monitored",
    "alerted": "Alerted",
    "dismissed": "Dismissed",
    "merged": "Merged into another signal",
}
NO_DECISION = "none"
MAX_SUBSTANCES_DRAWN = 20


def kind_label(kind: str) -> str:
    return KIND_LABELS.get(kind, kind.replace("_", " ").capitalize())


def report_moment() -> Any:
    return func.coalesce(Report.occurred_at, Report.received_at)


def _kinds(found: set[str]) -> list[str]:
    return list(REPORT_KINDS) + sorted(found - set(REPORT_KINDS))


def _reports_where(ctx: Context, query: Any) -> Any:
    query = query.where(in_period(report_moment(), ctx.period))
    if ctx.scope is not None:
        query = query.where(Report.area_id.in_(sorted(ctx.scope.ids)))
    return query


def reports_by_week(ctx: Context) -> dict[str, Any]:
    inner = _reports_where(
        ctx, select(week_bucket(report_moment(), ctx.period).label("week"), Report.kind)
    ).subquery()
    counts: dict[tuple[int, str], int] = {}
    for week, kind, n in ctx.session.execute(
        select(inner.c.week, inner.c.kind, func.count()).group_by(inner.c.week, inner.c.kind)
    ):
        counts[(int(week), kind)] = int(n)
    kinds = _kinds({kind for _, kind in counts})
    weeks = ctx.week_days
    rows: list[list[Any]] = []
    for index, monday in enumerate(weeks):
        values = [counts.get((index, kind), 0) for kind in kinds]
        rows.append([monday, *values, sum(values)])
    return figure(
        "reports-by-week",
        "Reports per week, by kind",
        "Every report filed (drug checking results, near misses, ambulance call-outs), "
        "counted in the week it happened (UK weeks from Monday; the first and last may be "
        "part weeks), or the week ldis received it when the time is not known.",
        [
            column("week_commencing", "Week commencing", "week"),
            *[column(kind, kind_label(kind)) for kind in kinds],
            column("total", "All reports"),
        ],
        rows,
        chart(
            "bars",
            weeks,
            [
                series(kind_label(kind), [row[1 + i] for row in rows])
                for i, kind in enumerate(kinds)
            ],
            categories_are="week",
        ),
        empty=not counts,
        empty_text="No reports in this period.",
    )


def reports_by_area(ctx: Context) -> dict[str, Any]:
    query = _reports_where(
        ctx, select(Report.area_id, Report.kind, func.count()).group_by(Report.area_id, Report.kind)
    )
    groups = ctx.scope.groups if ctx.scope is not None else top_groups(ctx.session)
    counts: dict[tuple[str, str], int] = {}
    names: dict[str, str] = {}
    for area_id, kind, n in ctx.session.execute(query):
        code, name = groups.get(area_id, ("", "No area given")) if area_id else ("", "No area")
        if ctx.scope is not None and code == ctx.scope.code:
            name = f"{name} (the area as a whole)"
        names[code] = name
        counts[(code, kind)] = counts.get((code, kind), 0) + int(n)
    kinds = _kinds({kind for _, kind in counts})
    totals = {code: sum(n for (c, _), n in counts.items() if c == code) for code in names}
    order = sorted(names, key=lambda code: (-totals[code], names[code].lower()))
    rows: list[list[Any]] = [
        [code, names[code], *[counts.get((code, kind), 0) for kind in kinds], totals[code]]
        for code in order
    ]
    area_word = f"sub-area of {ctx.scope.name}" if ctx.scope else "top-level area"
    return figure(
        "reports-by-area",
        "Reports by area and kind",
        f"The same reports, by {area_word} (each with the areas inside it); reports filed "
        "without an area (call-outs located before boundaries were loaded) are counted "
        "as 'No area'.",
        [
            column("area_code", "Area code", "code"),
            column("area", "Area", "text"),
            *[column(kind, kind_label(kind)) for kind in kinds],
            column("total", "All reports"),
        ],
        rows,
        chart(
            "hbars",
            [row[1] for row in rows],
            [
                series(kind_label(kind), [row[2 + i] for row in rows])
                for i, kind in enumerate(kinds)
            ],
        ),
        empty=not rows,
        empty_text="No reports in this period.",
    )


def signals_outcomes(ctx: Context) -> dict[str, Any]:
    latest = (
        select(PanelDecision.subject_id, func.max(PanelDecision.id).label("last_id"))
        .where(PanelDecision.subject == "signal")
        .group_by(PanelDecision.subject_id)
        .subquery()
    )
    decision = aliased(PanelDecision)
    outcome = case((Signal.merged_into_id.is_not(None), "merged"), else_=Signal.status)
    inner = (
        select(
            outcome.label("outcome"),
            func.coalesce(decision.decision, NO_DECISION).label("decision"),
        )
        .select_from(Signal)
        .outerjoin(latest, latest.c.subject_id == Signal.id)
        .outerjoin(decision, decision.id == latest.c.last_id)
        .where(in_period(Signal.detected_at, ctx.period))
    )
    if ctx.scope is not None:
        inner = inner.where(Signal.area_id.in_(sorted(ctx.scope.ids)))
    sub = inner.subquery()
    counts: dict[tuple[str, str], int] = {}
    for state, decided, n in ctx.session.execute(
        select(sub.c.outcome, sub.c.decision, func.count()).group_by(sub.c.outcome, sub.c.decision)
    ):
        counts[(str(state), str(decided))] = int(n)
    decisions = [NO_DECISION, *[d.value for d in Decision]]
    decision_names = {
        NO_DECISION: "No decision yet",
        **{d.value: DECISION_LABELS[d] for d in Decision},
    }
    outcomes = list(SIGNAL_OUTCOMES) + sorted({s for s, _ in counts} - set(SIGNAL_OUTCOMES))
    rows: list[list[Any]] = []
    for state in outcomes:
        values = [counts.get((state, d), 0) for d in decisions]
        rows.append([state, SIGNAL_OUTCOMES.get(state, state), *values, sum(values)])
    return figure(
        "signals",
        "Signals raised and how they ended",
        "Signals the rules and cluster detectors raised in the period, by where they stand "
        "now (status; a merged signal counts once, as merged) and the panel's latest "
        "decision on each.",
        [
            column("status", "Status code", "code"),
            column("outcome", "Where it stands", "text"),
            *[column(f"decision_{d}", decision_names[d]) for d in decisions],
            column("total", "Signals"),
        ],
        rows,
        chart(
            "hbars",
            [row[1] for row in rows],
            [
                series(decision_names[d], [row[2 + i] for row in rows])
                for i, d in enumerate(decisions)
            ],
        ),
        empty=not counts,
        empty_text="No signals were raised in this period.",
    )


def naloxone(ctx: Context) -> dict[str, Any]:
    doses = func.coalesce(Report.data["naloxone_doses"].as_integer(), 0)
    given = Report.data["naloxone_given"].as_boolean()
    inner = _reports_where(
        ctx,
        select(
            week_bucket(report_moment(), ctx.period).label("week"),
            Report.kind.label("kind"),
            case((Report.kind == "near_miss", doses), else_=0).label("doses"),
            case((and_(Report.kind == "callout", given.is_(True)), 1), else_=0).label("given"),
        ).where(Report.kind.in_(["near_miss", "callout"])),
    ).subquery()
    found: dict[int, tuple[int, int, int, int]] = {}
    near = case((inner.c.kind == "near_miss", 1), else_=0)
    for week, near_misses, with_doses, total, callouts in ctx.session.execute(
        select(
            inner.c.week,
            func.sum(near),
            func.sum(case((inner.c.doses > 0, 1), else_=0)),
            func.sum(inner.c.doses),
            func.sum(inner.c.given),
        ).group_by(inner.c.week)
    ):
        found[int(week)] = (
            int(near_misses or 0),
            int(with_doses or 0),
            int(total or 0),
            int(callouts or 0),
        )
    weeks = ctx.week_days
    rows: list[list[Any]] = [
        [monday, *found.get(i, (0, 0, 0, 0))] for i, monday in enumerate(weeks)
    ]
    return figure(
        "naloxone",
        "Naloxone given in near misses, per week",
        "Near misses filed per week, how many needed naloxone, and the doses recorded "
        "(their sum); and ambulance call-outs recorded with naloxone given.",
        [
            column("week_commencing", "Week commencing", "week"),
            column("near_misses", "Near misses"),
            column("near_misses_with_naloxone", "Near misses with naloxone"),
            column("naloxone_doses", "Naloxone doses"),
            column("callouts_with_naloxone", "Call-outs with naloxone given"),
        ],
        rows,
        chart(
            "lines",
            weeks,
            [
                series("Naloxone doses", [row[3] for row in rows]),
                series("Near misses", [row[1] for row in rows]),
            ],
            categories_are="week",
        ),
        empty=not any(any(values) for values in found.values()),
        empty_text="No near misses or call-outs in this period.",
    )


def substances(ctx: Context) -> dict[str, Any]:
    name = func.coalesce(ReportSubstance.canonical, func.lower(ReportSubstance.written))
    inner = _reports_where(
        ctx,
        select(
            week_bucket(report_moment(), ctx.period).label("week"),
            name.label("name"),
            case((ReportSubstance.red_list.is_(True), 1), else_=0).label("red"),
            ReportSubstance.report_id.label("report_id"),
        )
        .join(Report, Report.id == ReportSubstance.report_id)
        .where(ReportSubstance.field.like("results.%")),
    ).subquery()
    counts: dict[tuple[str, int], int] = {}
    red: dict[str, bool] = {}
    for week, substance, is_red, n in ctx.session.execute(
        select(
            inner.c.week,
            inner.c.name,
            func.max(inner.c.red).cast(Integer),
            func.count(inner.c.report_id.distinct()),
        ).group_by(inner.c.week, inner.c.name)
    ):
        counts[(substance, int(week))] = int(n)
        red[substance] = red.get(substance, False) or bool(is_red)
    weeks = ctx.week_days
    totals = {s: sum(n for (k, _), n in counts.items() if k == s) for s in red}
    order = sorted(red, key=lambda s: (not red[s], -totals[s], s))
    rows: list[list[Any]] = [
        [
            s,
            "yes" if red[s] else "no",
            totals[s],
            *[counts.get((s, i), 0) for i in range(len(weeks))],
        ]
        for s in order
    ]
    drawn = rows[:MAX_SUBSTANCES_DRAWN]
    return figure(
        "substances",
        "Substances detected per week (red list first)",
        "Reports whose drug checking results found each substance, per week (a report "
        "naming a substance twice counts once). Substances the vocabulary knows are named "
        "as it names them; others as written. Red-list substances come first and are "
        "marked. Substances only suspected in near misses are not detections and are left "
        f"out. The chart shows the first {MAX_SUBSTANCES_DRAWN}; the table shows all.",
        [
            column("substance", "Substance", "text"),
            column("red_list", "Red list", "text"),
            column("total", "Reports"),
            *[column(f"week_{monday}", f"w/c {monday}", "count") for monday in weeks],
        ],
        rows,
        chart(
            "strips",
            weeks,
            [
                series(
                    f"{row[0]} (red list)" if row[1] == "yes" else str(row[0]),
                    row[3:],
                    highlight=row[1] == "yes",
                )
                for row in drawn
            ],
            categories_are="week",
        ),
        empty=not rows,
        empty_text="No substances were detected in drug checking results in this period.",
    )
