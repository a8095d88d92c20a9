"""The report pages through Flask's test client against PostgreSQL with CSRF on: each kind's
form, errors beside fields with what was typed kept, the panel's list and filters, detail
pages, updates, who may see what, and the security headers on every page."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from ldis.bootstrap import Container
from ldis.domain.roles import Role
from ldis.store.models import Report
from tests.integration.conftest import People
from tests.integration.webpages import (
    AREA,
    DRUG_CHECK,
    NEAR_MISS,
    FormPage,
    Web,
    count,
    csrf,
    error_beside,
    london,
    make_web,
    post_form,
    summary_links,
    text,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def web(app: Flask, container: Container, client: FlaskClient, people: People) -> Web:
    return make_web(app, container, client, people)


# --- filing through the forms -----------------------------------------------------------------


def test_near_miss_form_files_a_report_in_uk_time(web: Web, container: Container) -> None:
    browser = web.browser("outreach", Role.reporter)
    response = post_form(browser, "/reports/new/near_miss", NEAR_MISS)
    assert response.status_code == 302, text(response)
    detail = browser.get(response.headers["Location"])
    html = text(detail)
    reference = re.search(r'<span class="ref">(R-[A-Z0-9]{10})</span>', html)
    assert reference and "Report filed" in html
    report = (
        web.app.test_client()
        .get(
            response.headers["Location"].replace("/reports", "/api/v1/reports"),
            headers=web.token("outreach"),
        )
        .get_json()
    )
    assert report["reference"] == reference.group(1)
    assert report["occurred_at"] == "2026-07-01T11:30:00Z"  # 12:30 British Summer Time
    assert report["suspected_substances"] == ["heroin", "xylazine"]
    assert report["naloxone_doses"] == 2 and report["location"] == {"lat": 53.959, "lon": -1.082}
    assert "1 Jul 2026, 12:30" in html and "Signals: none yet" in html
    assert "No updates yet" in html and 'name="text"' in html  # the filer may add an update

    winter = post_form(
        browser, "/reports/new/near_miss", {**NEAR_MISS, "occurred_at": "2026-01-10T08:00"}
    )
    assert winter.status_code == 302
    with container.db.transaction() as session:
        moments = sorted(session.scalars(select(Report.occurred_at)))
    assert moments[0] == datetime(2026, 1, 10, 8, 0, tzinfo=UTC)  # GMT in winter

    again = post_form(browser, "/reports/new/near_miss", NEAR_MISS)  # a resend within minutes
    assert again.status_code == 302
    assert f"already filed as <strong>{reference.group(1)}</strong>" in text(
        browser.get(again.headers["Location"])
    )
    assert count(container) == 2


def test_callout_form_with_and_without_a_time(web: Web) -> None:
    browser = web.browser("yas", Role.reporter)
    base = {
        "occurred_on": "2026-11-02",
        "area": AREA,
        "naloxone_given": "yes",
        "source_type": "ambulance",
        "source_name": "YAS",
    }
    day_only = post_form(browser, "/reports/new/callout", base)
    assert day_only.status_code == 302, text(day_only)
    timed = post_form(
        browser,
        "/reports/new/callout",
        {**base, "occurred_time": "23:40", "area": "", "lat": "53.78", "lon": "-1.07"},
    )
    assert timed.status_code == 302, text(timed)
    api = web.app.test_client()
    first = api.get(
        day_only.headers["Location"].replace("/reports", "/api/v1/reports"),
        headers=web.token("yas"),
    )
    second = api.get(
        timed.headers["Location"].replace("/reports", "/api/v1/reports"), headers=web.token("yas")
    )
    assert first.get_json()["time_known"] is False and first.get_json()["naloxone_given"] is True
    assert (
        second.get_json()["occurred_at"] == "2026-11-02T23:40:00Z"
        and second.get_json()["area"] is None
    )
    assert "2 Nov 2026" in text(browser.get(day_only.headers["Location"]))


# --- errors beside fields, nothing lost, nothing stored ----------------------------------------


@pytest.mark.parametrize(
    ("change", "field_id", "words"),
    [
        ({"occurred_at": london(datetime.now(UTC) + timedelta(days=2))}, "occurred_at", "future"),
        ({"occurred_at": "1999-12-31T23:00"}, "occurred_at", "2000"),
        ({"occurred_at": ""}, "occurred_at", "enter date and time"),
        ({"area": "ATLANTIS"}, "area", "unknown area"),
        ({"notes": "<script>alert(1)</script> in the hostel"}, "notes", "script"),
        ({"notes": "Seen with Mr Smith, call 07911 123456"}, "notes", "phone"),
        ({"naloxone_doses": "two"}, "naloxone_doses", "whole number"),
        ({"lat": "95"}, "lat", "90"),
        ({"lat": "53.9", "lon": ""}, "lon", "enter longitude"),
        ({"outcome": "teleported"}, "outcome", "select outcome"),
    ],
)
def test_near_miss_errors_name_the_field_and_keep_what_was_typed(
    web: Web, container: Container, change: dict[str, str], field_id: str, words: str
) -> None:
    browser = web.browser("outreach", Role.reporter)
    sent = {**NEAR_MISS, **change}
    response = post_form(browser, "/reports/new/near_miss", sent)
    assert response.status_code == 422
    html = text(response)
    assert words in error_beside(html, field_id).lower()
    assert summary_links(html) == [field_id]
    assert "There is a problem" in html and "<title>Error:" in html
    kept = FormPage(html).values
    for name, value in sent.items():
        if name not in ("area", "outcome"):  # select values are kept only when they are choices
            assert kept[name] == value, name
    assert kept.get("area", "") == (AREA if sent["area"] == AREA else "")
    assert "<script>alert" not in html  # escaped, never echoed as markup
    assert count(container) == 0


def test_drug_checking_errors_map_to_result_rows(web: Web, container: Container) -> None:
    browser = web.browser("lab", Role.reporter)
    no_results = {k: v for k, v in DRUG_CHECK.items() if not k.startswith("result")}
    response = post_form(browser, "/reports/new/drug_checking", no_results)
    assert response.status_code == 422
    assert "at least one result" in error_beside(text(response), "result1-substance")
    assert FormPage(text(response)).values["sold_as"] == "oxycodone 80 mg"

    # Row 3 has a method but no substance: the error sits beside row 3, not row 2.
    gap = {
        **no_results,
        "result1-substance": "heroin",
        "result1-method": "ftir",
        "result3-method": "reagent",
    }
    html = text(post_form(browser, "/reports/new/drug_checking", gap))
    assert "enter substance" in error_beside(html, "result3-substance").lower()
    assert "Result 3: enter substance" in html
    assert FormPage(html).values["result1-substance"] == "heroin"

    several = {
        **DRUG_CHECK,
        "sample_obtained_on": "2099-01-01",
        "sample_form": "",
        "harms_reported": "<b>x</b>",
    }
    html = text(post_form(browser, "/reports/new/drug_checking", several))
    assert "future" in error_beside(html, "sample_obtained_on")
    assert error_beside(html, "sample_form") == "Select form"
    assert "script" in error_beside(html, "harms_reported")
    assert summary_links(html) == ["sample_obtained_on", "sample_form", "harms_reported"]
    assert count(container) == 0


# --- the panel's pages -------------------------------------------------------------------------


def _api_drug_check() -> dict[str, Any]:
    return {
        "kind": "drug_checking",
        "area": AREA,
        "sample_obtained_on": "2026-11-20",
        "sold_as": "oxycodone",
        "form": "tablet",
        "results": [{"substance": "N-pyrrolidino protonitazene", "method": "lc-ms"}],
        "source": {"type": "drug_checking_service", "name": "Lab", "reference": "S-9"},
    }


def test_list_filters_for_the_panel(web: Web, client: FlaskClient) -> None:
    web.user("lab", Role.reporter)
    lab = web.token("lab")
    check = client.post("/api/v1/reports", json=_api_drug_check(), headers=lab).get_json()
    near = client.post(
        "/api/v1/reports",
        json={
            "kind": "near_miss",
            "area": AREA,
            "occurred_at": "2026-11-21T23:40:00Z",
            "suspected_substances": ["heroin"],
            "source": {"type": "outreach"},
        },
        headers=lab,
    ).get_json()
    panel = web.browser("panel", Role.panel)

    def listed(query: str) -> set[str]:
        response = panel.get("/reports" + query)
        assert response.status_code == 200, text(response)
        return set(re.findall(r">(R-[A-Z0-9]{10})</a>", text(response)))

    both = {check["reference"], near["reference"]}
    assert listed("") == both
    assert listed("?kind=near_miss") == {near["reference"]}
    assert listed("?red_list=true") == {check["reference"]}
    assert listed("?substance=protonitazepyne") == {check["reference"]}  # a street spelling
    assert listed("?area=NYORKS") == both
    assert listed("?since=2026-11-21&until=2026-11-30") == {near["reference"]}
    assert listed("?kind=&area=&substance=&since=&until=") == both  # blank filters
    assert listed("?limit=1") and "Next" in text(panel.get("/reports?limit=1"))
    second_page = text(panel.get("/reports?limit=1&offset=1"))
    assert "Previous" in second_page and "Next" not in second_page
    page = text(panel.get("/reports?red_list=true"))
    assert 'class="tag red">Red list' in page and check["substances"][0]["canonical"] in page
    assert FormPage(page).values["red_list"] == "true"

    bad = panel.get("/reports?since=yesterday")
    assert bad.status_code == 200
    assert "date" in error_beside(text(bad), "since")
    assert FormPage(text(bad)).values["since"] == "yesterday"
    assert "must be one of" in error_beside(text(panel.get("/reports?kind=poem")), "kind")

    # Reporters with no service set see only their own (test_privacy.py: a service's).
    other = web.browser("other", Role.reporter)
    response = other.get("/reports")
    assert not re.search(r"R-[A-Z0-9]{10}", text(response)) and "No reports match" in text(response)
    assert other.get(f"/reports/{check['id']}").status_code == 404


def test_updates_on_the_detail_page(web: Web, client: FlaskClient) -> None:
    filer = web.browser("lab", Role.reporter)
    filed = post_form(filer, "/reports/new/drug_checking", DRUG_CHECK)
    path = filed.headers["Location"]
    token = csrf(filer.get(path))
    added = filer.post(
        path + "/updates", data={"csrf_token": token, "text": "Lab confirmed metonitazene."}
    )
    assert added.status_code == 302 and added.headers["Location"].endswith(path + "#updates")
    html = text(filer.get(path))
    assert "Your update has been added" in html and "Lab confirmed metonitazene." in html

    personal = filer.post(path + "/updates", data={"csrf_token": token, "text": "DOB 01/02/1990"})
    assert personal.status_code == 422
    assert "date of birth" in error_beside(text(personal), "text")
    assert FormPage(text(personal)).values["text"] == "DOB 01/02/1990"
    empty = filer.post(path + "/updates", data={"csrf_token": token, "text": "  "})
    assert (
        empty.status_code == 422 and "write the update" in error_beside(text(empty), "text").lower()
    )

    stranger = web.browser("other", Role.reporter)
    token = csrf(stranger.get("/reports"))
    assert (
        stranger.post(path + "/updates", data={"csrf_token": token, "text": "mine now"}).status_code
        == 404
    )

    panel = web.browser("panel", Role.panel)
    page = text(panel.get(path))
    assert "Lab confirmed metonitazene." in page and 'name="text"' not in page  # not the filer
    token = csrf(panel.get(path))
    assert (
        panel.post(path + "/updates", data={"csrf_token": token, "text": "panel note"}).status_code
        == 404
    )
    admin = web.browser("boss", Role.admin)
    token = csrf(admin.get(path))
    assert (
        admin.post(path + "/updates", data={"csrf_token": token, "text": "Admin note."}).status_code
        == 302
    )


def test_every_page_has_security_headers_and_no_script(web: Web, client: FlaskClient) -> None:
    browser = web.browser("lab", Role.reporter)
    filed = post_form(browser, "/reports/new/drug_checking", {**DRUG_CHECK, "notes": "safe"})
    pages: list[tuple[FlaskClient, str, Callable[[FlaskClient, str], TestResponse]]] = [
        (client, "/login", FlaskClient.get),
        (browser, "/reports", FlaskClient.get),
        (browser, "/reports?since=nonsense", FlaskClient.get),
        (browser, "/reports/new", FlaskClient.get),
        (browser, "/reports/new/drug_checking", FlaskClient.get),
        (browser, "/reports/new/near_miss", FlaskClient.get),
        (browser, "/reports/new/callout", FlaskClient.get),
        (browser, "/reports/new/poem", FlaskClient.get),
        (browser, filed.headers["Location"], FlaskClient.get),
        (browser, "/reports/999999", FlaskClient.get),
        (browser, "/reports/new/near_miss", FlaskClient.post),
    ]
    for who, path, method in pages:
        response = method(who, path)
        assert response.status_code in (200, 400, 404), (path, response.status_code)
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'none'" in csp and "frame-ancestors 'self'" in csp, path
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "SAMEORIGIN"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert "<script" not in text(response).lower(), path
        assert 'name="viewport"' in text(response), path
