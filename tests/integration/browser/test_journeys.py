"""The main journeys in a real browser (Debian's Chromium driven by Playwright) against the
app served over HTTP, with PostgreSQL, Redis and a real Celery worker behind it: a lab
files a drug-checking result, a panel member sees the red-list signal, grades it, records
the decision, drafts and previews an alert, two other members approve it (each typing
their own two-factor code), the drafter watches delivery, and anyone reads the public page.
Each step is a screenshot in test-artifacts/browser/, and axe-core checks each page."""

from __future__ import annotations

import re
import subprocess

import pytest
from flask.testing import FlaskClient
from playwright.sync_api import Page, expect

from ldis.domain.roles import Role
from tests.integration.browser.conftest import Browsers, Visitor, axe_violations, describe
from tests.integration.cases import GRADE
from tests.integration.conftest import People
from tests.integration.webpages import AREA

pytestmark = pytest.mark.integration

TITLE = "Nitazenes in green tablets sold as oxycodone"


def _service_with_contact(client: FlaskClient, admin: dict[str, str]) -> None:
    response = client.post(
        "/api/v1/services",
        json={"name": "Selby outreach", "type": "outreach", "areas": [AREA]},
        headers=admin,
    )
    assert response.status_code == 201, response.get_json()
    response = client.post(
        f"/api/v1/services/{response.get_json()['id']}/contacts",
        json={
            "name": "Duty worker",
            "email": "duty@example.org",
            "phone": "07700 900123",
            "channels": ["sms", "email"],
            "verified": True,
        },
        headers=admin,
    )
    assert response.status_code == 201, response.get_json()


def accessible(page: Page, axe_source: str) -> None:
    violations = axe_violations(page, axe_source)
    assert not violations, f"{page.url}\n{describe(violations)}"


def file_drug_check(lab: Visitor) -> str:
    page = lab.go("/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="File a report").click()
    page.get_by_role("link", name="Drug checking result").click()
    page.get_by_label("Day the sample was obtained", exact=False).or_(
        page.locator("#sample_obtained_on")
    ).first.fill("2026-11-20")
    page.locator("#area").select_option(AREA)
    page.locator("#sold_as").fill("oxycodone 80 mg")
    page.locator("#sample_form").select_option("tablet")
    page.locator("#appearance_colour").fill("green")
    page.locator("#appearance_markings").fill("OC 80")
    page.locator("#result1-substance").fill("metonitazene")
    page.locator("#result1-method").select_option("lc-ms")
    page.locator("#source_type").select_option("drug_checking_service")
    page.locator("#source_name").fill("Yorkshire drug checking")
    lab.shot("drug check filled in")
    page.get_by_role("button", name="Send report").click()
    expect(page.get_by_role("heading", name="Report filed")).to_be_visible()
    reference = page.locator(".panel .ref")
    expect(reference).to_be_visible()
    lab.shot("report filed")
    return reference.inner_text().strip()


def grade_and_decide(member: Visitor) -> None:
    page = member.page
    page.get_by_role("link", name="Grade this signal and record the panel's decision").click()
    for name, value in GRADE.items():
        if name == "reasons":
            page.locator("#reasons").fill(str(value))
        else:
            page.locator(f"#{name}-{value}").check()
    page.get_by_role("button", name="Save my grade").click()
    expect(page.get_by_text("Your grade was saved.")).to_be_visible()
    member.shot("graded")
    page.locator("#decision-formal_alert").check()
    page.locator("#decision_reasons").fill("Lab-confirmed nitazene, sold locally; act now.")
    page.get_by_role("button", name="Record decision").click()
    expect(page.get_by_text("Current decision:")).to_be_visible()
    member.shot("decided")


def draft_and_preview(member: Visitor) -> str:
    page = member.page
    page.get_by_role("link", name="Draft an alert from this case").click()
    page.locator("#title").fill(TITLE)
    page.get_by_label("Public: short, for people who use drugs").check()
    page.get_by_label("Public (people who use drugs)").check()
    page.get_by_label("Urgent: sent at once, day or night").check()
    page.locator("#areas").select_option(AREA)
    page.locator("#summary").fill(
        "Green tablets marked OC 80, sold as oxycodone, contain a nitazene."
    )
    page.locator("#advice").fill("Carry naloxone. Do not use alone. Start with a small amount.")
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_text("OC 80").first).to_be_visible()
    member.shot("alert previewed")
    page.get_by_role("button", name="Save draft").click()
    expect(page).to_have_url(re.compile(r"/alerts/\d+$"))
    page.get_by_role("button", name="Submit for approval").click()
    expect(page.get_by_text("Awaiting approval").first).to_be_visible()
    member.shot("submitted")
    return page.url.removeprefix(member.base)


def approve(member: Visitor, browsers: Browsers, alert_path: str, done: int) -> None:
    page = member.go(alert_path)
    expect(page.locator("h1")).to_contain_text(TITLE)
    # The e-mail exactly as recipients will see it, in its sandboxed frame.
    frame = page.frame_locator('iframe[title="The e-mail as recipients will see it"]')
    expect(frame.get_by_text("marked OC 80").first).to_be_visible()
    code = page.locator("#approve_otp")
    if code.count():
        code.fill(browsers.code(member))
    page.get_by_role("button", name=re.compile(r"^Approve version")).click()
    expect(page.get_by_role("status")).to_contain_text(
        "Your approval is recorded: 1 of 2"
        if done == 1
        else "Approved: the alert is being sent (2 messages queued)."
    )
    member.shot("approved")


def test_report_to_public_alert_in_a_browser(
    browsers: Browsers,
    client: FlaskClient,
    people: People,
    worker: subprocess.Popen[str],
    axe_source: str,
) -> None:
    _service_with_contact(client, people.headers("admin", Role.admin))

    lab = browsers.person("lab", Role.reporter)
    reference = file_drug_check(lab)
    assert re.fullmatch(r"[A-Z0-9-]+", reference), reference
    accessible(lab.page, axe_source)

    dana = browsers.person("dana", Role.panel)
    page = dana.go("/signals")
    accessible(page, axe_source)
    dana.shot("signals")
    page.get_by_role("link", name=re.compile(r"red.list", re.I)).first.click()
    expect(page.get_by_text(reference)).to_be_visible()
    accessible(page, axe_source)
    dana.shot("signal")
    grade_and_decide(dana)
    accessible(page, axe_source)
    alert_path = draft_and_preview(dana)
    accessible(page, axe_source)

    for done, name in enumerate(("ali", "bea"), start=1):
        approve(browsers.person(name, Role.panel), browsers, alert_path, done)

    page = dana.go(alert_path)
    page.get_by_role("link", name=re.compile("^Delivery progress")).click()
    accessible(page, axe_source)

    totals: dict[str, str] = {}
    for _ in range(60):
        totals = _all_row(page)
        if totals["Waiting to send"] == "0" and totals["Total"] == "2":
            break
        page.wait_for_timeout(500)
        page.get_by_role("link", name="Refresh now").click()
    # One verified contact with SMS and e-mail: two messages, both handed over, none failed.
    assert totals["Total"] == "2" and totals["Waiting to send"] == "0", totals
    assert totals["Failed"] == "0" and int(totals["Sent"]) + int(totals["Delivered"]) == 2, totals
    dana.shot("delivery progress")

    public = browsers.window("public", phone=True)
    page = public.go("/public-alerts")
    expect(page.get_by_role("link", name=TITLE)).to_be_visible()
    accessible(page, axe_source)
    public.shot("public alerts on a phone")
    page.get_by_role("link", name=TITLE).click()
    expect(page.get_by_text("Carry naloxone").first).to_be_visible()
    assert "Duty worker" not in page.content()  # no professional detail, no audience
    public.shot("public alert")


def _all_row(page: Page) -> dict[str, str]:
    """The first version's "All" row of the progress table, by column heading."""
    table = page.locator("table").first
    headings = [h.strip() for h in table.locator("thead th").all_inner_texts()]
    cells = [c.strip() for c in table.locator("tbody tr").last.locator("th, td").all_inner_texts()]
    return dict(zip(headings, cells, strict=True))
