"""File reports: validate the kind, refuse personal identifiers, normalise substances, resolve
the area, recognise duplicates, store, audit. One report or a whole batch, one transaction.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ldis.domain.errors import NotFound, ValidationFailed
from ldis.domain.photo import Photo
from ldis.domain.principal import Principal
from ldis.domain.privacy import describe, find_personal_identifiers
from ldis.domain.reports import ReportBody, parse_report, plain_text
from ldis.domain.roles import Role
from ldis.domain.rules import appearance_key, facts_from_stored
from ldis.domain.substances import Vocabulary
from ldis.services import audit, signals, vocabulary
from ldis.services.areas import Locator
from ldis.services.ports import TaskQueue
from ldis.services.signals import similar_appearances
from ldis.store.db import Database
from ldis.store.models import Area, Report, ReportPhoto, ReportSubstance, ReportUpdate, User
from ldis.store.models.partnerships import DEFAULT_PARTNERSHIP_ID
from ldis.store.tenancy import acting_partnership

log = logging.getLogger(__name__)

# No 0/O or 1/I: references are read out over the phone. 10 characters = 50 bits.
_REFERENCE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
# The same content twice within this window is a resend, not a second event.
DUPLICATE_WINDOW = timedelta(minutes=10)
MAX_BATCH = 5000
FILERS = (Role.reporter, Role.panel, Role.admin)


def new_reference() -> str:
    return "R-" + "".join(secrets.choice(_REFERENCE_ALPHABET) for _ in range(10))


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def check_privacy(report: ReportBody, prefix: str = "") -> dict[str, str]:
    """Free-text fields naming a person: {field: what to remove}."""
    problems = {}
    for name, text in report.free_text().items():
        findings = find_personal_identifiers(text)
        if findings:
            problems[prefix + name] = "reports are about drugs, not people: " + describe(findings)
    return problems


def validate(body: Any, *, prefix: str = "") -> ReportBody:
    """Parse any kind and apply the privacy guard; ValidationFailed names each field."""
    try:
        report = parse_report(body)
    except ValidationFailed as exc:
        if prefix:
            raise ValidationFailed({prefix + k: v for k, v in exc.fields.items()}) from None
        raise
    problems = check_privacy(report, prefix)
    if problems:
        raise ValidationFailed(problems)
    return report


@dataclass
class Prepared:
    """A validated report turned into rows, ready for insertion."""

    index: int
    report: ReportBody
    values: dict[str, Any]
    substances: list[dict[str, Any]] = field(default_factory=list)


def _areas(session: Session, reports: Iterable[tuple[int, ReportBody]]) -> dict[str, int]:
    codes = {r.area for _, r in reports if r.area}
    if not codes:
        return {}
    return dict(session.execute(select(Area.code, Area.id).where(Area.code.in_(codes))).all())


def _locator(session: Session, reports: Iterable[tuple[int, ReportBody]]) -> Locator | None:
    """For the reports giving a location but no area: the boundaries that may contain them."""
    points = [
        (point.lat, point.lon)
        for _, r in reports
        if not r.area and (point := r.location_point()) is not None
    ]
    return Locator(session, points) if points else None


def _fill_area(
    report: ReportBody, locator: Locator | None, area_ids: dict[str, int]
) -> ReportBody | dict[str, str]:
    """The report with the area found from its location, or what is wrong when it needs one
    and no boundary contains the location."""
    point = report.location_point()
    if report.area or point is None or locator is None:
        return report
    area = locator.most_specific(point.lat, point.lon)
    if area is not None:
        area_ids[area.code] = area.id
        return report.model_copy(update={"area": area.code})
    if not report.needs_area:
        return report
    return {
        "area": f"no area's boundary contains the location ({point.lat}, {point.lon}); "
        "give the area code"
    }


def _appearance(report: ReportBody) -> str | None:
    appearance = getattr(report, "appearance", None)
    if appearance is None:
        return None
    return appearance_key(appearance.colour, appearance.markings)


def _prepare(
    index: int,
    report: ReportBody,
    area_ids: dict[str, int],
    vocab: Vocabulary,
    reporter: int | None,
) -> Prepared:
    matches = [(path, vocab.lookup(name)) for path, name in report.substance_names()]
    point = report.location_point()
    values = {
        "reference": new_reference(),
        "kind": report.kind,
        "area_id": area_ids[report.area] if report.area else None,
        "occurred_at": report.event_time(),
        "received_at": datetime.now(UTC),
        "reporter_id": reporter,
        "source_type": report.source.type,
        "lat": point.lat if point else None,
        "lon": point.lon if point else None,
        "red_list": any(m.red_list for _, m in matches),
        "dedupe_key": report.dedupe_key(),
        "content_hash": report.content_hash(),
        "appearance_key": _appearance(report),
        "data": report.stored_data(),
    }
    substances = [
        {
            "field": path,
            "written": m.written,
            "canonical": m.canonical,
            "drug_class": m.drug_class,
            "red_list": m.red_list,
        }
        for path, m in matches
    ]
    return Prepared(index, report, values, substances)


@dataclass
class BatchResult:
    accepted: list[int] = field(default_factory=list)  # new report ids
    stored: list[Prepared] = field(default_factory=list)  # what was written, in id order
    signals: list[list[dict[str, Any]]] = field(default_factory=list)  # per stored report
    duplicates: list[int] = field(default_factory=list)  # indexes recognised as already filed
    rejected: list[dict[str, Any]] = field(default_factory=list)  # {"index", "fields"}

    def view(self) -> dict[str, Any]:
        return {
            "accepted": len(self.accepted),
            "duplicates": len(self.duplicates),
            "rejected": self.rejected,
        }


def _existing(session: Session, prepared: list[Prepared]) -> tuple[set[str], set[str]]:
    """Dedupe keys already stored, and content hashes stored within the window."""
    keys = [p.values["dedupe_key"] for p in prepared if p.values["dedupe_key"]]
    hashes = [p.values["content_hash"] for p in prepared if not p.values["dedupe_key"]]
    known_keys: set[str] = set()
    recent: set[str] = set()
    for start in range(0, len(keys), 1000):
        chunk = keys[start : start + 1000]
        known_keys.update(
            k
            for k in session.scalars(select(Report.dedupe_key).where(Report.dedupe_key.in_(chunk)))
            if k
        )
    since = datetime.now(UTC) - DUPLICATE_WINDOW
    for start in range(0, len(hashes), 1000):
        chunk = hashes[start : start + 1000]
        recent.update(
            session.scalars(
                select(Report.content_hash).where(
                    Report.content_hash.in_(chunk), Report.received_at >= since
                )
            )
        )
    return known_keys, recent


def _detect_later(queue: TaskQueue | None, result: BatchResult) -> None:
    """After commit: hand new near misses and call-outs to the cluster detectors."""
    ids = [
        report_id
        for report_id, item in zip(result.accepted, result.stored, strict=True)
        if item.values["kind"] in ("near_miss", "callout") and item.values["occurred_at"]
    ]
    if queue is None or not ids:
        return
    try:
        queue.enqueue_cluster_detection(ids)
    except Exception:
        # The hourly recompute will find what this would have found; the report is safe.
        log.exception("could not enqueue cluster detection for %s reports", len(ids))


def file_batch(
    db: Database,
    actor: Principal,
    bodies: list[Any],
    *,
    kind: str | None = None,
    queue: TaskQueue | None = None,
) -> BatchResult:
    """Validate every item; store the good ones together; report each bad one by index."""
    actor.require(*FILERS)
    if len(bodies) > MAX_BATCH:
        raise ValidationFailed({"body": f"send at most {MAX_BATCH} items per batch"})
    result = BatchResult()
    valid: list[tuple[int, ReportBody]] = []
    for index, body in enumerate(bodies):
        if kind is not None and isinstance(body, dict):
            if body.get("kind", kind) != kind:
                result.rejected.append({"index": index, "fields": {"kind": f"must be {kind}"}})
                continue
            body = {**body, "kind": kind}
        try:
            valid.append((index, validate(body)))
        except ValidationFailed as exc:
            result.rejected.append({"index": index, "fields": exc.fields})
    for attempt in range(3):
        try:
            _store(db, actor, valid, result)
            break
        except IntegrityError:
            # A reference collision (50 random bits) or a concurrent identical batch: start
            # the transaction again; the duplicate checks will now see the other's rows.
            result.accepted.clear()
            result.stored.clear()
            result.signals.clear()
            result.duplicates.clear()
            if attempt == 2:
                raise
    _detect_later(queue, result)
    return result


def _store(
    db: Database,
    actor: Principal,
    valid: list[tuple[int, ReportBody]],
    result: BatchResult,
    photo: Photo | None = None,
) -> None:
    with db.transaction() as session:
        area_ids = _areas(session, valid)
        locator = _locator(session, valid)
        vocab = vocabulary.current(session)
        prepared: list[Prepared] = []
        for index, given in valid:
            if given.area and given.area not in area_ids:
                result.rejected.append(
                    {"index": index, "fields": {"area": f"unknown area code {given.area!r}"}}
                )
                continue
            report = _fill_area(given, locator, area_ids)
            if isinstance(report, dict):
                result.rejected.append({"index": index, "fields": report})
                continue
            item = _prepare(index, report, area_ids, vocab, actor.db_id)
            # The fingerprint of what was sent, so a resend matches whatever area was found.
            item.values["content_hash"] = given.content_hash()
            prepared.append(item)
        known_keys, recent = _existing(session, prepared)
        fresh: list[Prepared] = []
        for item in prepared:
            key, digest = item.values["dedupe_key"], item.values["content_hash"]
            if (key and key in known_keys) or (not key and digest in recent):
                result.duplicates.append(item.index)
                continue
            # Within one batch, the second of two identical items is a duplicate too.
            (known_keys.add(key) if key else recent.add(digest))
            fresh.append(item)
        ids = _insert(session, fresh)
        if photo is not None and len(ids) == 1:
            # Same transaction as the report: never a report that lost its photo on the way.
            session.add(
                ReportPhoto(
                    report_id=ids[0],
                    content_type=photo.content_type,
                    width=photo.width,
                    height=photo.height,
                    data=photo.data,
                )
            )
        result.accepted.extend(ids)
        result.stored.extend(fresh)
        for report_id, item in zip(ids, fresh, strict=True):
            result.signals.append(_rule_signals(session, vocab, report_id, item))
        result.rejected.sort(key=lambda r: r["index"])
        if ids:
            audit.record(
                session,
                actor_id=actor.db_id,
                action="reports.filed",
                entity="report",
                entity_id=ids[0] if len(ids) == 1 else None,
                count=len(ids),
                duplicates=len(result.duplicates),
                rejected=len(result.rejected),
            )


def _rule_signals(
    session: Session, vocab: Vocabulary, report_id: int, item: Prepared
) -> list[dict[str, Any]]:
    """Raise (or join) the rule signals of a report just written, in the same transaction."""
    values = item.values
    if values["kind"] == "callout":
        return []  # call-outs carry no substances or doses: they feed the cluster detectors
    similar = similar_appearances(session, values["appearance_key"], values["occurred_at"]) - 1
    facts = facts_from_stored(
        values["kind"],
        item.report.area,
        values["occurred_at"],
        values["data"],
        vocab,
        similar_recent=max(similar, 0),
    )
    raised = signals.raise_for_report(session, report_id, values["area_id"], facts)
    return [signals.brief(signal) for signal in raised]


def _owners(session: Session, items: list[Prepared]) -> None:
    """A report belongs to its area's partnership (a public door or the command line acts
    for none, and must not file a York report with Durham's panel); without an area, to the
    partnership acting, or the default one."""
    area_ids = {item.values["area_id"] for item in items if item.values["area_id"] is not None}
    owners: dict[int, int] = (
        dict(
            session.execute(select(Area.id, Area.partnership_id).where(Area.id.in_(area_ids))).all()
        )
        if area_ids
        else {}
    )
    fallback = acting_partnership() or DEFAULT_PARTNERSHIP_ID
    for item in items:
        item.values["partnership_id"] = owners.get(item.values["area_id"], fallback)


def _insert(session: Session, items: list[Prepared]) -> list[int]:
    ids: list[int] = []
    _owners(session, items)
    for start in range(0, len(items), 1000):
        chunk = items[start : start + 1000]
        rows = (
            session.execute(
                insert(Report).returning(Report.id, sort_by_parameter_order=True),
                [item.values for item in chunk],
            )
            .scalars()
            .all()
        )
        ids.extend(rows)
        substance_rows = [
            {**s, "report_id": report_id}
            for report_id, item in zip(rows, chunk, strict=True)
            for s in item.substances
        ]
        if substance_rows:
            session.execute(insert(ReportSubstance), substance_rows)
    return ids


def file_report(
    db: Database,
    actor: Principal,
    body: Any,
    photo: Photo | None = None,
    queue: TaskQueue | None = None,
) -> tuple[dict[str, Any], bool]:
    """File one report (with its checked photo); return (view, created).

    A duplicate returns the original, not created, and its photo is not stored.
    """
    actor.require(*FILERS)
    report = validate(body)
    result = BatchResult()
    for attempt in range(3):
        try:
            _store(db, actor, [(0, report)], result, photo)
            break
        except IntegrityError:
            result = BatchResult()
            if attempt == 2:
                raise
    if result.rejected:
        raise ValidationFailed(result.rejected[0]["fields"])
    _detect_later(queue, result)
    if result.accepted:
        # Built from what was just written: no second round trip to read it back.
        view = _fresh_view(result.accepted[0], result.stored[0])
        return {**view, "signals": result.signals[0]}, True
    with db.transaction() as session:
        original = _original_of(session, report)
        if not may_read(session, actor, original):
            # Someone else's report (same source and reference): say it exists, show nothing.
            return {
                "id": original.id,
                "reference": original.reference,
                "kind": original.kind,
                "duplicate": True,
            }, False
        return {**report_view(original), "duplicate": True}, False


def _original_of(session: Session, report: ReportBody) -> Report:
    key = report.dedupe_key()
    query = select(Report).order_by(Report.id.desc()).limit(1)
    if key:
        query = query.where(Report.dedupe_key == key)
    else:
        query = query.where(Report.content_hash == report.content_hash())
    original = session.scalar(query)
    assert original is not None, "a duplicate always has an original"
    return original


def report_view(report: Report) -> dict[str, Any]:
    return {
        **report.data,
        "id": report.id,
        "reference": report.reference,
        "kind": report.kind,
        "area": report.area.code if report.area else None,
        "occurred_at": _iso(report.occurred_at),
        "received_at": _iso(report.received_at),
        "red_list": report.red_list,
        "origin": report.origin,
        "verified": report.verified,
        "substances": [
            {
                "field": s.field,
                "written": s.written,
                "canonical": s.canonical,
                "class": s.drug_class,
                "red_list": s.red_list,
                "known": s.canonical is not None,
            }
            for s in report.substances
        ],
        "updates": [{"text": u.text, "created_at": _iso(u.created_at)} for u in report.updates],
        "signals": [signals.brief(signal) for signal in report.signals],
    }


def _fresh_view(report_id: int, item: Prepared) -> dict[str, Any]:
    values = item.values
    return {
        **values["data"],
        "id": report_id,
        "reference": values["reference"],
        "kind": values["kind"],
        "area": item.report.area,
        "occurred_at": _iso(values["occurred_at"]),
        "received_at": _iso(values["received_at"]),
        "red_list": values["red_list"],
        "origin": values.get("origin", "staff"),
        "verified": values.get("verified", True),
        "substances": [
            {
                "field": s["field"],
                "written": s["written"],
                "canonical": s["canonical"],
                "class": s["drug_class"],
                "red_list": s["red_list"],
                "known": s["canonical"] is not None,
            }
            for s in item.substances
        ],
        "updates": [],
    }


def readable_by(session: Session, actor: Principal) -> ColumnElement[bool] | None:
    """The condition on `Report` for the reports `actor` may read; None means every report.

    The panel and admins read every report. A reporter reads their own and, once an admin
    has set the service they file for (`users.service_id`), every report filed by anyone
    of that service (as the service stands now: a reporter who moves takes their reports
    along). The command line acting as the system (user 0) is no user and reads none.
    """
    if actor.has_any(Role.panel, Role.admin):
        return None
    service_id = (
        session.scalar(select(User.service_id).where(User.id == actor.user_id))
        if actor.user_id
        else None
    )
    if service_id is None:
        return Report.reporter_id == actor.user_id
    colleagues = select(User.id).where(User.service_id == service_id)
    return or_(Report.reporter_id == actor.user_id, Report.reporter_id.in_(colleagues))


def may_read(session: Session, actor: Principal, report: Report) -> bool:
    scope = readable_by(session, actor)
    if scope is None:
        return True
    return (
        session.scalar(select(Report.id).where(Report.id == report.id, scope).limit(1)) is not None
    )


def _readable(session: Session, actor: Principal, report_id: int) -> Report:
    report = session.get(Report, report_id)
    if report is None or not may_read(session, actor, report):
        # Not Forbidden: a reporter must not learn that someone else's report exists.
        raise NotFound(f"No report {report_id}.")
    return report


def get_report(db: Database, actor: Principal, report_id: int) -> dict[str, Any]:
    actor.require(*FILERS)
    with db.transaction() as session:
        return report_view(_readable(session, actor, report_id))


def add_update(db: Database, actor: Principal, report_id: int, body: Any) -> dict[str, Any]:
    """The reporter (or an admin) adds what they learned later; same privacy rules apply."""
    actor.require(*FILERS)
    text = body.get("text") if isinstance(body, dict) else None
    if not isinstance(text, str) or not text.strip():
        raise ValidationFailed({"text": "write the update"})
    text = text.strip()
    if len(text) > 4000:
        raise ValidationFailed({"text": "keep it under 4,000 characters"})
    findings = find_personal_identifiers(text)
    if findings:
        raise ValidationFailed(
            {"text": "reports are about drugs, not people: " + describe(findings)}
        )
    try:
        plain_text(text)
    except ValueError as exc:
        raise ValidationFailed({"text": str(exc)}) from None
    with db.transaction() as session:
        report = _readable(session, actor, report_id)
        if report.reporter_id != actor.user_id and not actor.has_any(Role.admin):
            raise NotFound(f"No report {report_id} of yours.")
        session.add(ReportUpdate(report_id=report.id, author_id=actor.user_id, text=text))
        audit.record(
            session,
            actor_id=actor.user_id,
            action="report.updated",
            entity="report",
            entity_id=report.id,
        )
        session.flush()
        session.refresh(report)
        return report_view(report)
