"""Retention: old reports keep their counts and lose what could point to a person.

Reports received before the cut-off (`LDIS_RETENTION_MONTHS` before now; 0 keeps
everything) and not yet redacted lose, in one transaction:

- every free-text field of their kind (`notes`, `harms_reported`, `setting`: the fields the
  privacy guard checks) and the source's own reference (a lab sample or incident number
  that leads back to other records);
- their updates and their photo;
- their exact location (the `lat`/`lon` columns and the `location` in the stored body).

They keep their kind, area, dates, source type and name, substances (as written and as the
vocabulary knows them), naloxone doses and outcome, appearance and results: everything the
dashboard counts, so its figures for past weeks do not change. `redacted_at` is set, so a
report is redacted once, and one `reports.redacted` audit event sums the run up.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from ldis.domain.public_reports import PUBLIC_KIND, PublicReport
from ldis.domain.reports import REPORT_KINDS
from ldis.services import audit
from ldis.store.db import Database
from ldis.store.models import Report, ReportPhoto, ReportUpdate

CHUNK = 500
# Keys of the stored body that are always removed, whatever the kind.
LOCATION_KEY = "location"


def months_before(moment: datetime, months: int) -> datetime:
    """The same wall-clock moment `months` calendar months earlier (the 31st becomes the
    last day of a shorter month)."""
    total = moment.year * 12 + (moment.month - 1) - months
    year, month = divmod(total, 12)
    month += 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def _free_text_defaults(kind: str) -> dict[str, Any]:
    """Each free-text field of the kind with its empty value ("" or None)."""
    model = REPORT_KINDS.get(kind) or (PublicReport if kind == PUBLIC_KIND else None)
    if model is None:
        # A kind no longer registered: blank the fields every kind has.
        return {"notes": ""}
    return {name: model.model_fields[name].default for name in model.free_text_fields}


def redacted_data(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """The stored body with free text, the source reference and the location removed."""
    kept = {key: value for key, value in data.items() if key != LOCATION_KEY}
    for name, empty in _free_text_defaults(kind).items():
        if name in kept:
            kept[name] = empty
    source = kept.get("source")
    if isinstance(source, dict) and source.get("reference") is not None:
        kept["source"] = {**source, "reference": None}
    return kept


@dataclass
class RetentionResult:
    cutoff: datetime | None
    reports: int = 0
    updates: int = 0
    photos: int = 0
    locations: int = 0
    dry_run: bool = False

    def view(self) -> dict[str, Any]:
        return {
            "cutoff": self.cutoff.isoformat() if self.cutoff else None,
            "reports": self.reports,
            "updates_removed": self.updates,
            "photos_removed": self.photos,
            "locations_removed": self.locations,
            "dry_run": self.dry_run,
        }


def _due(cutoff: datetime) -> Any:
    return (Report.received_at < cutoff) & Report.redacted_at.is_(None)


def _count(session: Session, query: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)


def redact_old_reports(
    db: Database, now: datetime, months: int, *, dry_run: bool = False
) -> RetentionResult:
    """Redact every report received more than `months` months before `now` and not yet
    redacted; with `dry_run`, only count what would go. `months` 0 keeps everything."""
    if months < 0:
        raise ValueError("months must be 0 (keep everything) or more")
    if months == 0:
        return RetentionResult(cutoff=None, dry_run=dry_run)
    cutoff = months_before(now, months)
    result = RetentionResult(cutoff=cutoff, dry_run=dry_run)
    with db.transaction() as session:
        due_ids = select(Report.id).where(_due(cutoff))
        result.reports = _count(session, due_ids)
        if not result.reports:
            return result
        result.updates = _count(
            session, select(ReportUpdate.id).where(ReportUpdate.report_id.in_(due_ids))
        )
        result.photos = _count(
            session, select(ReportPhoto.id).where(ReportPhoto.report_id.in_(due_ids))
        )
        result.locations = _count(
            session,
            select(Report.id).where(
                _due(cutoff),
                Report.lat.is_not(None) | Report.lon.is_not(None),
            ),
        )
        if dry_run:
            return result
        session.execute(delete(ReportUpdate).where(ReportUpdate.report_id.in_(due_ids)))
        session.execute(delete(ReportPhoto).where(ReportPhoto.report_id.in_(due_ids)))
        _rewrite(session, cutoff, now)
        audit.record(
            session,
            actor_id=None,
            action="reports.redacted",
            entity="report",
            entity_id=None,
            months=months,
            **{k: v for k, v in result.view().items() if k != "dry_run"},
        )
    return result


def _rewrite(session: Session, cutoff: datetime, now: datetime) -> None:
    """Blank each due report's body and location, a chunk at a time (ids ascending, so a
    chunk never sees a report twice)."""
    last = 0
    while True:
        rows = session.execute(
            select(Report.id, Report.kind, Report.data)
            .where(_due(cutoff), Report.id > last)
            .order_by(Report.id)
            .limit(CHUNK)
        ).all()
        if not rows:
            return
        # An ORM bulk UPDATE by primary key: one executemany per chunk.
        session.execute(
            update(Report),
            [
                {
                    "id": report_id,
                    "data": redacted_data(kind, dict(data or {})),
                    "lat": None,
                    "lon": None,
                    "redacted_at": now,
                }
                for report_id, kind, data in rows
            ],
        )
        last = rows[-1][0]
