"""The panel's alert pages through Flask's test client against PostgreSQL with CSRF on: the
draft form with its errors beside the fields and a preview of every channel (SMS segments,
UCS-2 and the over-3-segments warning), the alert page with its exact messages, audience,
approvals and actions, the two-person rule and the stale-revision guard, revisions marked
UPDATE, withdrawal, the history, and an exercise's report with who acknowledged."""

from __future__ import annotations

import re
import subprocess
from html import unescape
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from ldis.bootstrap import Container
from ldis.domain.roles import Role
from ldis.store.models import Alert, Delivery
from tests.integration.cases import decided_report_via
from tests.integration.conftest import People, wait_for
from tests.integration.webpages import (
    AREA,
    Web,
    count,
    csrf,
    error_beside,
    make_web,
    summary_links,
    text,
)

pytestmark = pytest.mark.integration

SUMMARY = "Green tablets marked OC 80, sold as oxycodone, contain metonitazene."
ADVICE = "Carry extra naloxone; more than one dose may be needed."


class Panel:
    """Three panel members, each in their own browser, and a decided case to alert on."""

    def __init__(self, web: Web, client: FlaskClient, admin: dict[str, str]) -> None:
        self.web, self.admin = web, admin
        self.drafter = web.browser("dana", Role.panel)
        self.first = web.browser("ali", Role.panel)
        self.second = web.browser("bea", Role.panel)
        self.service = _service(client, admin, "York NSP", "duty")
        self.report_id = decided_report_via(client, web.token("dana"), AREA)


def _service(client: FlaskClient, admin: dict[str, str], name: str, who: str) -> int:
    response = client.post(
        "/api/v1/services",
        json={"name": name, "type": "needle_syringe_programme", "areas": [AREA]},
        headers=admin,
    )
    assert response.status_code == 201, response.get_json()
    service_id = int(response.get_json()["id"])
    response = client.post(
        f"/api/v1/services/{service_id}/contacts",
        json={
            "name": f"{who.title()} worker",
            "email": f"{who}@example.org",
            "phone": "07700 900123",
            "channels": ["sms", "email"],
            "verified": True,
        },
        headers=admin,
    )
    assert response.status_code == 201, response.get_json()
    return service_id


@pytest.fixture
def web(app: Flask, container: Container, client: FlaskClient, people: People) -> Web:
    return make_web(app, container, client, people)


@pytest.fixture
def panel(web: Web, client: FlaskClient, people: People) -> Panel:
    return Panel(web, client, people.headers("admin", Role.admin))


def draft(report_id: int | None, **changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "title": "Nitazenes in fake oxycodone",
        "template": "professional",
        "level": "professional",
        "kind": "drug_alert",
        "priority": "urgent",
        "areas": [AREA],
        "summary": SUMMARY,
        "advice": ADVICE,
        "review_by": "",
        "expires_at": "",
        "action": "save",
    }
    if report_id is not None:
        fields["report_id"] = str(report_id)
    return {**fields, **changes}


def post(client: FlaskClient, path: str, page: str, fields: dict[str, Any]) -> Any:
    """Post a form with the CSRF token read from `page` (the page the form is on)."""
    return client.post(path, data={"csrf_token": csrf(client.get(page)), **fields})


def save_draft(client: FlaskClient, report_id: int | None, **changes: Any) -> int:
    response = post(client, "/alerts/new", "/alerts/new", draft(report_id, **changes))
    assert response.status_code == 302, text(response)
    match = re.fullmatch(r"/alerts/(\d+)", response.headers["Location"])
    assert match, response.headers["Location"]
    return int(match.group(1))


def act(client: FlaskClient, alert_id: int, action: str, **fields: Any) -> str:
    """Post one of the alert page's actions and follow the redirect back to it."""
    page = f"/alerts/{alert_id}"
    response = post(client, f"{page}/{action}", page, fields)
    assert response.status_code == 302 and response.headers["Location"].startswith(page)
    return text(client.get(response.headers["Location"]))


def revision_shown(html: str) -> str:
    match = re.search(r'name="revision" value="(\d+)"', html)
    assert match, "no approve form on the page"
    return match.group(1)


def approve(client: FlaskClient, alert_id: int) -> str:
    html = text(client.get(f"/alerts/{alert_id}"))
    return act(client, alert_id, "approve", revision=revision_shown(html))


def sent_alert(panel: Panel, **changes: Any) -> int:
    alert_id = save_draft(panel.drafter, panel.report_id, **changes)
    act(panel.drafter, alert_id, "submit")
    approve(panel.first, alert_id)
    assert "Approved and sent" in approve(panel.second, alert_id)
    return alert_id


def segments(html: str) -> int:
    match = re.search(r'<th scope="row">Segments</th><td>(\d+) segments?</td>', html)
    assert match, "no segment count on the page"
    return int(match.group(1))


def cell(html: str, heading: str) -> str:
    match = re.search(rf'<th scope="row">{re.escape(heading)}</th><td[^>]*>(.*?)</td>', html, re.S)
    assert match, f"no row {heading!r}"
    return " ".join(unescape(re.sub(r"<[^>]+>", "", match.group(1))).split())


def test_who_may_use_the_alert_pages(web: Web, panel: Panel) -> None:
    reporter = web.browser("rita", Role.reporter)
    assert reporter.get("/alerts").status_code == 403
    assert reporter.get("/alerts/new").status_code == 403
    admin = web.browser("ada", Role.admin)
    assert admin.get("/alerts").status_code == 200
    assert admin.get("/alerts/new").status_code == 403, "admins read alerts; the panel drafts"

    page = panel.drafter.get("/alerts")
    html = text(page)
    assert page.status_code == 200 and 'href="/alerts">Alerts</a>' in html
    assert "No alert is live at the moment." in html
    pending = text(panel.drafter.get("/alerts?show=pending"))
    assert "No alert is being drafted or waiting for approval." in pending

    alert_id = save_draft(panel.drafter, panel.report_id)
    listed = text(panel.drafter.get("/alerts?show=pending"))
    assert f'href="/alerts/{alert_id}">Nitazenes in fake oxycodone</a>' in listed
    assert "Urgent" in listed and "Not yet submitted" in listed and AREA in listed
    assert f"/alerts/{alert_id}" not in text(panel.drafter.get("/alerts?show=active"))
    # Admins read the alert but are offered nothing to do.
    seen = text(admin.get(f"/alerts/{alert_id}"))
    assert "Nitazenes in fake oxycodone" in seen and "/submit" not in seen
    assert (
        admin.post(
            f"/alerts/{alert_id}/submit",
            data={"csrf_token": csrf(admin.get(f"/alerts/{alert_id}"))},
        ).status_code
        == 403
    )


def test_the_case_page_link_prefills_the_case_and_its_area(panel: Panel) -> None:
    html = text(panel.drafter.get(f"/alerts/new?report_id={panel.report_id}"))
    assert f'href="/panel/reports/{panel.report_id}"' in html
    assert "The panel's decision: Issue a formal alert, by dana" in html
    assert f'name="report_id" type="hidden" value="{panel.report_id}"' in html
    assert re.search(rf'<option selected value="{AREA}">|<option value="{AREA}" selected>', html)
    assert "Europe/London" in html, "the form says which time zone the dates are in"


def test_draft_form_errors_name_the_fields(panel: Panel, container: Container) -> None:
    page = "/alerts/new"
    empty = draft(panel.report_id, title=" ", areas=[], summary="", advice="")
    response = post(panel.drafter, page, page, empty)
    html = text(response)
    assert response.status_code == 422
    assert error_beside(html, "title") == "Enter title"
    assert error_beside(html, "areas") == "Select at least one area"
    assert error_beside(html, "summary") == "Enter summary: what was found"
    assert error_beside(html, "advice") == "Enter advice"
    assert summary_links(html) == ["title", "areas", "summary", "advice"]

    past = draft(panel.report_id, expires_at="2020-01-01T09:00", areas=["NOWHERE"])
    html = text(post(panel.drafter, page, page, past))
    assert error_beside(html, "expires_at") == "Expiry must be in the future"
    assert error_beside(html, "areas").startswith("Unknown area code 'NOWHERE'")

    lonely = draft(None, exercise="y")
    html = text(post(panel.drafter, page, page, lonely))
    assert error_beside(html, "participants") == "Select the services taking part"
    assert "Nitazenes in fake oxycodone" in html, "what was typed is kept"
    assert count(container, Alert) == 0


def test_the_preview_counts_segments_and_warns(panel: Panel, container: Container) -> None:
    page = "/alerts/new"
    plain = text(post(panel.drafter, page, page, draft(panel.report_id, action="preview")))
    assert "Nitazenes in fake oxycodone" in plain and SUMMARY in plain
    assert cell(plain, "Encoding") == "GSM-7"
    base = segments(plain)
    assert "Warning: more than 3 segments" not in plain
    # The audience of the unsaved values is shown too.
    assert cell(plain, "Services reached") == "1"

    curly = draft(
        panel.report_id, action="preview", summary=SUMMARY.replace("sold", "\u2018sold\u2019")
    )
    html = text(post(panel.drafter, page, page, curly))
    assert cell(html, "Encoding").startswith("UCS-2")
    assert "U+2018" in html and "U+2019" in html
    assert segments(html) > base

    long = draft(panel.report_id, action="preview", summary="Green tablets. " * 40)
    html = text(post(panel.drafter, page, page, long))
    assert segments(html) > 3
    assert "Warning: more than 3 segments" in html
    assert count(container, Alert) == 0, "a preview saves nothing"


def test_a_saved_draft_shows_its_messages_and_audience(panel: Panel, client: FlaskClient) -> None:
    alert_id = save_draft(panel.drafter, panel.report_id, expires_at="2030-07-01T12:00")
    html = text(panel.drafter.get(f"/alerts/{alert_id}"))
    assert f"Draft saved as alert LDIS-{alert_id}" in html
    assert cell(html, "Status").startswith("Draft")
    sms = re.search(r'<pre class="message-sms">(.*?)</pre>', html, re.S)
    assert sms and "LDIS ALERT (URGENT): Nitazenes in fake oxycodone" in unescape(sms.group(1))
    assert f"Ref LDIS-{alert_id}-v1" in unescape(sms.group(1))
    assert cell(html, "Services") == "1" and cell(html, "Contacts") == "1"
    assert cell(html, "Messages") == "2 (E-mail: 1, SMS: 1)"
    # UK summer time: 12:00 in London is 11:00 UTC.
    assert cell(html, "Expires (UK time)") == "1 Jul 2030, 12:00"
    view = client.get(f"/api/v1/alerts/{alert_id}", headers=panel.web.token("dana")).get_json()
    assert view["expires_at"].startswith("2030-07-01T11:00:00")

    src = f"/alerts/{alert_id}/versions/1/email.html"
    assert f'<iframe sandbox src="{src}"' in html
    email = panel.drafter.get(src)
    assert email.status_code == 200 and email.mimetype == "text/html"
    assert (
        email.headers["Content-Security-Policy"] == "default-src 'none'; style-src 'unsafe-inline'"
    )
    assert email.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert "Nitazenes in fake oxycodone" in text(email) and "<script" not in text(email)
    assert panel.drafter.get(f"/alerts/{alert_id}/versions/9/email.html").status_code == 404


def test_two_other_members_approve_and_the_drafter_cannot(
    panel: Panel, container: Container
) -> None:
    alert_id = save_draft(panel.drafter, panel.report_id)
    html = act(panel.drafter, alert_id, "submit")
    assert "Submitted for approval: it now needs 2 approvals" in html
    assert cell(html, "Status") == "Awaiting approval"

    assert f"/alerts/{alert_id}/approve" not in html, "no approve button for the drafter"
    assert "You cannot approve this version because you wrote or edited it" in html
    refused = act(panel.drafter, alert_id, "approve", revision="1")
    assert "You wrote or edited this alert, so you cannot approve it." in refused
    assert "<strong>0 of 2</strong>" in refused

    assert "Your approval is recorded: 1 of 2." in approve(panel.first, alert_id)
    again = act(panel.first, alert_id, "approve", revision="1")
    assert "You have already approved this version of the alert." in again
    assert "<strong>1 of 2</strong> approvals for version 1, from ali." in again

    done = approve(panel.second, alert_id)
    assert "Approved: the alert is being sent (2 messages queued)." in done
    assert cell(done, "Status") == "Approved and sent Live"
    assert "Approved by ali, bea." in done
    assert cell(done, "All messages") == "2"
    with container.db.transaction() as session:
        rows = session.scalars(select(Delivery).where(Delivery.alert_id == alert_id)).all()
        assert sorted(d.channel for d in rows) == ["email", "sms"]
    took = cell(done, "Panel decision to approval")
    assert re.fullmatch(r"\d+ (second|minute)s?( \d+ seconds?)?", took), took
    listed = text(panel.first.get("/alerts?show=active"))
    assert f'href="/alerts/{alert_id}"' in listed

    history = text(panel.first.get(f"/alerts/{alert_id}/history"))
    rows = re.findall(r"<tr>\s*<td>[^<]*</td>\s*<td>([^<]*)</td>\s*<td>([^<]*)</td>", history)
    assert ("dana", "Drafted") in rows and ("dana", "Submitted for approval") in rows
    assert ("ali", "Approval given") in rows and ("bea", "Approval given") in rows
    assert ("bea", "Sent") in rows
    assert "Messages queued: 2" in history


def test_an_approval_of_words_changed_since_is_refused(panel: Panel) -> None:
    alert_id = save_draft(panel.drafter, panel.report_id)
    act(panel.drafter, alert_id, "submit")
    approve(panel.second, alert_id)
    read = revision_shown(text(panel.first.get(f"/alerts/{alert_id}")))

    edit = f"/alerts/{alert_id}/edit"
    form = text(panel.drafter.get(edit))
    assert "Saving voids the 1 approval given so far." in form
    assert 'value="Nitazenes in fake oxycodone"' in form and SUMMARY in form
    changed = draft(panel.report_id, summary="Now also seen as blue tablets.")
    saved = post(panel.drafter, edit, edit, changed)
    assert saved.status_code == 302
    html = text(panel.drafter.get(saved.headers["Location"]))
    assert "Your changes were saved." in html and "Now also seen as blue tablets." in html
    assert "<strong>0 of 2</strong>" in html, "the edit voided the approval"

    stale = act(panel.first, alert_id, "approve", revision=read)
    assert "The alert was changed after you viewed it; read it again before approving." in stale
    assert "<strong>0 of 2</strong>" in stale
    history = text(panel.first.get(f"/alerts/{alert_id}/history"))
    assert f"fields.summary: {SUMMARY} -&gt; Now also seen as blue tablets." in history
    assert "Approvals made void: 1" in history


def test_a_revision_of_a_live_alert_is_marked_update(panel: Panel) -> None:
    alert_id = sent_alert(panel)
    page = text(panel.drafter.get(f"/alerts/{alert_id}"))
    assert "Write an update" in page
    revise = f"/alerts/{alert_id}/revise"
    form = text(panel.drafter.get(revise))
    assert (
        "marked <strong>UPDATE</strong>" in form and 'value="Nitazenes in fake oxycodone"' in form
    )

    missing = draft(panel.report_id, template="update")
    html = text(post(panel.drafter, revise, revise, missing))
    assert error_beside(html, "what_changed") == (
        "Enter what has changed: the chosen template needs it"
    )
    shown = draft(panel.report_id, template="update", what_changed="Blue.", action="preview")
    preview = text(post(panel.drafter, revise, revise, shown))
    assert f"UPDATE to LDIS-{alert_id}-v1: Nitazenes" in unescape(preview)
    assert f"Ref LDIS-{alert_id}-v2." in unescape(preview)
    update = draft(panel.report_id, what_changed="Blue tablets too.")
    saved = post(panel.drafter, revise, revise, update)
    assert saved.status_code == 302
    html = text(panel.drafter.get(saved.headers["Location"]))
    assert "Version 2 saved as an UPDATE." in html
    assert cell(html, "Version").startswith("Version 2: UPDATE")
    assert "Services have version 1; version 2 is draft." in html
    sms = re.search(r'<pre class="message-sms">(.*?)</pre>', html, re.S)
    assert sms and unescape(sms.group(1)).startswith("UPDATE LDIS ALERT")
    assert "Changed: Blue tablets too." in unescape(sms.group(1))

    act(panel.drafter, alert_id, "submit")
    approve(panel.first, alert_id)
    done = approve(panel.second, alert_id)
    assert cell(done, "Status") == "Approved and sent Live"
    assert "version 2 (shown)" in done


def test_withdrawal_is_asked_for_then_approved_by_two_others(panel: Panel) -> None:
    alert_id = sent_alert(panel)
    page = f"/alerts/{alert_id}"
    empty = post(panel.drafter, f"{page}/withdraw", page, {"withdraw_reason": " "})
    assert empty.status_code == 422
    assert error_beside(text(empty), "withdraw_reason") == "Enter why the alert is withdrawn"

    html = act(panel.drafter, alert_id, "withdraw", withdraw_reason="Lab result was wrong.")
    assert "Withdrawal requested" in html
    assert cell(html, "Status") == "Withdrawal awaiting approval Live"
    assert cell(html, "Version").startswith("Version 2: WITHDRAWAL")
    assert "Lab result was wrong." in html, "the withdrawal notice is shown before approval"
    assert f"{page}/approve" not in html and "you asked for the withdrawal" in html

    approve(panel.first, alert_id)
    done = approve(panel.second, alert_id)
    assert "Approved: the alert is withdrawn" in done
    assert cell(done, "Status") == "Withdrawn"
    assert f'href="{page}"' in text(panel.first.get("/alerts?show=ended"))
    assert "Nothing can be changed in this alert now." in done


def test_an_exercise_is_marked_everywhere_and_reports_acknowledgements(
    panel: Panel,
    client: FlaskClient,
    container: Container,
    worker: subprocess.Popen[str],
) -> None:
    service = _service(client, panel.admin, "Exercise hostel", "night")
    alert_id = save_draft(
        panel.drafter, None, title="Tabletop exercise", exercise="y", participants=[str(service)]
    )
    act(panel.drafter, alert_id, "submit")
    approve(panel.first, alert_id)
    html = approve(panel.second, alert_id)
    assert 'id="exercise-banner"' in html
    assert cell(html, "Services taking part") == "Exercise hostel"
    assert cell(html, "Contacts") == "1", "only the participating service is reached"
    sms = re.search(r'<pre class="message-sms">(.*?)</pre>', html, re.S)
    plain = re.search(r'<pre class="message-email-text">(.*?)</pre>', html, re.S)
    assert sms and sms.group(1).startswith("EXERCISE EXERCISE EXERCISE")
    assert plain and plain.group(1).startswith("EXERCISE EXERCISE EXERCISE")
    assert cell(html, "Subject").startswith("EXERCISE EXERCISE EXERCISE:")
    email = text(panel.drafter.get(f"/alerts/{alert_id}/versions/1/email.html"))
    assert "EXERCISE EXERCISE EXERCISE" in email and "EXERCISE ENDS" in email
    assert f'href="/alerts/{alert_id}"' in text(panel.drafter.get("/alerts?show=exercises"))

    def sent() -> list[Delivery]:
        with container.db.transaction() as session:
            rows = session.scalars(select(Delivery).where(Delivery.alert_id == alert_id)).all()
            return list(rows) if rows and all(d.sent_at for d in rows) else []

    deliveries = wait_for(sent, timeout=30)
    before = text(panel.drafter.get(f"/alerts/{alert_id}/exercise"))
    assert "<h1>Exercise report" in before and "Nobody has acknowledged this alert yet." in before
    sms_delivery = next(d for d in deliveries if d.channel == "sms")
    assert client.get(f"/ack/{container.links.ack_token(sms_delivery.id)}").status_code == 200

    report = text(panel.drafter.get(f"/alerts/{alert_id}/exercise"))
    row = re.search(r"<td>Exercise hostel</td>\s*<td>(.*?)</td>\s*<td>(.*?)</td>", report, re.S)
    assert row and row.groups() == ("Night worker", "SMS")
    assert "<strong>1 acknowledged</strong>" in report
    assert re.search(r"<td>\d+ (second|minute)s?( \d+ seconds?)?</td>", report)
    assert cell(report, "Approval to first message sent")


def test_a_real_alerts_report_is_called_timing(panel: Panel) -> None:
    alert_id = sent_alert(panel)
    html = text(panel.first.get(f"/alerts/{alert_id}/exercise"))
    assert "<h1>Timing and acknowledgements" in html and "exercise-banner" not in html
    assert cell(html, "First report received")


def test_a_rejected_alert_says_why_and_can_be_tried_again(panel: Panel) -> None:
    alert_id = save_draft(panel.drafter, panel.report_id)
    act(panel.drafter, alert_id, "submit")
    page = f"/alerts/{alert_id}"
    empty = post(panel.first, f"{page}/reject", page, {"reject_reason": ""})
    assert empty.status_code == 422
    assert error_beside(text(empty), "reject_reason") == "Enter why the alert is rejected"

    html = act(panel.first, alert_id, "reject", reject_reason="Say which tablets.")
    assert "Rejected. Start a new version to try again." in html
    assert cell(html, "Status") == "Rejected" and "Rejected: Say which tablets." in html
    edit = panel.drafter.get(f"{page}/edit")
    assert edit.status_code == 302
    refused = text(panel.drafter.get(edit.headers["Location"]))
    assert "This alert cannot be edited now: it is rejected." in refused

    assert "Start a new version" in refused
    again = post(panel.drafter, f"{page}/revise", f"{page}/revise", draft(panel.report_id))
    assert again.status_code == 302
    html = text(panel.drafter.get(again.headers["Location"]))
    assert "Version 2 saved as a new draft." in html
    assert cell(html, "Version").startswith("Version 2: First alert")
    assert cell(html, "Status").startswith("Draft")
