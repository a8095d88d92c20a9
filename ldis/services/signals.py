"""Signals: raise them from rule hits and clusters, join related reports, and their lifecycle.

A live signal (open or monitoring) is unique per key in the database, so a hit either joins
the live signal with its key or opens one; two simultaneous filings cannot open two.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ldis.domain.errors import Conflict, NotFound, ValidationFailed
from ldis.domain.principal import Principal
from ldis.domain.roles import Role
from ldis.domain.rules import (
    APPEARANCE_WINDOW,
    SEVERITY_ORDER,
    ReportFacts,
    RuleHit,
    Severity,
    evaluate,
)
from ldis.services import audit
from ldis.store.db import Database
from ldis.store.models import Area, Report, Signal, SignalReport
from ldis.store.models.signals import OPEN_STATUSES

STATUSES = ("open", "monitoring", "alerted", "dismissed")
# Which moves the panel may make: a dismissed or alerted signal can be reopened to monitor it.
MOVES: dict[str, frozenset[str]] = {
    "open": frozenset({"monitoring", "alerted", "dismissed"}),
    "monitoring": frozenset({"open", "alerted", "dismissed"}),
    "alerted": frozenset({"monitoring"}),
    "dismissed": frozenset({"open"}),
}


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def similar_appearances(session: Session, appearance: str | None, at: datetime | None) -> int:
    if not appearance:
        return 0
    moment = at or datetime.now(UTC)
    return int(
        session.scalar(
            select(func.count())
            .select_from(Report)
            .where(
                Report.appearance_key == appearance,
                Report.occurred_at >= moment - APPEARANCE_WINDOW,
                Report.occurred_at <= moment + APPEARANCE_WINDOW,
            )
        )
        or 0
    )


def _live(session: Session, key: str, partnership_id: int | None = None) -> Signal | None:
    query = select(Signal).where(Signal.key == key, Signal.status.in_(OPEN_STATUSES))
    if partnership_id is not None:
        query = query.where(Signal.partnership_id == partnership_id)
    return session.scalar(query)


def _owner(session: Session, report_ids: list[int]) -> int | None:
    """The partnership of the reports a signal is about (a signal never mixes two): named
    on the signal itself, so a worker or a public door acting for no partnership still
    files it with the reports' panel."""
    if not report_ids:
        return None
    return session.scalar(select(Report.partnership_id).where(Report.id == report_ids[0]))


def join_live(session: Session, key: str, report_ids: list[int]) -> Signal | None:
    """Link reports to the live signal with `key` if there is one; never opens a signal.
    Public reports corroborate what staff reports raised this way (ldis.services.public_reports).
    """
    signal = _live(session, key, _owner(session, report_ids))
    if signal is not None:
        _link(session, signal.id, report_ids)
        signal.updated_at = datetime.now(UTC)
    return signal


def _link(session: Session, signal_id: int, report_ids: list[int]) -> None:
    existing = set(
        session.scalars(
            select(SignalReport.report_id).where(
                SignalReport.signal_id == signal_id, SignalReport.report_id.in_(report_ids)
            )
        )
    )
    rows = [{"signal_id": signal_id, "report_id": r} for r in report_ids if r not in existing]
    if rows:
        session.execute(insert(SignalReport), rows)


def raise_signal(
    session: Session,
    *,
    kind: str,
    key: str,
    severity: Severity,
    summary: str,
    area_id: int | None,
    report_ids: list[int],
    window: tuple[datetime | None, datetime | None],
    details: dict[str, Any],
) -> Signal:
    """Join the live signal with this key, or open one; the report(s) are linked either way."""
    now = datetime.now(UTC)
    owner = _owner(session, report_ids)
    signal = _live(session, key, owner)
    created = False
    if signal is None:
        try:
            with session.begin_nested():
                signal = Signal(
                    kind=kind,
                    key=key,
                    status="open",
                    severity=severity.value,
                    area_id=area_id,
                    summary=summary[:500],
                    detected_at=now,
                    updated_at=now,
                    window_start=window[0],
                    window_end=window[1],
                    details=details,
                )
                if owner is not None:  # else the column's default: the acting partnership
                    signal.partnership_id = owner
                session.add(signal)
                session.flush()
            created = True
            audit.record(
                session,
                actor_id=None,
                action="signal.raised",
                entity="signal",
                entity_id=signal.id,
                kind=kind,
                severity=severity.value,
            )
        except IntegrityError:
            # Someone opened it a moment ago: join theirs.
            signal = _live(session, key, owner)
            assert signal is not None
    if not created:
        if SEVERITY_ORDER[severity] < SEVERITY_ORDER[Severity(signal.severity)]:
            signal.severity = severity.value
        if kind == "cluster":
            signal.summary = summary[:500]  # a growing cluster: the newest description is truest
            signal.details = details
        start, end = window
        if start and (signal.window_start is None or start < signal.window_start):
            signal.window_start = start
        if end and (signal.window_end is None or end > signal.window_end):
            signal.window_end = end
        signal.updated_at = now
    _link(session, signal.id, report_ids)
    return signal


def _raise_hit(
    session: Session, hit: RuleHit, report_id: int, area_id: int | None, facts: ReportFacts
) -> Signal:
    return raise_signal(
        session,
        kind=hit.kind,
        key=hit.key,
        severity=hit.severity,
        summary=hit.summary,
        area_id=area_id,
        report_ids=[report_id],
        window=(facts.occurred_at, facts.occurred_at),
        details={},
    )


def raise_for_report(
    session: Session, report_id: int, area_id: int | None, facts: ReportFacts
) -> list[Signal]:
    return [_raise_hit(session, hit, report_id, area_id, facts) for hit in evaluate(facts)]


def rules_recompute(
    session: Session, report_id: int, area_id: int | None, facts: ReportFacts
) -> int:
    """Apply the rules to a stored report again; hits the panel already decided stay closed."""
    raised = 0
    for hit in evaluate(facts):
        known = session.scalar(
            select(Signal.id)
            .join(SignalReport, SignalReport.signal_id == Signal.id)
            .where(Signal.key == hit.key, SignalReport.report_id == report_id)
        )
        if known is None:
            _raise_hit(session, hit, report_id, area_id, facts)
            raised += 1
    return raised


def brief(signal: Signal) -> dict[str, Any]:
    return {
        "id": signal.id,
        "kind": signal.kind,
        "severity": signal.severity,
        "status": signal.status,
        "summary": signal.summary,
    }


def signal_view(session: Session, signal: Signal) -> dict[str, Any]:
    report_ids = list(
        session.scalars(
            select(SignalReport.report_id)
            .where(SignalReport.signal_id == signal.id)
            .order_by(SignalReport.report_id)
        )
    )
    area = session.get(Area, signal.area_id) if signal.area_id else None
    return {
        "id": signal.id,
        "kind": signal.kind,
        "area": area.code if area else None,
        "severity": signal.severity,
        "status": signal.status,
        "report_ids": report_ids,
        "summary": signal.summary,
        "detected_at": _iso(signal.detected_at),
        "updated_at": _iso(signal.updated_at),
        "window": {"start": _iso(signal.window_start), "end": _iso(signal.window_end)},
        "reason": signal.reason,
        "escalated": signal.escalated_at is not None,
        "merged_into": signal.merged_into_id,
        "details": signal.details,
    }


def list_signals(db: Database, actor: Principal, status: str | None) -> list[dict[str, Any]]:
    actor.require(Role.panel, Role.admin)
    if status is not None and status not in STATUSES:
        raise ValidationFailed({"status": f"must be one of: {', '.join(STATUSES)}"})
    with db.transaction() as session:
        query = select(Signal)
        if status:
            query = query.where(Signal.status == status)
        rows = session.scalars(query).all()
        # The panel's queue: most severe first, then oldest first (longest waiting).
        ordered = sorted(rows, key=lambda s: (SEVERITY_ORDER[Severity(s.severity)], s.detected_at))
        return [signal_view(session, s) for s in ordered]


def get_signal(db: Database, actor: Principal, signal_id: int) -> dict[str, Any]:
    actor.require(Role.panel, Role.admin)
    with db.transaction() as session:
        signal = session.get(Signal, signal_id)
        if signal is None:
            raise NotFound(f"No signal {signal_id}.")
        return signal_view(session, signal)


def change_status(
    db: Database, actor: Principal, signal_id: int, status: str, reason: str | None
) -> dict[str, Any]:
    actor.require(Role.panel)
    if status not in STATUSES:
        raise ValidationFailed({"status": f"must be one of: {', '.join(STATUSES)}"})
    if status == "dismissed" and not (reason or "").strip():
        raise ValidationFailed({"reason": "say why the signal is dismissed"})
    with db.transaction() as session:
        signal = session.get(Signal, signal_id, with_for_update=True)
        if signal is None:
            raise NotFound(f"No signal {signal_id}.")
        move(session, actor.user_id, signal, status, reason)
        session.flush()
        return signal_view(session, signal)


def move(
    session: Session, actor_id: int | None, signal: Signal, status: str, reason: str | None
) -> None:
    """Change a (locked) signal's status inside the caller's transaction, audited; Conflict
    when its status does not allow the move. Also used by the panel's decisions."""
    if status not in MOVES[signal.status]:
        raise Conflict(f"A signal that is {signal.status} cannot become {status}.")
    live = _live(session, signal.key) if status in OPEN_STATUSES else None
    if live is not None and live.id != signal.id:
        raise Conflict("Another live signal has the same subject; merge them instead.")
    now = datetime.now(UTC)
    signal.status, signal.reason = status, (reason or "").strip()[:1000] or None
    signal.reviewed_at = signal.updated_at = now
    audit.record(
        session,
        actor_id=actor_id,
        action="signal.status",
        entity="signal",
        entity_id=signal.id,
        status=status,
        reason=signal.reason,
    )


def merge(db: Database, actor: Principal, signal_id: int, into_id: int) -> dict[str, Any]:
    """Move every report of one signal into another; the first is closed as merged."""
    actor.require(Role.panel)
    if signal_id == into_id:
        raise ValidationFailed({"into": "choose a different signal"})
    with db.transaction() as session:
        source, target = session.get(Signal, signal_id), session.get(Signal, into_id)
        if source is None or target is None:
            raise NotFound("No such signal.")
        reports = list(
            session.scalars(
                select(SignalReport.report_id).where(SignalReport.signal_id == source.id)
            )
        )
        _link(session, target.id, reports)
        if SEVERITY_ORDER[Severity(source.severity)] < SEVERITY_ORDER[Severity(target.severity)]:
            target.severity = source.severity
        now = datetime.now(UTC)
        source.status, source.merged_into_id, source.reason = "dismissed", target.id, "merged"
        source.reviewed_at = target.reviewed_at = target.updated_at = now
        audit.record(
            session,
            actor_id=actor.user_id,
            action="signal.merged",
            entity="signal",
            entity_id=source.id,
            into=target.id,
        )
        session.flush()
        return signal_view(session, target)


def split(db: Database, actor: Principal, signal_id: int, report_ids: list[int]) -> dict[str, Any]:
    """Take some reports out of a signal into a new signal of their own."""
    actor.require(Role.panel)
    with db.transaction() as session:
        source = session.get(Signal, signal_id)
        if source is None:
            raise NotFound(f"No signal {signal_id}.")
        linked = set(
            session.scalars(
                select(SignalReport.report_id).where(SignalReport.signal_id == source.id)
            )
        )
        moving = [r for r in dict.fromkeys(report_ids) if r in linked]
        if not moving or len(moving) != len(set(report_ids)):
            raise ValidationFailed({"report_ids": "give reports that belong to this signal"})
        if len(moving) == len(linked):
            raise ValidationFailed({"report_ids": "leave at least one report in the signal"})
        now = datetime.now(UTC)
        new = Signal(
            kind=source.kind,
            key=f"{source.key}#split-{source.id}-{int(now.timestamp())}",
            status="open",
            severity=source.severity,
            area_id=source.area_id,
            summary=f"split from signal {source.id}: {source.summary}"[:500],
            detected_at=now,
            updated_at=now,
            window_start=source.window_start,
            window_end=source.window_end,
            details={"split_from": source.id},
        )
        session.add(new)
        session.flush()
        session.execute(
            update(SignalReport)
            .where(SignalReport.signal_id == source.id, SignalReport.report_id.in_(moving))
            .values(signal_id=new.id)
        )
        audit.record(
            session,
            actor_id=actor.user_id,
            action="signal.split",
            entity="signal",
            entity_id=source.id,
            new=new.id,
            reports=moving,
        )
        session.flush()
        return signal_view(session, new)


def escalate(db: Database, after: timedelta) -> list[int]:
    """Red signals nobody has looked at within `after`: flag them (once) and return their ids."""
    now = datetime.now(UTC)
    with db.transaction() as session:
        ids = list(
            session.scalars(
                update(Signal)
                .where(
                    Signal.severity == Severity.red.value,
                    Signal.status == "open",
                    Signal.reviewed_at.is_(None),
                    Signal.escalated_at.is_(None),
                    Signal.detected_at < now - after,
                )
                .values(escalated_at=now)
                .returning(Signal.id)
            )
        )
        for signal_id in ids:
            audit.record(
                session,
                actor_id=None,
                action="signal.escalated",
                entity="signal",
                entity_id=signal_id,
            )
        return ids
