"""Finding reports: the panel's list with filters (reporters see their service's reports, or
only their own when no service is set: `intake.readable_by`)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from ldis.domain.principal import Principal
from ldis.domain.public_reports import PUBLIC_KIND
from ldis.domain.reports import REPORT_KINDS
from ldis.domain.validation import parse
from ldis.services import vocabulary
from ldis.services.intake import FILERS, readable_by, report_view
from ldis.store.db import Database
from ldis.store.models import Area, Report, ReportSubstance

Code = Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True, max_length=40)]


def _when(value: Any) -> Any:
    """A date (the whole day) or a date-time with a zone; one clear message otherwise."""
    if not isinstance(value, str):
        return value
    try:
        if len(value.strip()) == 10:
            parsed = datetime.combine(date.fromisoformat(value.strip()), time.min, tzinfo=UTC)
        else:
            parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(
            "must be a date like 2026-11-21 or a time like 2026-11-21T23:40Z"
        ) from None
    # Room for a time zone and for "the whole day" of `until` (year 9999 would overflow).
    if not 1 < parsed.year < 9999:
        raise ValueError("must be a date between the years 2 and 9998")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class ReportFilter(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    kind: str | None = None
    area: Code | None = None
    substance: Annotated[str, StringConstraints(max_length=200)] | None = None
    since: Annotated[datetime | None, BeforeValidator(_when)] = None
    until: Annotated[datetime | None, BeforeValidator(_when)] = None
    red_list: bool = False
    limit: int = Field(default=50, ge=1, le=500)
    offset: int = Field(default=0, ge=0, le=1_000_000)


def parse_filter(args: dict[str, Any]) -> ReportFilter:
    # Empty query parameters (a form submitted with blanks) mean "no filter".
    cleaned = {k: v for k, v in args.items() if v not in ("", None)}
    if "red_list" in cleaned:
        cleaned["red_list"] = str(cleaned["red_list"]).lower() in ("1", "true", "yes", "on")
    result = parse(ReportFilter, cleaned)
    kinds = [*sorted(REPORT_KINDS), PUBLIC_KIND]  # public reports come only through their doors
    if result.kind and result.kind not in kinds:
        from ldis.domain.errors import ValidationFailed

        raise ValidationFailed({"kind": f"must be one of: {', '.join(kinds)}"})
    return result


def _query(
    session: Session, actor: Principal, filters: ReportFilter, canonical: str | None
) -> Select[Report]:
    query = select(Report)
    scope = readable_by(session, actor)
    if scope is not None:
        query = query.where(scope)
    if filters.kind:
        query = query.where(Report.kind == filters.kind)
    if filters.area:
        query = query.join(Area, Area.id == Report.area_id).where(
            (Area.code == filters.area)
            | Area.parent_id.in_(select(Area.id).where(Area.code == filters.area))
        )
    if filters.since:
        query = query.where(Report.occurred_at >= filters.since)
    if filters.until:
        # A bare date as `until` means the whole of that day.
        until = filters.until
        if until.time() == time.min:
            until = until + timedelta(days=1)
        query = query.where(Report.occurred_at < until)
    if filters.red_list:
        query = query.where(Report.red_list.is_(True))
    if filters.substance:
        named = select(ReportSubstance.report_id)
        if canonical:
            named = named.where(ReportSubstance.canonical == canonical)
        else:
            named = named.where(ReportSubstance.written.ilike(filters.substance))
        query = query.where(Report.id.in_(named))
    return query


def list_reports(db: Database, actor: Principal, filters: ReportFilter) -> dict[str, Any]:
    actor.require(*FILERS)
    with db.transaction() as session:
        canonical = None
        if filters.substance:
            canonical = vocabulary.current(session).lookup(filters.substance).canonical
        query = _query(session, actor, filters, canonical)
        rows = session.scalars(
            query.order_by(Report.received_at.desc(), Report.id.desc())
            .limit(filters.limit + 1)
            .offset(filters.offset)
        ).all()
        more = len(rows) > filters.limit
        return {
            "reports": [report_view(r) for r in rows[: filters.limit]],
            "offset": filters.offset,
            "limit": filters.limit,
            "more": more,
        }
