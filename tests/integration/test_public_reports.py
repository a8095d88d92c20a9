"""The public report form, end to end against PostgreSQL and Redis: anonymous reports enter
the panel's queue as public and unverified, feed the signals (one public signal per area
and day, corroborating live ones), refuse personal data, keep no address, and a flood from
one address is throttled without blocking anyone else or opening more than one signal."""

from __future__ import annotations

import time

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from ldis.bootstrap import Container
from ldis.domain.roles import Role
from ldis.store.models import AuditEvent, Report, Signal, SignalReport
from tests.integration.conftest import People
from tests.integration.public_doors import Browser, app_with, areas, every_stored_value
from tests.integration.webpages import Web, csrf

pytestmark = pytest.mark.integration

STORY = "Two of us passed out fast, one needed naloxone twice. Think it had metonitazene in."


@pytest.fixture
def leeds(container: Container) -> dict[str, int]:
    return areas(container, ("LEEDS-C", "Leeds centre"), ("YORK", "York"))


@pytest.fixture
def app(container: Container) -> Flask:
    # Forms may be sent at once in tests; the age check itself is tested with a real wait.
    return app_with(container, public_form_min_seconds=0, public_report_rate="1000/hour")


def _reports(container: Container) -> list[Report]:
    with container.db.transaction() as session:
        rows = list(session.scalars(select(Report).order_by(Report.id)))
        session.expunge_all()
        return rows


def _signals(container: Container) -> list[tuple[Signal, list[int]]]:
    with container.db.transaction() as session:
        out = []
        for signal in session.scalars(select(Signal).order_by(Signal.id)):
            linked = list(
                session.scalars(
                    select(SignalReport.report_id).where(SignalReport.signal_id == signal.id)
                )
            )
            out.append((signal, sorted(linked)))
        session.expunge_all()
        return out


def test_a_web_report_reaches_the_panel_queue_and_the_signals(
    container: Container, app: Flask, client: FlaskClient, people: People, leeds: dict[str, int]
) -> None:
    browser = Browser(app)
    form = browser.open_form()
    page = browser.client.get("/report").get_data(as_text=True)
    for label in ("Roughly where?", "When did it happen?", "What was it sold as?", "Colour"):
        assert label in page
    assert "<script" not in page

    answer = browser.send(
        form,
        area="LEEDS-C",
        when="today",
        sold_as="oxy",
        colour="green",
        shape="round pill",
        markings="OC 80",
        packaging="small blue bag",
        effects=["passed_out", "naloxone"],
        what_happened=STORY,
    )
    assert answer.status_code == 302, answer.get_data(as_text=True)
    assert answer.headers["Location"].endswith("/report/thanks")
    thanks = browser.client.get("/report/thanks").get_data(as_text=True)
    assert "Thank you" in thanks and "naloxone" in thanks

    (report,) = _reports(container)
    assert (report.kind, report.origin, report.verified) == ("public", "public_web", False)
    assert report.reporter_id is None
    assert report.area_id == leeds["LEEDS-C"]
    assert report.data["appearance"]["packaging"] == "small blue bag"
    assert report.data["suspected_substances"] == ["metonitazene"]
    assert report.data["source"] == {
        "type": "public_web",
        "name": None,
        "reference": report.data["source"]["reference"],
    }

    # The panel sees it, marked public and unverified, on the API and the queue.
    panel = people.headers("panelist", Role.panel)
    view = client.get(f"/api/v1/reports/{report.id}", headers=panel).get_json()
    assert (view["origin"], view["verified"], view["kind"]) == ("public_web", False, "public")
    listed = client.get("/api/v1/reports", headers=panel).get_json()["reports"]
    assert [r["id"] for r in listed] == [report.id]
    public = client.get("/api/v1/reports?kind=public", headers=panel).get_json()["reports"]
    assert [r["id"] for r in public] == [report.id]
    assert client.get("/api/v1/reports?kind=near_miss", headers=panel).get_json()["reports"] == []

    ((signal, linked),) = _signals(container)
    assert (signal.kind, signal.status, signal.severity) == ("public", "open", "amber")
    assert linked == [report.id]
    assert "1 public report (unverified) in LEEDS-C" in signal.summary
    assert "metonitazene" in signal.summary  # the red-list hit, folded into the public case
    queue = client.get("/api/v1/signals?status=open", headers=panel).get_json()
    assert [(s["kind"], s["report_ids"]) for s in queue] == [("public", [report.id])]


def test_public_reports_join_one_signal_per_area_and_day_and_corroborate_live_ones(
    container: Container, app: Flask, client: FlaskClient, people: People, leeds: dict[str, int]
) -> None:
    browser = Browser(app)
    for _ in range(3):
        form = browser.open_form()
        answer = browser.send(
            form, area="LEEDS-C", when="today", what_happened="much stronger than usual"
        )
        assert answer.status_code == 302
    other = browser.send(browser.open_form(), area="YORK", when="yesterday", sold_as="ket")
    assert other.status_code == 302
    signals = _signals(container)
    assert sorted((s.kind, s.area_id, len(r)) for s, r in signals) == [
        ("public", leeds["LEEDS-C"], 3),
        ("public", leeds["YORK"], 1),
    ]

    # A staff near miss raises the red-list signal; a public report naming the same
    # substance joins it as well as the public case (never opening one of its own).
    reporter = people.headers("reporter", Role.reporter)
    filed = client.post(
        "/api/v1/reports",
        headers=reporter,
        json={
            "kind": "near_miss",
            "area": "LEEDS-C",
            "occurred_at": "2026-11-01T22:00:00Z",
            "suspected_substances": ["metonitazene"],
            "source": {"type": "outreach"},
        },
    )
    assert filed.status_code == 201, filed.get_json()
    answer = browser.send(browser.open_form(), area="LEEDS-C", when="today", what_happened=STORY)
    assert answer.status_code == 302
    public_id = _reports(container)[-1].id
    by_kind = {s.kind: r for s, r in _signals(container) if public_id in r}
    assert set(by_kind) == {"public", "red_list"}
    assert len(_signals(container)) == 3


def test_personal_data_in_any_text_is_refused_and_nothing_is_stored(
    container: Container, app: Flask, leeds: dict[str, int]
) -> None:
    browser = Browser(app)
    form = browser.open_form()
    cases = {
        "what_happened": "My mate Mr John Smith went over, ring me on 07700 900123",
        "markings": "call 07700 900456",
        "sold_as": "from dave@example.org",
    }
    for field, value in cases.items():
        answer = browser.send(form, area="LEEDS-C", when="today", **{field: value})
        assert answer.status_code == 400, field
        page = answer.get_data(as_text=True)
        assert "Please check your answers" in page
        assert "Please remove" in page, page
        # What they typed is kept on the page to fix (only on their own screen).
        assert value.split()[0] in page
    assert _reports(container) == []
    # The form token was not used up by refused attempts: fixing it and sending works.
    fixed = browser.send(form, area="LEEDS-C", when="today", what_happened="went over fast")
    assert fixed.status_code == 302
    assert len(_reports(container)) == 1


def test_honeypot_token_age_reuse_and_forgery(container: Container, leeds: dict[str, int]) -> None:
    app = app_with(container, public_form_min_seconds=2, public_report_rate="1000/hour")
    browser = Browser(app)
    form = browser.open_form()
    fields = {"area": "LEEDS-C", "when": "today", "what_happened": "much stronger"}

    too_fast = browser.send(form, **fields)
    assert too_fast.status_code == 400
    assert "check your answers, then send the form again" in too_fast.get_data(as_text=True)

    time.sleep(2.1)
    robot = browser.send(form, website="http://spam.example", **fields)
    assert robot.status_code == 302, "a robot is shown the thank-you page..."
    assert _reports(container) == [], "...and nothing is kept"

    forged = browser.send({**form, "token": form["token"][:-4] + "AAAA"}, **fields)
    assert forged.status_code == 400
    assert "Something went wrong with this page" in forged.get_data(as_text=True)

    assert browser.send(form, **fields).status_code == 302
    again = browser.send(form, **fields)  # the back button and send again
    assert again.status_code == 302
    assert len(_reports(container)) == 1, "one form, one report"

    no_csrf = browser.client.post(
        "/report",
        data={"token": browser.fresh_token(), **fields},
        environ_base={"REMOTE_ADDR": browser.address},
    )
    assert no_csrf.status_code == 400
    assert len(_reports(container)) == 1


def test_a_flood_from_one_address_is_throttled_without_blocking_others(
    container: Container, leeds: dict[str, int]
) -> None:
    app = app_with(container, public_form_min_seconds=0, public_report_rate="5/hour")
    spammer = Browser(app)
    form = spammer.open_form()
    outcomes: dict[int, int] = {}
    for n in range(1000):
        answer = spammer.send(
            {**form, "token": spammer.fresh_token()},
            area="LEEDS-C",
            when="today",
            what_happened=f"junk {n} fentanyl heroin xylazine metonitazene",
        )
        outcomes[answer.status_code] = outcomes.get(answer.status_code, 0) + 1
    assert outcomes == {302: 5, 429: 995}
    assert len(_reports(container)) == 5

    neighbour = Browser(app)
    answer = neighbour.send(neighbour.open_form(), area="YORK", when="today", sold_as="ket")
    assert answer.status_code == 302, "another address is not blocked"
    assert len(_reports(container)) == 6
    # Five junk reports naming four red-list substances: one public case for the area,
    # and no red-list signals of their own (the neighbour's report is another area's case).
    kinds = [(s.kind, s.area_id, len(r)) for s, r in _signals(container)]
    assert sorted(kinds) == [("public", leeds["LEEDS-C"], 5), ("public", leeds["YORK"], 1)]


def test_no_address_is_stored_with_a_public_report(
    container: Container, app: Flask, leeds: dict[str, int]
) -> None:
    browser = Browser(app, address="10.123.45.67")
    answer = browser.send(
        browser.open_form(), area="LEEDS-C", when="today", what_happened="much stronger"
    )
    assert answer.status_code == 302
    stored = every_stored_value(container)
    assert "public" in stored  # the scan sees the report...
    assert "10.123.45.67" not in stored  # ...and no address anywhere
    assert "127.0.0.1" not in stored
    with container.db.transaction() as session:
        details = [e.detail for e in session.scalars(select(AuditEvent))]
        assert session.scalar(select(func.count()).select_from(Report)) == 1
    assert any(d.get("origin") == "public_web" for d in details)


def test_the_panel_marks_a_public_report_verified(
    container: Container, app: Flask, client: FlaskClient, people: People, leeds: dict[str, int]
) -> None:
    browser = Browser(app)
    assert (
        browser.send(browser.open_form(), area="YORK", when="today", sold_as="ket").status_code
        == 302
    )
    (report,) = _reports(container)
    panel = people.headers("panelist", Role.panel)
    reporter = people.headers("reporter", Role.reporter)
    path = f"/api/v1/reports/{report.id}/verification"

    assert client.post(path, json={"verified": True}, headers=reporter).status_code == 403
    bad = client.post(path, json={"verified": "yes"}, headers=panel)
    assert bad.status_code == 422 and "verified" in bad.get_json()["fields"]
    done = client.post(path, json={"verified": True}, headers=panel)
    assert done.status_code == 200 and done.get_json()["verified"] is True
    assert _reports(container)[0].verified is True
    events = [e.action for e in _audit(container)]
    assert "public_report.verified" in events

    staff = client.post(
        "/api/v1/reports",
        headers=reporter,
        json={
            "kind": "near_miss",
            "area": "YORK",
            "occurred_at": "2026-11-01T22:00:00Z",
            "source": {"type": "outreach"},
        },
    ).get_json()
    refused = client.post(
        f"/api/v1/reports/{staff['id']}/verification", json={"verified": False}, headers=panel
    )
    assert refused.status_code == 409


def _audit(container: Container) -> list[AuditEvent]:
    with container.db.transaction() as session:
        rows = list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))
        session.expunge_all()
        return rows


def test_the_report_page_shows_public_and_offers_verification(
    container: Container, app: Flask, leeds: dict[str, int]
) -> None:
    browser = Browser(app)
    assert browser.send(browser.open_form(), area="YORK", when="today").status_code == 400
    form = browser.open_form()
    assert browser.send(form, area="YORK", when="today", sold_as="ket").status_code == 302
    (report,) = _reports(container)
    web = Web(app, container)
    panel = web.browser("panelist", Role.panel)
    listing = panel.get("/reports").get_data(as_text=True)
    assert "Public, unverified" in listing
    page = panel.get(f"/reports/{report.id}")
    assert "Mark as verified" in page.get_data(as_text=True)
    marked = panel.post(
        f"/reports/{report.id}/verification",
        data={"csrf_token": csrf(page), "verified": "true"},
    )
    assert marked.status_code == 302
    again = panel.get(f"/reports/{report.id}").get_data(as_text=True)
    assert "Public, verified" in again and "Marked as verified." in again
    ((signal, _),) = _signals(container)
    queue = panel.get("/signals").get_data(as_text=True)
    assert "Public reports (unverified)" in queue
    shown = panel.get(f"/signals/{signal.id}")
    assert shown.status_code == 200
    assert "1 public report (unverified) in YORK" in shown.get_data(as_text=True)


def test_recompute_does_not_open_rule_signals_for_public_reports(
    container: Container, app: Flask, leeds: dict[str, int]
) -> None:
    from ldis.services.recompute import recompute_rules

    browser = Browser(app)
    answer = browser.send(browser.open_form(), area="YORK", when="today", what_happened=STORY)
    assert answer.status_code == 302
    before = [(s.kind, r) for s, r in _signals(container)]
    assert [kind for kind, _ in before] == ["public"]
    assert recompute_rules(container.db) == 0
    assert [(s.kind, r) for s, r in _signals(container)] == before
