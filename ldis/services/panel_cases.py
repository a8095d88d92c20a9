"""The panel's work on a case (a signal or a report): each member grades it on the national
criteria, the grades are read side by side, and the panel records its decision.

Grades are one row per (case, member): grading again replaces the member's grade and the
audit event keeps what changed. Decisions are appended: the latest is the current one.
A decision of no further action dismisses an open or monitoring signal; any decision
marks the signal reviewed (so it is not escalated as unseen).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ldis.domain.errors import Conflict, NotFound, ValidationFailed
from ldis.domain.grading import (
    CRITERIA,
    Decision,
    DecisionInput,
    GradeInput,
    PanelView,
    is_overdue,
    panel_view,
    rag,
    response_due,
    risk_score,
)
from ldis.domain.principal import Principal
from ldis.domain.privacy import describe, find_personal_identifiers
from ldis.domain.roles import Role
from ldis.domain.validation import parse
from ldis.services import audit, signals
from ldis.store.db import Database
from ldis.store.models import Grade, PanelDecision, Report, Signal, SignalReport, User
from ldis.store.models.signals import OPEN_STATUSES

SUBJECTS = ("signal", "report")
Case = Signal | Report
# Everything a grade holds, in the order the criteria are read.
GRADE_FIELDS = (*CRITERIA, "recommendation", "reasons")


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def _subject(subject: str) -> str:
    if subject not in SUBJECTS:
        raise ValidationFailed({"subject": "must be signal or report"})
    return subject


def _load(session: Session, subject: str, subject_id: int, *, lock: bool = False) -> Case:
    case: Case | None
    if _subject(subject) == "signal":
        case = session.get(Signal, subject_id, with_for_update=lock)
    else:
        case = session.get(Report, subject_id)  # a decision changes nothing in the report
    if case is None:
        raise NotFound(f"No {subject} {subject_id}.")
    return case


def _no_people(reasons: str) -> None:
    findings = find_personal_identifiers(reasons)
    if findings:
        raise ValidationFailed(
            {"reasons": "cases are about drugs, not people: " + describe(findings)}
        )


def case_seen_at(session: Session, subject: str, subject_id: int) -> datetime | None:
    """When ldis first saw the case: a signal's detection, a report's receipt."""
    if _subject(subject) == "signal":
        return session.scalar(select(Signal.detected_at).where(Signal.id == subject_id))
    return session.scalar(select(Report.received_at).where(Report.id == subject_id))


def first_report_at(session: Session, subject: str, subject_id: int) -> datetime | None:
    """When the first report of the case reached ldis (a signal: its earliest linked report)."""
    if _subject(subject) == "report":
        return session.scalar(select(Report.received_at).where(Report.id == subject_id))
    return session.scalar(
        select(func.min(Report.received_at))
        .join(SignalReport, SignalReport.report_id == Report.id)
        .where(SignalReport.signal_id == subject_id)
    )


def current_decision(session: Session, subject: str, subject_id: int) -> PanelDecision | None:
    """The panel's latest decision on the case, or None before any."""
    return session.scalar(
        select(PanelDecision)
        .where(PanelDecision.subject == _subject(subject), PanelDecision.subject_id == subject_id)
        .order_by(PanelDecision.id.desc())
        .limit(1)
    )


def _grades(session: Session, subject: str, subject_id: int) -> list[tuple[Grade, str]]:
    rows = session.execute(
        select(Grade, User.name)
        .join(User, User.id == Grade.user_id)
        .where(Grade.subject == subject, Grade.subject_id == subject_id)
        .order_by(Grade.created_at, Grade.id)
    ).all()
    return [(grade, name) for grade, name in rows]


def _grade_view(grade: Grade, name: str) -> dict[str, Any]:
    return {
        "id": grade.id,
        "member": {"id": grade.user_id, "name": name},
        **{key: grade.criteria.get(key) for key in GRADE_FIELDS},
        "score": grade.score,
        "rag": grade.rag,
        "created_at": _iso(grade.created_at),
        "updated_at": _iso(grade.updated_at),
    }


def _decision_view(decision: PanelDecision, name: str) -> dict[str, Any]:
    return {
        "id": decision.id,
        "decision": decision.decision,
        "rag": decision.rag,
        "reasons": decision.reasons,
        "decided_by": {"id": decision.decided_by, "name": name},
        "decided_at": _iso(decision.decided_at),
    }


def _summary(view: PanelView | None) -> dict[str, Any] | None:
    if view is None:
        return None
    return {
        "grades": view.grades,
        "median_score": view.median_score,
        "rag": view.rag.value,
        "recommendations": {d.value: n for d, n in view.recommendations.items()},
        "unanimous": view.unanimous,
        "disagreements": list(view.disagreements),
    }


def _view_of(grades: list[tuple[Grade, str]]) -> PanelView | None:
    return panel_view([GradeInput.model_validate(g.criteria) for g, _ in grades])


def _case_brief(case: Case) -> dict[str, Any]:
    if isinstance(case, Signal):
        return {
            "kind": case.kind,
            "severity": case.severity,
            "status": case.status,
            "summary": case.summary,
            "reviewed_at": _iso(case.reviewed_at),
        }
    return {
        "reference": case.reference,
        "kind": case.kind,
        "area": case.area.code if case.area else None,
        "red_list": case.red_list,
        "occurred_at": _iso(case.occurred_at),
    }


def _urgent(case: Case) -> bool:
    return case.severity == "red" if isinstance(case, Signal) else case.red_list


def grade_case(
    db: Database, actor: Principal, subject: str, subject_id: int, body: Any
) -> dict[str, Any]:
    """Record the actor's grade of the case, replacing their earlier one if any."""
    actor.require(Role.panel)
    subject = _subject(subject)
    grade = parse(GradeInput, body)
    _no_people(grade.reasons)
    criteria = grade.model_dump(mode="json")
    score = risk_score(grade.severity, grade.likelihood)
    colour = rag(grade.severity, grade.likelihood).value
    with db.transaction() as session:
        _load(session, subject, subject_id)
        row, old = _claim(session, subject, subject_id, actor.user_id)
        now = datetime.now(UTC)
        row.criteria, row.score, row.rag = criteria, score, colour
        row.recommendation, row.updated_at = grade.recommendation.value, now
        session.flush()
        changes = {
            key: {"from": old.get(key), "to": criteria[key]}
            for key in GRADE_FIELDS
            if old is not None and old.get(key) != criteria[key]
        }
        audit.record(
            session,
            actor_id=actor.user_id,
            action="case.graded",
            entity=subject,
            entity_id=subject_id,
            grade_id=row.id,
            replaced=old is not None,
            changes=changes,
            criteria=criteria,
            score=score,
            rag=colour,
        )
        name = session.scalar(select(User.name).where(User.id == actor.user_id)) or ""
        return {**_grade_view(row, name), "replaced": old is not None, "changes": changes}


def _claim(
    session: Session, subject: str, subject_id: int, user_id: int
) -> tuple[Grade, dict[str, Any] | None]:
    """The member's grade of the case, locked, with its criteria before this change (None
    for a first grade: a new row, which the caller fills in before the commit)."""
    query = (
        select(Grade)
        .where(Grade.subject == subject, Grade.subject_id == subject_id, Grade.user_id == user_id)
        .with_for_update()
    )
    existing = session.scalar(query)
    if existing is not None:
        return existing, dict(existing.criteria)
    try:
        with session.begin_nested():
            row = Grade(
                subject=subject,
                subject_id=subject_id,
                user_id=user_id,
                criteria={},
                score=0,
                rag="",
                recommendation="",
            )
            session.add(row)
            session.flush()
    except IntegrityError:
        # The same member's first grade, sent twice at once: the other one won; replace it.
        existing = session.scalar(query)
        assert existing is not None
        return existing, dict(existing.criteria)
    return row, None


def decide_case(
    db: Database, actor: Principal, subject: str, subject_id: int, body: Any
) -> dict[str, Any]:
    """Append the panel's decision on a graded case; the RAG defaults to the grades'."""
    actor.require(Role.panel)
    subject = _subject(subject)
    chosen = parse(DecisionInput, body)
    _no_people(chosen.reasons)
    with db.transaction() as session:
        case = _load(session, subject, subject_id, lock=True)
        view = _view_of(_grades(session, subject, subject_id))
        if view is None:
            raise Conflict(
                f"Nobody has graded this {subject} yet: at least one panel member must "
                "grade it before the panel decides."
            )
        colour = (chosen.rag or view.rag).value
        decision = PanelDecision(
            subject=subject,
            subject_id=subject_id,
            decision=chosen.decision.value,
            rag=colour,
            reasons=chosen.reasons,
            decided_by=actor.user_id,
            decided_at=datetime.now(UTC),
        )
        session.add(decision)
        session.flush()
        if isinstance(case, Signal):
            if chosen.decision is Decision.no_further_action and case.status in OPEN_STATUSES:
                signals.move(session, actor.user_id, case, "dismissed", chosen.reasons)
            if case.reviewed_at is None:
                case.reviewed_at = decision.decided_at
        audit.record(
            session,
            actor_id=actor.user_id,
            action="case.decided",
            entity=subject,
            entity_id=subject_id,
            decision_id=decision.id,
            decision=decision.decision,
            rag=colour,
            suggested_rag=view.rag.value,
            reasons=decision.reasons,
        )
        session.flush()
        name = session.scalar(select(User.name).where(User.id == actor.user_id)) or ""
        return {
            **_decision_view(decision, name),
            "subject": subject,
            "subject_id": subject_id,
            "case": _case_brief(case),
        }


def case_view(db: Database, actor: Principal, subject: str, subject_id: int) -> dict[str, Any]:
    """Everything the panel reads about a case: grades side by side, their summary, the
    current decision and its history, and when the response is (or was) due."""
    actor.require(Role.panel, Role.admin)
    subject = _subject(subject)
    with db.transaction() as session:
        case = _load(session, subject, subject_id)
        grades = _grades(session, subject, subject_id)
        history = [
            _decision_view(d, name)
            for d, name in session.execute(
                select(PanelDecision, User.name)
                .join(User, User.id == PanelDecision.decided_by)
                .where(PanelDecision.subject == subject, PanelDecision.subject_id == subject_id)
                .order_by(PanelDecision.id)
            ).all()
        ]
        seen = case_seen_at(session, subject, subject_id)
        first_report = first_report_at(session, subject, subject_id)
        responded = session.scalar(
            select(func.min(PanelDecision.decided_at)).where(
                PanelDecision.subject == subject, PanelDecision.subject_id == subject_id
            )
        )
        assert seen is not None, "the case was loaded above"
        urgent = _urgent(case)
        due = response_due(seen, urgent)
        summary = _view_of(grades)
        return {
            "subject": subject,
            "subject_id": subject_id,
            "case": _case_brief(case),
            "criteria": list(CRITERIA),
            "grades": [_grade_view(g, name) for g, name in grades],
            "summary": _summary(summary),
            "suggested_rag": summary.rag.value if summary else None,
            "decision": history[-1] if history else None,
            "decisions": history,
            "seen_at": _iso(seen),
            "first_report_at": _iso(first_report),
            "urgent": urgent,
            "response_due_at": _iso(due),
            "responded_at": _iso(responded),
            "overdue": is_overdue(due, datetime.now(UTC), responded),
        }
