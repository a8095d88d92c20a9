"""User text is shown, never run: markup typed into report notes, alert fields, service
names and contact names appears escaped on every page that shows it (the panel's pages,
the service pages, the contact's own settings page, the local outbox, the e-mail HTML, the
public pages and feeds). And the photo upload refuses what is not a photo, or is too big,
with a sentence saying what to do.

The pages carry no JavaScript at all, so any "<script" in a page is user text let through."""

from __future__ import annotations

import dataclasses
import re
from io import BytesIO
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import select, update

from ldis.bootstrap import Container
from ldis.domain.photo import HEIC_HINT, looks_like
from ldis.domain.roles import Role
from ldis.store.models import Contact, OutboxMessage, Report, ReportSubstance, ReportUpdate
from ldis.web.app import create_app
from tests.integration import selfservice as s
from tests.integration.cases import decided_report_via
from tests.integration.conftest import People
from tests.integration.webpages import (
    AREA,
    DRUG_CHECK,
    NEAR_MISS,
    FormPage,
    Web,
    count,
    error_beside,
    make_web,
    post_form,
    text,
)

pytestmark = pytest.mark.integration

API = "/api/v1"
SCRIPT = '<script>alert("x")</script>'
IMG = "<img src=x onerror=alert(1)>"
RAW = ("<script", "<img src=x")
ESCAPED = ("&lt;script&gt;", "&lt;img src=x")


def assert_escaped(body: str, where: str, *, shown: bool = True) -> None:
    """No raw markup from users; and (when `shown`) their text is there, escaped."""
    lowered = body.lower()
    for raw in RAW:
        assert raw not in lowered, f"{where}: {raw!r} unescaped"
    if shown:
        assert any(e in body for e in ESCAPED), f"{where}: the user's text is not shown"


@pytest.fixture
def world(container: Container, people: People) -> dict[str, Any]:
    """A service, a contact, a report and a sent public alert, each carrying markup."""
    local: Flask = create_app(dataclasses.replace(container, queue=s.RecordingQueue()))
    client = local.test_client()
    web = make_web(local, container, client, people)
    admin = people.headers("admin", Role.admin)
    boss = web.browser("boss", Role.admin, Role.panel)
    for name in ("dana", "ali", "bea"):
        web.browser(name, Role.panel)
    tokens = {name: web.token(name) for name in ("dana", "ali", "bea")}

    service = client.post(
        f"{API}/services",
        json={"name": f"Selby NSP {SCRIPT}", "type": "needle_syringe_programme", "areas": [AREA]},
        headers=admin,
    ).get_json()
    contact = client.post(
        f"{API}/services/{service['id']}/contacts",
        json={
            "name": f"Eve {IMG}",
            "email": "eve@example.org",
            "phone": "07700 900123",
            "channels": ["sms", "email"],
            "verified": True,
        },
        headers=admin,
    ).get_json()
    assert "id" in contact, contact

    report_id = decided_report_via(client, tokens["dana"], AREA)
    with container.db.transaction() as session:
        # As if it came in by a door without the markup check (an old import, say).
        row = session.get(Report, report_id)
        assert row is not None
        row.data = {**row.data, "notes": f"Seen at the hostel {SCRIPT}"}
        session.add(ReportSubstance(report_id=report_id, field="notes", written=IMG))
        session.add(ReportUpdate(report_id=report_id, text=f"Later {SCRIPT}"))
        session.execute(
            update(Contact)
            .where(Contact.id == contact["id"])
            .values(flagged_at=row.received_at, flag_reason=f"Text messages: {SCRIPT}")
        )

    draft = {
        "title": f"Nitazenes {SCRIPT}",
        "template": "public",
        "level": "public",
        "priority": "standard",
        "areas": [AREA],
        "report_id": report_id,
        "fields": {
            "summary": f"Green tablets {IMG} sold as oxycodone.",
            "advice": f"Carry naloxone {SCRIPT}",
            "appearance": f"green, {IMG}",
        },
    }
    made = client.post(f"{API}/alerts", json=draft, headers=tokens["dana"])
    assert made.status_code == 201, made.get_json()
    alert_id = made.get_json()["id"]
    assert client.post(f"{API}/alerts/{alert_id}/submit", headers=tokens["dana"]).status_code == 200
    for name in ("ali", "bea"):
        approved = client.post(
            f"{API}/alerts/{alert_id}/approve",
            json={"otp": web.apps.code(f"{name}@example.org")},
            headers=tokens[name],
        )
        assert approved.status_code == 200, approved.get_json()
    s.deliver_alert(container, alert_id)
    return {
        "web": web,
        "boss": boss,
        "client": client,
        "service": service["id"],
        "contact": contact["id"],
        "report": report_id,
        "alert": alert_id,
    }


def test_user_text_is_escaped_on_every_page_that_shows_it(
    world: dict[str, Any], container: Container
) -> None:
    boss: FlaskClient = world["boss"]
    alert_id, report_id = world["alert"], world["report"]
    # Pages that show none of the marked-up text, checked for raw markup all the same.
    quiet = {f"/panel/reports/{report_id}"}
    pages = [
        "/reports",
        f"/reports/{report_id}",
        f"/panel/reports/{report_id}",
        "/services",
        f"/services/{world['service']}",
        f"/contacts/{world['contact']}",
        "/hygiene",
        "/alerts?state=all",
        f"/alerts/{alert_id}",
        f"/alerts/{alert_id}/history",
        f"/alerts/{alert_id}/deliveries",
        f"/alerts/{alert_id}/exercise",
        f"/alerts/{alert_id}/versions/1/email.html",
        f"/alerts/{alert_id}/revise",
        "/outbox",
    ]
    with container.db.transaction() as session:
        messages = session.scalars(select(OutboxMessage.id)).all()
    assert len(messages) == 2, "the alert went out by text and by e-mail"
    for message in messages:
        pages += [f"/outbox/{message}", f"/outbox/{message}/html"]  # the e-mail's HTML part
    html_parts = 0
    for page in pages:
        response = boss.get(page)
        if page.endswith("/html"):
            if response.status_code == 404:
                continue  # the text message has no HTML part
            html_parts += 1
        assert response.status_code == 200, (page, response.status_code)
        assert_escaped(text(response), page, shown=page not in quiet)

    assert html_parts == 1

    # The contact's own settings page (no sign-in: the signed link) names the service.
    link = container.links.preferences_url(world["contact"], 1).removeprefix("http://ldis.test")
    anyone: FlaskClient = world["client"]
    assert_escaped(text(anyone.get(link)), "preferences")

    # Public pages and feeds: HTML escaped, XML escaped.
    for page in ("/public-alerts", f"/public-alerts/{alert_id}"):
        response = anyone.get(page)
        assert response.status_code == 200, page
        assert_escaped(text(response), page)
    for feed in ("/feeds/alerts.atom", f"/feeds/alerts/{alert_id}.cap.xml"):
        response = anyone.get(feed)
        assert response.status_code == 200 and "xml" in response.mimetype, feed
        assert_escaped(text(response), feed)

    # The API returns the text as data (JSON), unchanged: escaping is the page's job.
    view = anyone.get(f"{API}/alerts/{alert_id}", headers=world["web"].token("boss")).get_json()
    assert view["title"] == f"Nitazenes {SCRIPT}"


def test_markup_typed_into_forms_comes_back_escaped(world: dict[str, Any]) -> None:
    web: Web = world["web"]
    reporter = web.browser("outreach", Role.reporter)
    refused = post_form(reporter, "/reports/new/near_miss", {**NEAR_MISS, "notes": SCRIPT})
    assert refused.status_code == 422
    html = text(refused)
    assert "HTML or script tags" in error_beside(html, "notes")
    assert_escaped(html, "the near miss form")
    assert FormPage(html).values["notes"] == SCRIPT  # what was typed is kept, as text

    boss: FlaskClient = world["boss"]
    named = post_form(boss, f"/services/{world['service']}/contacts/new", {"name": f"Zed {SCRIPT}"})
    assert named.status_code == 422  # no address given: the form comes back
    assert_escaped(text(named), "the new contact form")


# --- photos -----------------------------------------------------------------------------------


def _mpo() -> bytes:
    out = BytesIO()
    frames = [Image.new("RGB", (120, 80), (200, 30, 30)), Image.new("RGB", (120, 80), (0, 0, 0))]
    frames[0].save(out, format="MPO", save_all=True, append_images=frames[1:])
    return out.getvalue()


def test_the_first_bytes_say_what_a_refused_file_is() -> None:
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"
    assert looks_like(heic) == HEIC_HINT
    assert looks_like(b"GIF89a\x01\x00") == "a GIF image"
    assert looks_like(b"%PDF-1.7\n") == "a PDF document"
    assert looks_like(b'\xef\xbb\xbf <svg xmlns="http://www.w3.org/2000/svg">') == (
        "a web page or SVG drawing, not a photo"
    )
    assert looks_like(b"just text") is None


@pytest.mark.parametrize(
    ("content", "filename", "words"),
    [
        (
            b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 200,
            "IMG_0001.HEIC",
            "Most Compatible",
        ),
        (f'<svg xmlns="http://www.w3.org/2000/svg">{SCRIPT}</svg>'.encode(), "pill.svg", "SVG"),
        (b"<html><body>" + SCRIPT.encode() + b"</body></html>", "pill.jpg", "web page"),
        (b"%PDF-1.4\n" + b"0" * 500, "scan.pdf", "a PDF document"),
        (b"\xff" * (6 * 1024 * 1024), "huge.jpg", "5 MB or smaller; this one is 6.0 MB"),
    ],
)
def test_uploads_that_are_not_usable_photos_are_refused_saying_why(
    world: dict[str, Any], container: Container, content: bytes, filename: str, words: str
) -> None:
    web: Web = world["web"]
    before = count(container)
    lab = web.browser(f"lab{len(content)}", Role.reporter)
    response = post_form(
        lab,
        "/reports/new/drug_checking",
        {**DRUG_CHECK, "photo": (BytesIO(content), filename, "image/jpeg")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    html = text(response)
    message = error_beside(html, "photo")
    assert words in message, message
    assert "5 MB" in words or "JPEG, PNG or WebP" in message
    assert "Choose the photo again" in html  # a file is never kept between tries
    assert_escaped(html, filename, shown=False)
    assert count(container) == before


def test_a_multi_picture_jpeg_from_a_phone_is_accepted(world: dict[str, Any]) -> None:
    web: Web = world["web"]
    lab = web.browser("lab", Role.reporter)
    response = post_form(
        lab,
        "/reports/new/drug_checking",
        {**DRUG_CHECK, "photo": (BytesIO(_mpo()), "DSCF0001.JPG", "image/jpeg")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302, text(response)
    served = lab.get(response.headers["Location"] + "/photo")
    assert served.headers["Content-Type"] == "image/jpeg"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    image = Image.open(BytesIO(served.data))
    assert image.format == "JPEG" and image.size == (120, 80)
    assert image.getpixel((60, 40))[0] > 150  # the first picture, not the second
    assert re.fullmatch(r"/reports/\d+", response.headers["Location"])
