"""Public alerts: what anyone may read without signing in, as a page, an Atom feed and one
CAP 1.2 message per alert (`docs/public-feeds.md`).

Only alerts whose live version is at the **public** level are published, never exercises,
never a version nobody approved. The text is built from a whitelist of the version's fields
(summary, advice, appearance, what changed) and the standing public wording of
`alert_templates/shared/standing.j2`: professional fields, report data and names never
appear. A withdrawn alert leaves the page at once but stays reachable as a CAP Cancel and
stays in the feed, marked withdrawn, for `ENDED_FEED_DAYS`. The CAP and Atom documents
are built in `ldis.services.public_xml`. Nothing here writes.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from ldis.domain.alerts import AlertPriority, AlertStatus, VersionPurpose, VersionState
from ldis.domain.errors import NotFound
from ldis.messages.context import is_exercise
from ldis.services import panel_cases, public_xml
from ldis.services.public_xml import MAX_POLYGON_POINTS as MAX_POLYGON_POINTS  # re-export
from ldis.store.db import Database
from ldis.store.models import Alert, AlertVersion, Area, Grade

PUBLIC_LEVEL = "public"
ENDED_FEED_DAYS = 7  # a withdrawn or expired alert stays in the Atom feed this long
MAX_ALERTS = 200
LISTING_PATH, PAGE_PATH = "/public-alerts", "/public-alerts/{id}"
FEED_PATH, CAP_PATH = "/feeds/alerts.atom", "/feeds/alerts/{id}.cap.xml"
EVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Standing:
    headings: dict[str, str]
    safer: str
    emergency: str


@functools.cache
def standing(templates_path: Path) -> Standing:
    """The standing public wording, read from the templates the messages use (one source)."""
    env = Environment(loader=FileSystemLoader(str(templates_path)), autoescape=False)  # noqa: S701
    module = vars(env.get_template("shared/standing.j2").module)
    return Standing(
        headings={str(k): str(v) for k, v in module["PUBLIC_HEADINGS"].items()},
        safer=str(module["PUBLIC_SAFER"]),
        emergency=str(module["PUBLIC_EMERGENCY"]),
    )


@dataclass(frozen=True)
class PublicArea:
    code: str
    name: str
    boundary: dict[str, Any] | None = None


@dataclass(frozen=True)
class Message:
    """One CAP message: a version that went out (the first alert, an update, a withdrawal)."""

    version: int
    purpose: str
    sent: datetime


@dataclass(frozen=True)
class PublicAlert:
    id: int
    state: str  # live, withdrawn or expired
    title: str
    heading: str  # "Drug alert", "Overdose alert", ...
    urgent: bool
    is_update: bool
    description: tuple[str, ...]  # paragraphs of the public text
    instruction: tuple[str, ...]  # paragraphs of the harm-reduction advice
    areas: tuple[PublicArea, ...]
    messages: tuple[Message, ...]  # oldest first; the last is the current CAP message
    expires_at: datetime | None
    ended_at: datetime | None  # withdrawn or expired at

    @property
    def headline(self) -> str:
        prefix = {"withdrawn": "Withdrawn: ", "expired": "Expired: "}.get(self.state, "")
        return f"{prefix}{self.heading}: {self.title}"

    @property
    def first_sent(self) -> datetime:
        return self.messages[0].sent

    @property
    def updated(self) -> datetime:
        """When what is published last changed: the last message, or the expiry."""
        last = self.messages[-1].sent
        return max(last, self.ended_at) if self.state == "expired" and self.ended_at else last


@dataclass(frozen=True)
class Listing:
    alerts: tuple[PublicAlert, ...]
    areas: tuple[PublicArea, ...]  # every area, by name, for the "show alerts for" choice
    area: PublicArea | None  # the one chosen


@dataclass(frozen=True)
class Document:
    body: bytes
    updated: datetime


class PublicAlerts:
    """The published view of alerts, for one deployment's public URL and templates."""

    def __init__(
        self, db: Database, *, templates_path: Path, public_url: str, mail_from: str
    ) -> None:
        self.db = db
        self.templates_path = templates_path
        self.base = public_url.rstrip("/")
        host = urlsplit(public_url).hostname
        self.sender = host or mail_from.rpartition("@")[2] or mail_from

    # Links: the routes in ldis/web/public.py answer these paths.
    def page_url(self, alert_id: int) -> str:
        return self.base + PAGE_PATH.format(id=alert_id)

    def cap_url(self, alert_id: int) -> str:
        return self.base + CAP_PATH.format(id=alert_id)

    def identifier(self, alert_id: int, version: int) -> str:
        return public_xml.cap_identifier(self.sender, alert_id, version)

    # Reading.
    def listing(self, area: str | None = None, *, now: datetime | None = None) -> Listing:
        """Live public alerts, newest first; with `area`, those naming it, an area it lies
        in, or one inside it. NotFound for an unknown area code."""
        now = now or datetime.now(UTC)
        with self.db.transaction() as session:
            rows = session.execute(select(Area.id, Area.code, Area.name, Area.parent_id)).all()
            choices = tuple(PublicArea(c, n) for _, c, n, _ in sorted(rows, key=lambda r: r[2]))
            alerts = self._load(session, now, ended_since=None)
        chosen = None
        if area:
            chosen = next((a for a in choices if a.code == area.strip().upper()), None)
            if chosen is None:
                raise NotFound(f"No area {area}.")
            related = _related_codes(chosen.code, [(i, c, p) for i, c, _, p in rows])
            alerts = [a for a in alerts if related & {x.code for x in a.areas}]
        return Listing(alerts=tuple(alerts), areas=choices, area=chosen)

    def alert(self, alert_id: int, *, now: datetime | None = None) -> PublicAlert:
        """A published alert, live or ended; NotFound for anything never published."""
        now = now or datetime.now(UTC)
        with self.db.transaction() as session:
            found = self._load(session, now, ended_since=EVER, only=alert_id)
        if not found:
            raise NotFound(f"No public alert {alert_id}.")
        return found[0]

    def atom(self, *, now: datetime | None = None) -> Document:
        """The feed: live public alerts, and those withdrawn or expired in the last
        `ENDED_FEED_DAYS` days (marked so, for readers to learn they ended)."""
        now = now or datetime.now(UTC)
        with self.db.transaction() as session:
            alerts = self._load(session, now, ended_since=now - timedelta(days=ENDED_FEED_DAYS))
        updated = _latest(alerts)
        feed = public_xml.atom_feed(
            alerts,
            updated=updated,
            feed_url=self.base + FEED_PATH,
            listing_url=self.base + LISTING_PATH,
            page_url=self.page_url,
            cap_url=self.cap_url,
        )
        return Document(feed, updated)

    def cap(self, alert_id: int, *, now: datetime | None = None) -> Document:
        """The alert's current CAP 1.2 message; NotFound unless it was ever published."""
        now = now or datetime.now(UTC)
        with self.db.transaction() as session:
            found = self._load(
                session,
                now,
                ended_since=EVER,
                only=alert_id,
                boundaries=True,
            )
            if not found:
                raise NotFound(f"No public alert {alert_id}.")
            rag, certainty = _case_facts(session, alert_id)
        alert = found[0]
        message = public_xml.cap_message(
            alert,
            sender=self.sender,
            page_url=self.page_url(alert.id),
            rag=rag,
            certainty=certainty,
        )
        return Document(message, alert.messages[-1].sent)

    def _load(
        self,
        session: Session,
        now: datetime,
        *,
        ended_since: datetime | None,
        only: int | None = None,
        boundaries: bool = False,
    ) -> list[PublicAlert]:
        live = and_(
            Alert.status.not_in([AlertStatus.withdrawn.value, AlertStatus.expired.value]),
            or_(Alert.expires_at.is_(None), Alert.expires_at > now),
        )
        wanted: Any = live
        if ended_since is not None:
            wanted = or_(
                live,
                and_(
                    Alert.status == AlertStatus.withdrawn.value, Alert.withdrawn_at >= ended_since
                ),
                and_(
                    Alert.status != AlertStatus.withdrawn.value,
                    or_(Alert.status == AlertStatus.expired.value, Alert.expires_at <= now),
                    or_(Alert.expires_at >= ended_since, Alert.expired_at >= ended_since),
                ),
            )
        query = (
            select(Alert)
            .join(
                AlertVersion,
                and_(AlertVersion.alert_id == Alert.id, AlertVersion.version == Alert.live_version),
            )
            .where(Alert.exercise.is_(False), AlertVersion.level == PUBLIC_LEVEL, wanted)
            .order_by(Alert.id.desc())
            .limit(MAX_ALERTS)
        )
        if only is not None:
            query = query.where(Alert.id == only)
        alerts = [
            a
            for a in session.scalars(query)
            if not is_exercise(a.version_row(a.live_version).content)
        ]
        codes = {
            str(c) for a in alerts for c in a.version_row(a.live_version).content.get("areas", [])
        }
        columns = [Area.code, Area.name, Area.boundary] if boundaries else [Area.code, Area.name]
        areas = {
            row[0]: PublicArea(row[0], row[1], row[2] if boundaries else None)
            for row in session.execute(select(*columns).where(Area.code.in_(codes)))
        }
        built = [self._build(alert, areas, now) for alert in alerts]
        return sorted((a for a in built if a.messages), key=lambda a: a.updated, reverse=True)

    def _build(self, alert: Alert, areas: dict[str, PublicArea], now: datetime) -> PublicAlert:
        assert alert.live_version is not None  # the query joined on it
        live = alert.version_row(alert.live_version)
        state, ended_at = "live", None
        if alert.status == AlertStatus.withdrawn.value:
            state, ended_at = "withdrawn", alert.withdrawn_at
        elif alert.status == AlertStatus.expired.value or (
            alert.expires_at is not None and alert.expires_at <= now
        ):
            ends = [t for t in (alert.expires_at, alert.expired_at) if t is not None]
            state, ended_at = "expired", min(ends, default=None)
        messages = tuple(
            Message(v.version, v.purpose, v.approved_at)
            for v in alert.versions
            if v.state == VersionState.approved.value
            and v.approved_at is not None
            and v.level == PUBLIC_LEVEL
            and (
                v.version <= alert.live_version
                if v.purpose != VersionPurpose.withdrawal.value
                else state == "withdrawn"
            )
        )
        words = standing(self.templates_path)
        fields = live.content.get("fields") or {}
        kind = str(live.content.get("kind") or "drug_alert")
        is_update = live.purpose == VersionPurpose.update.value
        description = [str(fields.get("summary", ""))]
        if is_update and fields.get("what_changed"):
            description.insert(0, f"Update: {fields['what_changed']}")
        if fields.get("appearance"):
            description.append(f"What it looks like: {fields['appearance']}")
        instruction = [str(fields.get("advice", "")), f"Stay safer: {words.safer}", words.emergency]
        if state == "withdrawn":
            description = [
                "This alert has been withdrawn. Please stop sharing it, and tell anyone you "
                "passed it on to that it has been withdrawn."
            ]
            instruction = instruction[1:]
        codes = [str(c) for c in live.content.get("areas", [])]
        return PublicAlert(
            id=alert.id,
            state=state,
            title=live.title,
            heading=words.headings.get(kind, "Drug alert"),
            urgent=live.priority == AlertPriority.urgent.value,
            is_update=is_update,
            description=tuple(p for p in description if p.strip()),
            instruction=tuple(p for p in instruction if p.strip()),
            areas=tuple(areas.get(c, PublicArea(c, c)) for c in codes),
            messages=messages,
            expires_at=alert.expires_at,
            ended_at=ended_at,
        )


def _latest(alerts: list[PublicAlert]) -> datetime:
    """The feed's `updated`: its newest entry, or the Unix epoch for an empty feed (a
    constant, so an empty feed keeps one ETag)."""
    return max((a.updated for a in alerts), default=datetime(1970, 1, 1, tzinfo=UTC))


def _related_codes(code: str, rows: list[tuple[int, str, int | None]]) -> set[str]:
    """`code`, the areas it lies in, and the areas inside it."""
    parent_of = {i: p for i, _, p in rows}
    code_of = {i: c for i, c, _ in rows}
    start = next(i for i, c, _ in rows if c == code)
    related = {start}
    here: int | None = parent_of[start]
    while here is not None and here not in related:
        related.add(here)
        here = parent_of.get(here)
    children: dict[int, list[int]] = {}
    for i, p in parent_of.items():
        if p is not None:
            children.setdefault(p, []).append(i)
    todo = [start]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in related:
                related.add(child)
                todo.append(child)
    return {code_of[i] for i in related}


def _case_facts(session: Session, alert_id: int) -> tuple[str | None, str]:
    """(the panel's RAG, CAP certainty) from the case the alert came from. Certainty is
    Observed when a grade records forensic or laboratory confirmation or the panel decided
    on a formal alert, else Likely (shared for information, or no case)."""
    alert = session.get(Alert, alert_id)
    assert alert is not None  # just loaded
    subject, subject_id = (
        ("signal", alert.signal_id) if alert.signal_id else ("report", alert.report_id)
    )
    if subject_id is None:
        return None, "Likely"
    decision = panel_cases.current_decision(session, subject, subject_id)
    criteria = session.scalars(
        select(Grade.criteria).where(Grade.subject == subject, Grade.subject_id == subject_id)
    )
    confirmed = any(c.get("confirmation") == "confirmed" for c in criteria)
    formal = decision is not None and decision.decision == "formal_alert"
    return (decision.rag if decision else None), ("Observed" if confirmed or formal else "Likely")
