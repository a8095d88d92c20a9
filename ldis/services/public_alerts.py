"""Public alerts: what anyone may read without signing in, as a page, an Atom feed and one
CAP 1.2 message per alert (`docs/public-feeds.md`).

Only alerts whose live version is at the **public** level are published, never exercises,
never a version nobody approved. The text is built from a whitelist of the version's fields
(summary, advice, appearance, what changed) and the standing public wording of
`alert_templates/shared/standing.j2`: professional fields, report data and names never
appear. A withdrawn alert leaves the page at once but stays reachable as a CAP Cancel and
stays in the feed, marked withdrawn, for `ENDED_FEED_DAYS`. Every XML document is built
with lxml, never by pasting strings. Nothing here writes.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader
from lxml import etree
from shapely.geometry import Polygon
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from ldis.domain.alerts import AlertPriority, AlertStatus, VersionPurpose, VersionState
from ldis.domain.errors import NotFound
from ldis.messages.context import is_exercise, reference
from ldis.services import panel_cases
from ldis.store.db import Database
from ldis.store.models import Alert, AlertVersion, Area, Grade

PUBLIC_LEVEL = "public"
ENDED_FEED_DAYS = 7  # a withdrawn or expired alert stays in the Atom feed this long
MAX_POLYGON_POINTS = 100  # per CAP <polygon>; larger boundaries are simplified
MAX_ALERTS = 200
SENDER_NAME = "Local Drug Information System"
CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
ATOM_NS = "http://www.w3.org/2005/Atom"
LISTING_PATH, PAGE_PATH = "/public-alerts", "/public-alerts/{id}"
FEED_PATH, CAP_PATH = "/feeds/alerts.atom", "/feeds/alerts/{id}.cap.xml"
# Characters XML 1.0 cannot carry; lxml refuses them, so they are dropped from user text.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
EVER = datetime.min.replace(tzinfo=UTC)
SEVERITY = {"red": "Severe", "amber": "Moderate", "green": "Minor"}


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


def _child(
    ns: str, parent: etree._Element, name: str, text: str | None = None, **attrs: str
) -> etree._Element:
    """A namespaced child element; text is set as text (escaped by lxml), minus characters
    XML cannot carry."""
    element = etree.SubElement(parent, f"{{{ns}}}{name}", attrs)
    if text is not None:
        element.text = _NOT_XML.sub("", text)
    return element


def cap_time(moment: datetime) -> str:
    """CAP's dateTime: whole seconds and an offset, never "Z" (UTC is written -00:00)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") + "-00:00"


def atom_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def cap_polygons(boundary: dict[str, Any] | None) -> list[str]:
    """A GeoJSON Polygon or MultiPolygon (lon, lat) as CAP polygons ("lat,lon lat,lon ...",
    closed): each part's outer ring, simplified to at most `MAX_POLYGON_POINTS` points."""
    if not boundary or boundary.get("type") not in ("Polygon", "MultiPolygon"):
        return []
    parts = [boundary["coordinates"]]
    if boundary["type"] == "MultiPolygon":
        parts = list(boundary["coordinates"])
    polygons = []
    for rings in parts:
        ring = [(float(p[0]), float(p[1])) for p in rings[0]]
        tolerance = 0.0001  # degrees: about 10 m, doubled until the ring is small enough
        while len(ring) > MAX_POLYGON_POINTS and tolerance < 10:
            simpler = Polygon(ring).simplify(tolerance, preserve_topology=True)
            if isinstance(simpler, Polygon) and not simpler.is_empty:
                ring = [(x, y) for x, y, *_ in simpler.exterior.coords]
            tolerance *= 2
        if ring[0] != ring[-1]:
            ring.append(ring[0])
        polygons.append(" ".join(f"{round(lat, 5)},{round(lon, 5)}" for lon, lat in ring))
    return polygons


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
        return f"{self.sender}-{reference(alert_id, version)}"

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
        return Document(self._atom(alerts), _latest(alerts))

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
            facts = _case_facts(session, alert_id)
        return Document(self._cap(found[0], *facts), found[0].messages[-1].sent)

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

    def _cap(self, alert: PublicAlert, rag: str | None, certainty: str) -> bytes:
        current = alert.messages[-1]
        earlier = alert.messages[:-1]
        if current.purpose == VersionPurpose.withdrawal.value:
            msg_type = "Cancel"
        else:
            msg_type = "Update" if earlier else "Alert"
        root = etree.Element(f"{{{CAP_NS}}}alert", nsmap={None: CAP_NS})
        add = functools.partial(_child, CAP_NS)
        add(root, "identifier", self.identifier(alert.id, current.version))
        add(root, "sender", self.sender)
        add(root, "sent", cap_time(current.sent))
        add(root, "status", "Actual")  # exercises are never published
        add(root, "msgType", msg_type)
        add(root, "scope", "Public")
        if msg_type == "Cancel":
            add(root, "note", "Withdrawn by the Local Drug Information System panel.")
        if earlier:
            refs = (
                f"{self.sender},{self.identifier(alert.id, m.version)},{cap_time(m.sent)}"
                for m in earlier
            )
            add(root, "references", " ".join(refs))
        add(root, "incidents", f"{self.sender}-LDIS-{alert.id}")
        info = add(root, "info")
        add(info, "language", "en-GB")
        add(info, "category", "Health")
        add(info, "event", alert.title)
        add(info, "urgency", "Immediate" if alert.urgent else "Expected")
        add(info, "severity", SEVERITY.get(rag or "", "Unknown"))
        add(info, "certainty", certainty)
        add(info, "audience", "The public, people who use drugs, their friends and family")
        if alert.expires_at is not None:
            add(info, "expires", cap_time(alert.expires_at))
        add(info, "senderName", SENDER_NAME)
        add(
            info,
            "headline",
            alert.headline if msg_type == "Cancel" else f"{alert.heading}: {alert.title}",
        )
        add(info, "description", "\n\n".join(alert.description))
        add(info, "instruction", "\n\n".join(alert.instruction))
        add(info, "web", self.page_url(alert.id))
        for area in alert.areas:
            block = add(info, "area")
            add(block, "areaDesc", area.name)
            for polygon in cap_polygons(area.boundary):
                add(block, "polygon", polygon)
            geocode = add(block, "geocode")
            add(geocode, "valueName", "LDIS-area")
            add(geocode, "value", area.code)
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)

    def _atom(self, alerts: list[PublicAlert]) -> bytes:
        feed = etree.Element(f"{{{ATOM_NS}}}feed", nsmap={None: ATOM_NS})
        feed.set("{http://www.w3.org/XML/1998/namespace}lang", "en-GB")
        add = functools.partial(_child, ATOM_NS)
        add(feed, "id", self.base + FEED_PATH)
        add(feed, "title", "Public drug alerts")
        add(feed, "subtitle", "Warnings about dangerous drugs from the " + SENDER_NAME)
        add(feed, "updated", atom_time(_latest(alerts)))
        add(feed, "link", rel="self", type="application/atom+xml", href=self.base + FEED_PATH)
        add(feed, "link", rel="alternate", type="text/html", href=self.base + LISTING_PATH)
        author = add(feed, "author")
        add(author, "name", SENDER_NAME)
        add(author, "uri", self.base + LISTING_PATH)
        for alert in alerts:
            entry = add(feed, "entry")
            add(entry, "id", self.page_url(alert.id))
            add(entry, "title", alert.headline)
            add(entry, "updated", atom_time(alert.updated))
            add(entry, "published", atom_time(alert.first_sent))
            for kind, href in (
                ("text/html", self.page_url(alert.id)),
                ("application/cap+xml", self.cap_url(alert.id)),
            ):
                add(entry, "link", rel="alternate", type=kind, href=href)
            add(entry, "category", term=alert.state, label=alert.state.capitalize())
            summary = "\n\n".join((*alert.description, *alert.instruction))
            add(entry, "summary", summary, type="text")
        return etree.tostring(feed, xml_declaration=True, encoding="UTF-8", pretty_print=True)


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
