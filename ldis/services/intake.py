"""File a report: validate its kind, resolve its area, give it a reference, store it."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ldis.domain.errors import NotFound
from ldis.domain.principal import Principal
from ldis.domain.reports import parse_report
from ldis.domain.roles import Role
from ldis.services import audit
from ldis.services.recipients import areas_by_code
from ldis.store.db import Database
from ldis.store.models import Report

# No 0/O or 1/I: references are read out over the phone.
_REFERENCE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


def new_reference(session: Session) -> str:
    while True:
        reference = "R-" + "".join(secrets.choice(_REFERENCE_ALPHABET) for _ in range(8))
        if session.scalar(select(Report.id).where(Report.reference == reference)) is None:
            return reference


def report_view(report: Report) -> dict[str, Any]:
    return {
        "id": report.id,
        "reference": report.reference,
        "kind": report.kind,
        "area": report.area.code,
        "occurred_at": _iso(report.occurred_at),
        "received_at": _iso(report.received_at),
        **report.data,
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def file_report(db: Database, actor: Principal, body: Any) -> dict[str, Any]:
    actor.require(Role.reporter, Role.panel, Role.admin)
    parsed = parse_report(body)
    with db.transaction() as session:
        area = areas_by_code(session, [parsed.area], "area")[0]
        report = Report(
            reference=new_reference(session),
            kind=parsed.kind,
            area=area,
            occurred_at=parsed.event_time(),
            reporter_id=actor.user_id,
            source_type=parsed.source.type,
            data=parsed.stored_data(),
        )
        session.add(report)
        session.flush()
        audit.record(
            session,
            actor_id=actor.user_id,
            action="report.filed",
            entity="report",
            entity_id=report.id,
        )
        return {**report_view(report), "signals": []}


def get_report(db: Database, actor: Principal, report_id: int) -> dict[str, Any]:
    actor.require(Role.reporter, Role.panel, Role.admin)
    with db.transaction() as session:
        report = session.get(Report, report_id)
        if report is None:
            raise NotFound(f"No report {report_id}.")
        if not actor.has_any(Role.panel, Role.admin) and report.reporter_id != actor.user_id:
            # Not Forbidden: a reporter must not learn that someone else's report exists.
            raise NotFound(f"No report {report_id}.")
        return report_view(report)
