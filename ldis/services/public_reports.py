"""File an anonymous public report (web form or text message): validate, refuse personal
data, store it marked public and unverified, and feed the signals without letting one
anonymous source open many.

Signals: a public report links to any *live* signal its rule hits name (it corroborates
what staff reports raised), and joins one signal of kind `public` per area and day
(`public:<AREA>:<YYYY-MM-DD>`), whose severity follows the worst of its reports. Rule hits
with no live signal do not open their own: a thousand public reports naming a thousand
substances in one area on one day are one case for the panel, not a thousand.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ldis.domain.errors import Conflict, NotFound, ValidationFailed
from ldis.domain.principal import Principal
from ldis.domain.public_reports import (
    MAX_STORY,
    PUBLIC_KIND,
    SERIOUS,
    Effect,
    Origin,
    PublicReport,
    find_substances,
    parse_public,
)
from ldis.domain.roles import Role
from ldis.domain.rules import SEVERITY_ORDER, Severity, evaluate, facts_from_stored
from ldis.domain.substances import Vocabulary
from ldis.services import audit, intake, signals, vocabulary
from ldis.services.intake import Prepared, _insert, _prepare, check_privacy
from ldis.services.ports import TaskQueue
from ldis.services.signals import similar_appearances
from ldis.store.db import Database, dialect_insert
from ldis.store.models import Area, PublicFormToken, Report, Signal, SignalReport

log = logging.getLogger(__name__)
__all__ = [
    "MAX_STORY",
    "Filed",
    "area_choices",
    "consume_form_token",
    "file_public_report",
    "set_verified",
    "validate",
]
# Used form tokens are kept as long as a token is valid, then forgotten.
TOKEN_MEMORY = timedelta(days=1)


@dataclass(frozen=True)
class Filed:
    id: int
    reference: str
    created: bool  # False: the same form or text arrived again (a resend or a retry)


def validate(body: dict[str, Any], *, origin: Origin, reference: str) -> PublicReport:
    """The report as the public door gives it, checked; ValidationFailed names each field."""
    report = parse_public(
        {**body, "kind": PUBLIC_KIND, "source": {"type": origin, "reference": reference}}
    )
    problems = check_privacy(report)
    if problems:
        raise ValidationFailed(problems)
    return report


def area_choices(db: Database) -> list[tuple[str, str]]:
    """(code, name) of every area, by name: the form's "roughly where" list."""
    with db.transaction() as session:
        rows = session.execute(select(Area.code, Area.name).order_by(Area.name)).all()
        return [(code, name) for code, name in rows]


def consume_form_token(db: Database, nonce: str) -> bool:
    """Mark a form token used; False when it was used before (each form is sent once)."""
    now = datetime.now(UTC)
    with db.transaction() as session:
        session.execute(delete(PublicFormToken).where(PublicFormToken.used_at < now - TOKEN_MEMORY))
        statement = (
            dialect_insert(session)(PublicFormToken)
            .values(nonce=nonce[:64], used_at=now)
            .on_conflict_do_nothing(index_elements=["nonce"])
            .returning(PublicFormToken.nonce)
        )
        return session.execute(statement).scalar_one_or_none() is not None


def file_public_report(db: Database, report: PublicReport, queue: TaskQueue | None = None) -> Filed:
    """Store a validated public report with its signals, in one transaction."""
    for attempt in range(3):
        try:
            return _store(db, report)
        except IntegrityError:
            # A reference collision, or the same form/text stored by a concurrent request:
            # the next attempt finds it as a duplicate.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _store(db: Database, report: PublicReport) -> Filed:
    with db.transaction() as session:
        key = report.dedupe_key()
        if key is not None:
            known = session.execute(
                select(Report.id, Report.reference).where(Report.dedupe_key == key)
            ).first()
            if known is not None:
                return Filed(known[0], known[1], created=False)
        area_ids: dict[str, int] = {}
        if report.area:
            area_id = session.scalar(select(Area.id).where(Area.code == report.area))
            if area_id is None:
                raise ValidationFailed({"area": "choose an area from the list"})
            area_ids[report.area] = area_id
        vocab = vocabulary.current(session)
        if not report.suspected_substances:
            # What the person wrote may name what was in it ("think it had fentanyl in").
            named = find_substances(report.what_happened, vocab)
            report = report.model_copy(update={"suspected_substances": named})
        item = _prepare(0, report, area_ids, vocab, None)
        item.values.update(origin=report.source.type, verified=False)
        (report_id,) = _insert(session, [item])
        _public_signals(session, vocab, report_id, item)
        audit.record(
            session,
            actor_id=None,
            action="public_report.filed",
            entity="report",
            entity_id=report_id,
            origin=report.source.type,
        )
        return Filed(report_id, item.values["reference"], created=True)


def set_verified(db: Database, actor: Principal, report_id: int, body: Any) -> dict[str, Any]:
    """The panel marks a public report verified (they checked it: a sample tested, a
    service confirmed it) or unverified again. Staff reports are verified by who filed them."""
    actor.require(Role.panel)
    verified = body.get("verified") if isinstance(body, dict) else None
    if not isinstance(verified, bool):
        raise ValidationFailed({"verified": "give true or false"})
    unknown = set(body) - {"verified"}
    if unknown:
        raise ValidationFailed({name: "is not a known field; remove it" for name in unknown})
    with db.transaction() as session:
        report = session.get(Report, report_id)  # two members toggling at once: last wins
        if report is None:
            raise NotFound(f"No report {report_id}.")
        if report.origin == "staff":
            raise Conflict("Only public reports can be marked verified or unverified.")
        if report.verified != verified:
            report.verified = verified
            audit.record(
                session,
                actor_id=actor.db_id,
                action="public_report.verified" if verified else "public_report.unverified",
                entity="report",
                entity_id=report.id,
            )
        session.flush()
        return intake.report_view(report)


def _severity(report: PublicReport, hits: list[Severity]) -> Severity:
    worst = min(hits, key=lambda s: SEVERITY_ORDER[s], default=Severity.green)
    if Effect.died in report.effects:
        return Severity.red
    if SERIOUS.intersection(report.effects) and SEVERITY_ORDER[worst] > 1:
        return Severity.amber
    return worst


def _public_signals(session: Session, vocab: Vocabulary, report_id: int, item: Prepared) -> Signal:
    values, report = item.values, item.report
    assert isinstance(report, PublicReport)
    similar = similar_appearances(session, values["appearance_key"], values["occurred_at"]) - 1
    facts = facts_from_stored(
        PUBLIC_KIND,
        report.area,
        values["occurred_at"],
        values["data"],
        vocab,
        similar_recent=max(similar, 0),
    )
    hits = evaluate(facts)
    for hit in hits:
        signals.join_live(session, hit.key, [report_id])
    day = values["received_at"].astimezone(UTC).date()
    where = report.area or "unknown area"
    signal = signals.raise_signal(
        session,
        kind="public",
        key=f"public:{report.area or '-'}:{day.isoformat()}",
        severity=_severity(report, [hit.severity for hit in hits]),
        summary=f"public reports (unverified) in {where} on {day:%d %b %Y}",
        area_id=values["area_id"],
        report_ids=[report_id],
        window=(values["occurred_at"], values["occurred_at"]),
        details={},
    )
    count = session.scalar(
        select(func.count()).select_from(SignalReport).where(SignalReport.signal_id == signal.id)
    )
    named = sorted({hit.summary for hit in hits})
    details = dict(signal.details or {})
    seen = list(dict.fromkeys([*details.get("rule_hits", []), *named]))[:20]
    signal.details = {**details, "public": True, "rule_hits": seen}
    summary = f"{count} public report{'s' if count != 1 else ''} (unverified) in {where} "
    summary += f"on {day:%d %b %Y}"
    if seen:
        summary += ": " + "; ".join(seen)
    signal.summary = summary[:500]
    return signal
