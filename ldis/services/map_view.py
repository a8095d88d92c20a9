"""What the board's map shows for a period (and optionally one area with what lies inside
it): the areas with boundaries and each one's reports by kind, every located report as a
point, and the cluster signals whose window overlaps the period.

A report's moment is when it happened, or when it came in if that is not known (as on the
dashboard). Locations are stored rounded to about 100 m (reports.md), so points never show
more than the report did; panel and admins only, like the dashboard."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from ldis.domain.errors import ValidationFailed
from ldis.domain.figures import Period
from ldis.domain.principal import Principal
from ldis.domain.reports import REPORT_KINDS
from ldis.services.dashboard import READERS
from ldis.services.dashboard_base import in_period, scope_for
from ldis.services.dashboard_reports import report_moment
from ldis.store.db import Database
from ldis.store.models import Area, Report, Signal

CLOSED_AS_MERGED = "merged"


@dataclass(frozen=True)
class MapArea:
    code: str
    name: str
    boundary: dict[str, Any] | None
    reports: dict[str, int] = field(default_factory=dict)  # kind -> count
    red_list: int = 0
    clusters: int = 0

    @property
    def total(self) -> int:
        return sum(self.reports.values())


@dataclass(frozen=True)
class MapPoint:
    report_id: int
    reference: str
    kind: str
    lat: float
    lon: float
    red_list: bool


@dataclass(frozen=True)
class MapCluster:
    signal_id: int
    summary: str
    status: str
    area_code: str | None
    centre: tuple[float, float] | None  # lat, lon; None for a cluster of an area's counts
    radius_m: float | None
    observed: int | None


@dataclass(frozen=True)
class MapData:
    period: Period
    area: tuple[str, str] | None  # (code, name) of the chosen area
    areas: list[MapArea]
    points: list[MapPoint]
    clusters: list[MapCluster]
    kinds: list[str]  # the kinds of report in the period, in a stable order
    unlocated: int  # reports in the period with neither a point nor a drawn area


def map_data(db: Database, actor: Principal, period: Period, area: str | None) -> MapData:
    actor.require(*READERS)
    with db.transaction() as session:
        scope = None
        if area:
            scope = scope_for(session, area)
            if scope is None:
                raise ValidationFailed({"area": f"there is no area with the code {area.upper()}"})
        areas_query = select(Area.id, Area.code, Area.name, Area.boundary).order_by(Area.name)
        if scope is not None:
            areas_query = areas_query.where(Area.id.in_(sorted(scope.ids)))
        area_rows = session.execute(areas_query).all()
        code_of = {row.id: row.code for row in area_rows}

        reports_query = select(
            Report.id, Report.reference, Report.kind, Report.area_id, Report.lat, Report.lon,
            Report.red_list,
        ).where(in_period(report_moment(), period))  # fmt: skip
        if scope is not None:
            reports_query = reports_query.where(Report.area_id.in_(sorted(scope.ids)))
        reports = session.execute(reports_query.order_by(Report.id)).all()

        signals_query = select(
            Signal.id, Signal.summary, Signal.status, Signal.area_id, Signal.details
        ).where(
            Signal.kind == "cluster",
            Signal.status != CLOSED_AS_MERGED,
            Signal.window_start < period.end,
            Signal.window_end >= period.start,
        )
        if scope is not None:
            signals_query = signals_query.where(Signal.area_id.in_(sorted(scope.ids)))
        signals = session.execute(signals_query.order_by(Signal.id)).all()

    by_area: dict[str, Counter[str]] = defaultdict(Counter)
    red: Counter[str] = Counter()
    points: list[MapPoint] = []
    drawn = {row.code for row in area_rows if row.boundary}
    unlocated = 0
    for r in reports:
        code = code_of.get(r.area_id) if r.area_id is not None else None
        if code is not None:
            by_area[code][r.kind] += 1
            red[code] += int(r.red_list)
        if r.lat is not None and r.lon is not None:
            points.append(MapPoint(r.id, r.reference, r.kind, r.lat, r.lon, r.red_list))
        elif code not in drawn:
            unlocated += 1
    clusters = [_cluster(s, code_of) for s in signals]
    cluster_count = Counter(c.area_code for c in clusters if c.area_code)
    map_areas = [
        MapArea(
            code=row.code,
            name=row.name,
            boundary=row.boundary,
            reports=dict(by_area[row.code]),
            red_list=red[row.code],
            clusters=cluster_count[row.code],
        )
        for row in area_rows
    ]
    seen = {r.kind for r in reports}
    kinds = [k for k in REPORT_KINDS if k in seen] + sorted(seen - set(REPORT_KINDS))
    return MapData(
        period=period,
        area=(scope.code, scope.name) if scope is not None else None,
        areas=map_areas,
        points=points,
        clusters=clusters,
        kinds=kinds,
        unlocated=unlocated,
    )


def _cluster(row: Any, code_of: dict[int, str]) -> MapCluster:
    details = row.details or {}
    centre = details.get("centre")
    return MapCluster(
        signal_id=row.id,
        summary=row.summary,
        status=row.status,
        area_code=code_of.get(row.area_id) if row.area_id is not None else None,
        centre=(float(centre[0]), float(centre[1])) if centre else None,
        radius_m=float(details["radius_m"]) if details.get("radius_m") else None,
        observed=int(details["observed"]) if details.get("observed") is not None else None,
    )
