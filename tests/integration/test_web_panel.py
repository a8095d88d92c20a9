"""The panel's case page through Flask's test client against PostgreSQL with CSRF on: grades
side by side with the differences marked, your own grade filled in, errors beside the
fields, the decision (suggested RAG, no further action dismissing a signal, the link to draft
an alert), and who may see and do what."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from ldis.bootstrap import Container
from ldis.domain.roles import Role
from tests.integration.conftest import People
from tests.integration.webpages import (
    AREA,
    Web,
    csrf,
    error_beside,
    make_web,
    summary_links,
    text,
)

pytestmark = pytest.mark.integration

GRADE = {
    "local_relevance": "high",
    "internet_spread": "possible",
    "source": "direct",
    "plausibility": "high",
    "confirmation": "confirmed",
    "severity": "5",
    "likelihood": "4",
    "recommendation": "formal_alert",
    "reasons": "Metonitazene confirmed by LC-MS.",
}


@pytest.fixture
def web(app: Flask, container: Container, client: FlaskClient, people: People) -> Web:
    return make_web(app, container, client, people)


@pytest.fixture
def case(web: Web, client: FlaskClient) -> dict[str, int]:
    web.user("lab", Role.reporter)
    body = {
        "kind": "drug_checking",
        "area": AREA,
        "sample_obtained_on": "2026-11-20",
        "sold_as": "oxycodone",
        "form": "tablet",
        "results": [{"substance": "metonitazene", "method": "lc-ms"}],
        "source": {"type": "drug_checking_service", "name": "Lab", "reference": "W-1"},
    }
    response = client.post("/api/v1/reports", json=body, headers=web.token("lab"))
    assert response.status_code == 201, response.get_json()
    filed = response.get_json()
    signal = next(s["id"] for s in filed["signals"] if s["kind"] == "red_list")
    return {"signal": signal, "report": filed["id"]}


def checked(html: str, name: str) -> list[str]:
    """The values of the ticked radio buttons named `name`."""
    return re.findall(
        rf'<input type="radio" id="[^"]+" name="{name}" value="([^"]*)" checked>', html
    )


def send(browser: FlaskClient, page: str, action: str, fields: dict[str, str]) -> Any:
    token = csrf(browser.get(page))
    return browser.post(f"{page}/{action}", data={"csrf_token": token, **fields})


def test_members_grade_and_see_the_grades_side_by_side(web: Web, case: dict[str, int]) -> None:
    ann, bob = web.browser("Ann", Role.panel), web.browser("Bob", Role.panel)
    page = f"/panel/signals/{case['signal']}"
    first = ann.get(page)
    assert first.status_code == 200, text(first)
    html = text(first)
    assert "<script" not in html
    assert "Nobody has graded this case yet" in html
    assert "A decision needs at least one grade" in html
    assert "urgent: within 4 hours of being seen" in html and "Overdue" not in html
    assert f'href="/signals/{case["signal"]}"' in html  # back to the signal
    assert "<legend>Severity of harm</legend>" in html and checked(html, "severity") == []

    saved = send(ann, page, "grade", GRADE)
    assert saved.status_code == 302 and saved.headers["Location"].endswith(f"{page}#grades")
    assert send(bob, page, "grade", GRADE | {"likelihood": "2"}).status_code == 302

    html = text(ann.get(page))
    assert "Your grade was saved." in html
    assert re.search(r'<th scope="col">Ann \(you\)</th><th scope="col">Bob</th>', html)
    likelihood = html.split("Likelihood of harm", 1)[1].split("</tr>", 1)[0]
    assert "Members differ" in likelihood
    assert "<td>4: Likely</td><td>2: Unlikely</td>" in likelihood
    severity = html.split('<th scope="row">Severity of harm', 1)[1].split("</tr>", 1)[0]
    assert "Members differ" not in severity
    assert (
        '<span class="tag red">Red</span>' in html
        and '<span class="tag amber">Amber</span>' in html
    )
    # Ann's own grade is filled in to change; the decision suggests the median's RAG (15: red).
    assert checked(html, "likelihood") == ["4"] and checked(html, "source") == ["direct"]
    assert "Change your grade" in html and "As the grades suggest: Red" in html
    assert checked(html, "rag") == [""]

    changed = send(ann, page, "grade", GRADE | {"likelihood": "2"})
    assert changed.status_code == 302
    html = text(ann.get(page))
    assert "Your grade was changed." in html and "Members differ" not in html


def test_errors_are_named_beside_the_fields_and_what_was_chosen_is_kept(
    web: Web, case: dict[str, int]
) -> None:
    ann = web.browser("Ann", Role.panel)
    page = f"/panel/reports/{case['report']}"
    fields = {k: v for k, v in GRADE.items() if k != "severity"} | {"reasons": " "}
    refused = send(ann, page, "grade", fields)
    assert refused.status_code == 422
    html = text(refused)
    assert "Error: " in html.split("</title>", 1)[0]
    assert error_beside(html, "severity") == "Select severity of harm"
    assert error_beside(html, "reasons") == "Enter your reasons"
    assert summary_links(html) == ["severity", "reasons"]
    assert checked(html, "local_relevance") == ["high"] and checked(html, "likelihood") == ["4"]

    assert send(ann, page, "grade", GRADE).status_code == 302
    no_choice = send(ann, page, "decision", {"decision_reasons": ""})
    assert no_choice.status_code == 422
    html = text(no_choice)
    assert error_beside(html, "decision") == "Select the panel's decision"
    assert summary_links(html) == ["decision", "decision_reasons"]


def test_a_decision_needs_a_grade_first(web: Web, case: dict[str, int]) -> None:
    ann = web.browser("Ann", Role.panel)
    page = f"/panel/signals/{case['signal']}"
    refused = send(
        ann, page, "decision", {"decision": "formal_alert", "decision_reasons": "Deaths."}
    )
    assert refused.status_code == 409
    assert "Nobody has graded this signal yet" in text(refused)
    assert "No decisions yet." in text(refused)


def test_no_further_action_dismisses_the_signal(web: Web, case: dict[str, int]) -> None:
    ann = web.browser("Ann", Role.panel)
    page = f"/panel/signals/{case['signal']}"
    send(ann, page, "grade", GRADE | {"recommendation": "no_further_action"})
    decided = send(
        ann,
        page,
        "decision",
        {"decision": "no_further_action", "rag": "green", "decision_reasons": "Known batch."},
    )
    assert decided.status_code == 302 and decided.headers["Location"].endswith("#current-decision")
    html = text(ann.get(page))
    assert "Decision recorded: no further action. The signal is dismissed." in html
    assert "Current decision: <strong>No further action</strong>" in html
    history = html.split('id="history"', 1)[1]
    assert "<td>Ann</td>" in history and '<span class="tag green">Green</span>' in history
    assert "Draft an alert from this case" not in html
    assert "Dismissed: Known batch." in text(ann.get(f"/signals/{case['signal']}"))


def test_a_formal_alert_decision_links_to_drafting_the_alert(
    web: Web, case: dict[str, int]
) -> None:
    ann = web.browser("Ann", Role.panel)
    for subject, key in (("signals", "signal"), ("reports", "report")):
        page = f"/panel/{subject}/{case[key]}"
        send(ann, page, "grade", GRADE)
        send(ann, page, "decision", {"decision": "formal_alert", "decision_reasons": "Red."})
        html = text(ann.get(page))
        assert f'href="/alerts/new?{key}_id={case[key]}">Draft an alert from this case' in html
        assert "Record a new decision" in html


def test_who_may_see_and_do_what(web: Web, case: dict[str, int], client: FlaskClient) -> None:
    page = f"/panel/signals/{case['signal']}"
    ann = web.browser("Ann", Role.panel)
    assert f'href="{page}"' in text(ann.get(f"/signals/{case['signal']}"))
    assert f'href="/panel/reports/{case["report"]}"' in text(ann.get(f"/reports/{case['report']}"))
    assert ann.get("/panel/signals/99999").status_code == 404
    expired = ann.post(f"{page}/grade", data=GRADE)  # no CSRF token
    assert expired.status_code == 400 and "This form has expired" in text(expired)

    reporter = web.browser("Rita", Role.reporter)
    assert reporter.get(page).status_code == 403
    assert reporter.get(f"/panel/reports/{case['report']}").status_code == 403
    token = csrf(reporter.get("/reports"))
    assert reporter.post(f"{page}/grade", data={"csrf_token": token, **GRADE}).status_code == 403

    admin = web.browser("Ada", Role.admin)
    html = text(admin.get(page))
    assert "Nobody has graded this case yet" in html and "Save my grade" not in html
    assert client.get(page).status_code == 302  # not signed in: to the login page
