"""The panel's signal pages through Flask's test client against PostgreSQL with CSRF on: the
queue (red first), a signal with its reports, timeline and map drawn on the server, status
changes and merges with errors beside the fields, and who may see what."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from ldis.bootstrap import Container
from ldis.domain.roles import Role
from ldis.store.models import Signal
from tests.integration.conftest import People
from tests.integration.webpages import AREA, Web, csrf, error_beside, make_web, text

pytestmark = pytest.mark.integration


@pytest.fixture
def web(app: Flask, container: Container, client: FlaskClient, people: People) -> Web:
    return make_web(app, container, client, people)


def _fake_oxycodone(ref: str) -> dict[str, Any]:
    return {
        "kind": "drug_checking",
        "area": AREA,
        "sample_obtained_on": "2026-11-20",
        "sold_as": "oxycodone",
        "form": "tablet",
        "results": [{"substance": "metonitazene", "method": "lc-ms"}],
        "source": {"type": "drug_checking_service", "name": "Lab", "reference": ref},
    }


def _near_miss(lat: float, lon: float, when: str) -> dict[str, Any]:
    return {
        "kind": "near_miss",
        "area": AREA,
        "occurred_at": when,
        "location": {"lat": lat, "lon": lon},
        "suspected_substances": ["heroin", "xylazine"],
        "source": {"type": "outreach"},
    }


def _file(web: Web, client: FlaskClient, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/api/v1/reports", json=body, headers=web.token("lab"))
    assert response.status_code == 201, response.get_json()
    result: dict[str, Any] = response.get_json()
    return result


def _svgs(html: str) -> list[ET.Element]:
    return [ET.fromstring(m) for m in re.findall(r"<svg\b.*?</svg>", html, re.S)]


@pytest.fixture
def filed(web: Web, client: FlaskClient) -> dict[str, Any]:
    web.user("lab", Role.reporter)
    first = _file(web, client, _fake_oxycodone("A-1"))
    second = _file(web, client, _fake_oxycodone("A-2"))
    near = [
        _file(web, client, _near_miss(53.959, -1.082, "2026-11-21T23:40:00Z")),
        _file(web, client, _near_miss(53.97, -1.07, "2026-11-22T10:00:00Z")),
    ]
    red = {s["id"] for s in first["signals"]}
    assert red and red == {s["id"] for s in second["signals"]}
    amber = next(s["id"] for s in near[0]["signals"] if s["kind"] == "red_list")
    return {"reports": [first, second], "near": near, "red": red, "amber": amber}


def test_the_queue_lists_red_signals_first(
    web: Web, filed: dict[str, Any], container: Container
) -> None:
    with container.db.transaction() as session:
        session.execute(
            update(Signal)
            .where(Signal.id == min(filed["red"]))
            .values(
                detected_at=datetime.now(UTC) - timedelta(hours=3, minutes=5),
                escalated_at=datetime.now(UTC),
            )
        )
    panel = web.browser("panel", Role.panel)
    response = panel.get("/signals")
    assert response.status_code == 200, text(response)
    html = text(response)
    assert "<script" not in html and 'href="/signals"' in html  # in the navigation
    ids = [int(i) for i in re.findall(r'href="/signals/(\d+)"', html)]
    severities = re.findall(r'<span class="tag (red|amber|green)">', html)
    assert set(filed["red"]) | {filed["amber"]} <= set(ids)
    assert severities == sorted(severities, key=["red", "amber", "green"].index)
    assert severities[0] == "red" and "amber" in severities
    row = html.split(f'href="/signals/{min(filed["red"])}"', 1)[1].split("</tr>", 1)[0]
    assert "<td>2</td>" in row and "<td>3 h ago</td>" in row and AREA in row
    assert (
        'class="tag escalated">Escalated' in html.split(f'href="/signals/{min(filed["red"])}"')[0]
    )

    dismissed = text(panel.get("/signals?status=dismissed"))
    assert "No signals to show" in dismissed
    bad = panel.get("/signals?status=nonsense")
    assert bad.status_code == 200 and "Select a status" in error_beside(text(bad), "status")


def test_detail_has_reports_timeline_and_table(
    web: Web, filed: dict[str, Any], container: Container
) -> None:
    panel = web.browser("panel", Role.panel)
    signal_id = min(filed["red"])
    html = text(panel.get(f"/signals/{signal_id}"))
    assert "<script" not in html
    for report in filed["reports"]:
        assert f'href="/reports/{report["id"]}">{report["reference"]}</a>' in html
    (timeline,) = _svgs(html)  # the drug checks give no location: no map
    assert timeline.find("{http://www.w3.org/2000/svg}title") is not None
    assert "None of these reports gave a location" in html
    assert "<td>20 Nov 2026</td><td>2</td>" in html  # the table beneath the chart
    assert "<td>17 Nov 2026</td><td>0</td>" in html and "<td>23 Nov 2026</td><td>0</td>" in html

    with container.db.transaction() as session:
        session.execute(
            update(Signal).where(Signal.id == signal_id).values(details={"expected": 0.5})
        )
    html = text(panel.get(f"/signals/{signal_id}"))
    assert "stroke-dasharray" in html and "0.5 expected a day" in html


def test_map_of_located_reports(web: Web, filed: dict[str, Any], container: Container) -> None:
    panel = web.browser("panel", Role.panel)
    path = f"/signals/{filed['amber']}"
    html = text(panel.get(path))
    _timeline, picture = _svgs(html)
    circles = picture.findall("{http://www.w3.org/2000/svg}circle")
    assert {c.findtext("{http://www.w3.org/2000/svg}title") for c in circles} == {
        r["reference"] for r in filed["near"]
    }
    assert "<td>53.959</td><td>-1.082</td>" in html
    with container.db.transaction() as session:
        session.execute(
            update(Signal)
            .where(Signal.id == filed["amber"])
            .values(details={"centre": [53.964, -1.076], "radius_m": 1500})
        )
    _, picture = _svgs(text(panel.get(path)))
    assert len(picture.findall("{http://www.w3.org/2000/svg}circle")) == 3


def test_dismiss_needs_a_reason_then_works(web: Web, filed: dict[str, Any]) -> None:
    panel = web.browser("panel", Role.panel)
    path = f"/signals/{filed['amber']}"
    token = csrf(panel.get(path))
    missing = panel.post(
        path + "/status", data={"csrf_token": token, "status": "dismissed", "reason": " "}
    )
    assert missing.status_code == 422
    assert "say why" in error_beside(text(missing), "reason").lower()
    done = panel.post(
        path + "/status",
        data={"csrf_token": token, "status": "dismissed", "reason": "Known batch"},
    )
    assert done.status_code == 302 and done.headers["Location"].endswith(path)
    page = text(panel.get(path))
    assert "The signal is now dismissed" in page and "Dismissed: Known batch" in page
    assert f'href="/signals/{filed["amber"]}"' not in text(panel.get("/signals"))
    conflict = panel.post(path + "/status", data={"csrf_token": token, "status": "alerted"})
    assert conflict.status_code == 409 and "cannot become alerted" in text(conflict)


def test_merge_form(web: Web, filed: dict[str, Any]) -> None:
    panel = web.browser("panel", Role.panel)
    source, target = sorted(filed["red"])[:2]
    path = f"/signals/{source}"
    token = csrf(panel.get(path))
    bad = panel.post(path + "/merge", data={"csrf_token": token, "into": "soon"})
    assert bad.status_code == 422 and "number" in error_beside(text(bad), "into")
    same = panel.post(path + "/merge", data={"csrf_token": token, "into": str(source)})
    assert same.status_code == 422 and "different" in error_beside(text(same), "into")
    nowhere = panel.post(path + "/merge", data={"csrf_token": token, "into": "999999"})
    assert nowhere.status_code == 422 and "no signal" in error_beside(text(nowhere), "into")
    merged = panel.post(path + "/merge", data={"csrf_token": token, "into": str(target)})
    assert merged.status_code == 302 and merged.headers["Location"].endswith(f"/signals/{target}")
    assert "Merged into" in text(panel.get(path))


def test_who_may_see_and_csrf(web: Web, filed: dict[str, Any], client: FlaskClient) -> None:
    reporter = web.browser("outreach", Role.reporter)
    assert reporter.get("/signals").status_code == 403
    assert reporter.get(f"/signals/{filed['amber']}").status_code == 403
    assert 'href="/signals"' not in text(reporter.get("/reports"))
    assert client.get("/signals").status_code == 302  # not signed in: to the login page

    admin = web.browser("boss", Role.admin)
    page = admin.get(f"/signals/{filed['amber']}")
    assert page.status_code == 200 and 'action="/signals/' not in text(page)  # reads only
    token = csrf(admin.get("/signals"))
    assert (
        admin.post(
            f"/signals/{filed['amber']}/status", data={"csrf_token": token, "status": "open"}
        ).status_code
        == 403
    )

    panel = web.browser("panel", Role.panel)
    no_token = panel.post(
        f"/signals/{filed['amber']}/status", data={"status": "dismissed", "reason": "x"}
    )
    assert no_token.status_code == 400 and "expired" in text(no_token)
    assert panel.get("/signals/999999").status_code == 404
