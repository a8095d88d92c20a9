"""Public alerts against PostgreSQL, made through the API: the page lists only live
public-level alerts; each is CAP 1.2 (Alert, Update, Cancel; an expired one as it was) valid
against the OASIS schema shipped in tests/data; the Atom feed parses cleanly and keeps a
withdrawn alert, marked, for a week; anything never published is a 404."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import feedparser
import pytest
from flask.testing import FlaskClient
from lxml import etree

from ldis.bootstrap import Container
from ldis.domain.roles import Role
from ldis.services import alert_lifecycle
from ldis.services.public_alerts import MAX_POLYGON_POINTS, PublicAlerts
from tests.integration.cases import decided_report_via
from tests.integration.conftest import People
from tests.integration.test_alert_lifecycle import Api

pytestmark = pytest.mark.integration

XSD = Path(__file__).parents[1] / "data" / "CAP-v1.2.xsd"
CAP = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}
SENDER = "ldis.test"  # the host of LDIS_PUBLIC_URL in the test settings
SUMMARY = "Green tablets marked OC 80, sold as oxycodone, contain metonitazene."
ADVICE = "Carry extra naloxone; more than one dose may be needed."
SELBY_CENTRE = (-1.07, 53.78)  # lon, lat


def _circle(points: int) -> dict[str, Any]:
    """A closed ring of `points` positions around Selby: far more than a CAP polygon keeps."""
    lon, lat = SELBY_CENTRE
    ring = [
        [
            round(lon + 0.05 * math.cos(2 * math.pi * i / points), 6),
            round(lat + 0.03 * math.sin(2 * math.pi * i / points), 6),
        ]
        for i in range(points)
    ]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(XSD)))


class World:
    def __init__(self, client: FlaskClient, people: People) -> None:
        self.client = client
        self.api = Api(client, people)
        admin = people.headers("admin", Role.admin)
        for code, name, parent in (
            ("NYORKS", "North Yorkshire", None),
            ("SELBY", "Selby", "NYORKS"),
            ("TADCASTER", "Tadcaster", "NYORKS"),
            ("YORK", "York", None),
        ):
            body = {"code": code, "name": name, **({"parent": parent} if parent else {})}
            self.api.ok("POST", "/areas", admin, body)
        self.api.ok("PUT", "/areas/SELBY/boundary", admin, _circle(400))
        service = self.api.ok(
            "POST",
            "/services",
            admin,
            {"name": "Selby NSP", "type": "needle_syringe_programme", "areas": ["SELBY"]},
        )
        self.service_id = int(service["id"])
        self.drafter, self.p2, self.p3 = (
            people.headers(n, Role.panel) for n in ("drafter", "p2", "p3")
        )
        self.report_id = decided_report_via(client, self.p2, "SELBY")

    def body(self, title: str, **extra: Any) -> dict[str, Any]:
        return {
            "title": title,
            "template": "public",
            "level": "public",
            "priority": "urgent",
            "areas": ["SELBY", "TADCASTER"],
            "report_id": self.report_id,
            "fields": {"summary": SUMMARY, "advice": ADVICE},
            **extra,
        }

    def draft(self, title: str, **extra: Any) -> int:
        return int(self.api.ok("POST", "/alerts", self.drafter, self.body(title, **extra))["id"])

    def approve(self, alert_id: int) -> dict[str, Any]:
        self.api.ok("POST", f"/alerts/{alert_id}/approve", self.p2)
        view: dict[str, Any] = self.api.ok("POST", f"/alerts/{alert_id}/approve", self.p3)
        return view

    def send(self, title: str, **extra: Any) -> int:
        alert_id = self.draft(title, **extra)
        self.api.ok("POST", f"/alerts/{alert_id}/submit", self.drafter)
        assert self.approve(alert_id)["live_version"] == 1
        return alert_id

    def withdraw(self, alert_id: int) -> None:
        self.api.ok("POST", f"/alerts/{alert_id}/withdraw", self.drafter, {"reason": "Lab retest."})
        assert self.approve(alert_id)["status"] == "withdrawn"

    def cap(self, alert_id: int) -> etree._Element:
        response = self.client.get(f"/feeds/alerts/{alert_id}.cap.xml")
        assert response.status_code == 200, response.status_code
        assert response.mimetype == "application/cap+xml"
        return etree.fromstring(response.data)


@pytest.fixture
def world(client: FlaskClient, people: People) -> World:
    return World(client, people)


def text(cap: etree._Element, path: str) -> str:
    found = cap.findtext(path, namespaces=CAP)
    assert found is not None, path
    return found


def valid(schema: etree.XMLSchema, cap: etree._Element) -> etree._Element:
    schema.assertValid(cap)  # raises DocumentInvalid naming the first problem
    return cap


def reference(cap: etree._Element) -> str:
    """How a later message quotes this one: sender,identifier,sent."""
    return ",".join(text(cap, f"cap:{name}") for name in ("sender", "identifier", "sent"))


def test_the_page_lists_only_live_public_alerts(world: World) -> None:
    live = world.send("Nitazenes in fake oxycodone")
    professional = world.send(
        "Professional: xylazine wounds",
        level="professional",
        template="professional",
        fields={
            "summary": "Clinic-only wound care detail.",
            "advice": "Refer to tissue viability.",
        },
    )
    draft = world.draft("Draft: not yet approved")
    exercise = world.send("Exercise Nightingale", exercise=True, participants=[world.service_id])
    withdrawn = world.send("Withdrawn: retest was negative")
    world.withdraw(withdrawn)

    response = world.client.get("/public-alerts")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Nitazenes in fake oxycodone" in page and SUMMARY in page and ADVICE in page
    for absent in (
        "Professional: xylazine wounds",
        "Clinic-only wound care detail.",
        "Draft: not yet approved",
        "Exercise Nightingale",
        "retest was negative",
        "Drafter",  # no names of panel members
    ):
        assert absent not in page, absent
    assert "max-age=60" in response.headers["Cache-Control"]
    etag = response.headers["ETag"]
    again = world.client.get("/public-alerts", headers={"If-None-Match": etag})
    assert again.status_code == 304

    # Each alert's own page: live shows the text; withdrawn says so without the text.
    assert SUMMARY in world.client.get(f"/public-alerts/{live}").get_data(as_text=True)
    ended = world.client.get(f"/public-alerts/{withdrawn}").get_data(as_text=True)
    assert "has been withdrawn" in ended and SUMMARY not in ended
    for hidden in (professional, draft, exercise, 9999):
        assert world.client.get(f"/public-alerts/{hidden}").status_code == 404, hidden

    # By area: the area itself, the county it lies in; not an unrelated area.
    for area in ("SELBY", "NYORKS", "selby"):
        shown = world.client.get(f"/public-alerts?area={area}").get_data(as_text=True)
        assert "Nitazenes in fake oxycodone" in shown, area
    elsewhere = world.client.get("/public-alerts?area=YORK").get_data(as_text=True)
    assert "Nitazenes in fake oxycodone" not in elsewhere
    assert "There are no public drug alerts for this area right now" in elsewhere
    assert world.client.get("/public-alerts?area=NOWHERE").status_code == 404


def test_cap_follows_alert_update_and_cancel(world: World, schema: etree.XMLSchema) -> None:
    alert_id = world.send("Nitazenes in fake oxycodone")

    first = valid(schema, world.cap(alert_id))
    assert text(first, "cap:identifier") == f"{SENDER}-LDIS-{alert_id}-v1"
    assert text(first, "cap:sender") == SENDER
    assert (text(first, "cap:status"), text(first, "cap:msgType")) == ("Actual", "Alert")
    assert text(first, "cap:scope") == "Public"
    assert first.find("cap:references", CAP) is None
    assert text(first, "cap:sent").endswith("-00:00")
    info = "cap:info/cap:"
    assert text(first, info + "language") == "en-GB"
    assert text(first, info + "category") == "Health"
    assert text(first, info + "event") == "Nitazenes in fake oxycodone"
    # Urgent priority; the panel's red RAG; a lab-confirmed grade and a formal alert.
    assert text(first, info + "urgency") == "Immediate"
    assert text(first, info + "severity") == "Severe"
    assert text(first, info + "certainty") == "Observed"
    assert SUMMARY in text(first, info + "description")
    assert ADVICE in text(first, info + "instruction")
    web = text(first, info + "web")
    assert world.client.get(urlsplit(web).path).status_code == 200
    areas = first.findall("cap:info/cap:area", CAP)
    assert [text(a, "cap:areaDesc") for a in areas] == ["Selby", "Tadcaster"]

    # The boundary as a closed "lat,lon ..." polygon, simplified; none without a boundary.
    (polygon,) = (p.text or "" for p in areas[0].findall("cap:polygon", CAP))
    points = polygon.split(" ")
    assert 4 <= len(points) <= MAX_POLYGON_POINTS + 1 and points[0] == points[-1]
    lat, lon = (float(x) for x in points[0].split(","))
    assert abs(lat - SELBY_CENTRE[1]) < 0.1 and abs(lon - SELBY_CENTRE[0]) < 0.1
    assert areas[1].find("cap:polygon", CAP) is None

    # An update: Update, referencing the first message.
    body = world.body(
        "Nitazenes in fake oxycodone",
        fields={"summary": SUMMARY, "advice": ADVICE, "what_changed": "Now also in Tadcaster."},
    )
    world.api.ok("POST", f"/alerts/{alert_id}/revise", world.drafter, body)
    world.api.ok("POST", f"/alerts/{alert_id}/submit", world.drafter)
    world.approve(alert_id)
    update = valid(schema, world.cap(alert_id))
    assert text(update, "cap:msgType") == "Update"
    assert text(update, "cap:identifier") == f"{SENDER}-LDIS-{alert_id}-v2"
    assert text(update, "cap:references") == reference(first)
    assert "Now also in Tadcaster." in text(update, info + "description")

    # Withdrawn: Cancel, referencing the last message (and the one before it).
    world.withdraw(alert_id)
    cancel = valid(schema, world.cap(alert_id))
    assert text(cancel, "cap:msgType") == "Cancel"
    assert text(cancel, "cap:identifier") == f"{SENDER}-LDIS-{alert_id}-v3"
    assert text(cancel, "cap:references").split(" ") == [reference(first), reference(update)]
    assert SUMMARY not in etree.tostring(cancel).decode()

    # Gone from the page at once, still in the feed, marked withdrawn.
    assert "Nitazenes" not in world.client.get("/public-alerts").get_data(as_text=True)
    feed = feedparser.parse(world.client.get("/feeds/alerts.atom").data)
    assert [(e.title, e.tags[0].term) for e in feed.entries] == [
        ("Withdrawn: Drug alert: Nitazenes in fake oxycodone", "withdrawn")
    ]


def test_the_schema_refuses_what_cap_forbids(world: World, schema: etree.XMLSchema) -> None:
    """The shipped XSD is really checking: our message passes, and "Z" for UTC (which
    CAP 1.2 forbids) does not."""
    body = world.client.get(f"/feeds/alerts/{world.send('Nitazenes')}.cap.xml").data
    assert schema.validate(etree.fromstring(body))
    broken = etree.fromstring(body)
    sent = broken.find("cap:sent", CAP)
    assert sent is not None and sent.text is not None
    sent.text = sent.text.replace("-00:00", "Z")
    assert not schema.validate(broken)


def test_the_atom_feed(world: World, container: Container) -> None:
    alert_id = world.send("Nitazenes in fake oxycodone")
    world.send("Professional only", level="professional", template="professional")
    response = world.client.get("/feeds/alerts.atom")
    assert response.status_code == 200 and response.mimetype == "application/atom+xml"
    assert "max-age=60" in response.headers["Cache-Control"]
    feed = feedparser.parse(response.data)
    assert feed.bozo is False, feed.get("bozo_exception")
    assert feed.version == "atom10"
    assert feed.feed.id == "http://ldis.test/feeds/alerts.atom"
    assert feed.feed.link == "http://ldis.test/public-alerts"
    (entry,) = feed.entries
    assert entry.id == f"http://ldis.test/public-alerts/{alert_id}"
    assert entry.title == "Drug alert: Nitazenes in fake oxycodone"
    assert SUMMARY in entry.summary and ADVICE in entry.summary
    links = {link.type: link.href for link in entry.links}
    assert links == {
        "text/html": f"http://ldis.test/public-alerts/{alert_id}",
        "application/cap+xml": f"http://ldis.test/feeds/alerts/{alert_id}.cap.xml",
    }
    cap = world.client.get(urlsplit(links["application/cap+xml"]).path)
    assert cap.status_code == 200 and "max-age=60" in cap.headers["Cache-Control"]
    since = {"If-Modified-Since": cap.headers["Last-Modified"]}
    assert world.client.get(urlsplit(cap.request.url).path, headers=since).status_code == 304
    assert entry.updated_parsed and feed.feed.updated_parsed == entry.updated_parsed
    etag = response.headers["ETag"]
    assert (
        world.client.get("/feeds/alerts.atom", headers={"If-None-Match": etag}).status_code == 304
    )

    # A withdrawn alert stays a week, then leaves the feed.
    world.withdraw(alert_id)
    feeds = PublicAlerts(
        container.db,
        templates_path=container.settings.templates_path,
        public_url=container.settings.public_url,
        mail_from=container.settings.mail_from,
    )
    now = datetime.now(UTC)
    assert len(feedparser.parse(feeds.atom(now=now + timedelta(days=6)).body).entries) == 1
    assert feedparser.parse(feeds.atom(now=now + timedelta(days=8)).body).entries == []


def test_an_expired_alert_is_its_last_message_as_it_was(
    world: World, container: Container, schema: etree.XMLSchema
) -> None:
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    alert_id = world.send("Nitazenes in fake oxycodone", expires_at=soon.isoformat())
    before = world.client.get(f"/feeds/alerts/{alert_id}.cap.xml").data
    assert text(valid(schema, etree.fromstring(before)), "cap:info/cap:expires") == (
        soon.strftime("%Y-%m-%dT%H:%M:%S-00:00")
    )
    assert alert_lifecycle.expire_due(container.db, now=soon) == [alert_id]

    after = world.client.get(f"/feeds/alerts/{alert_id}.cap.xml")
    assert after.status_code == 200 and after.data == before
    assert "Nitazenes" not in world.client.get("/public-alerts").get_data(as_text=True)
    titles = [
        e.title for e in feedparser.parse(world.client.get("/feeds/alerts.atom").data).entries
    ]
    assert titles == ["Expired: Drug alert: Nitazenes in fake oxycodone"]


def test_nothing_unpublished_has_a_cap_message(world: World) -> None:
    professional = world.send("Professional only", level="professional", template="professional")
    draft = world.draft("Not approved yet")
    exercise = world.send("Exercise Nightingale", exercise=True, participants=[world.service_id])
    for alert_id in (professional, draft, exercise, 9999):
        assert world.client.get(f"/feeds/alerts/{alert_id}.cap.xml").status_code == 404, alert_id
    assert feedparser.parse(world.client.get("/feeds/alerts.atom").data).entries == []
