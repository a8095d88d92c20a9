"""The board's map against PostgreSQL: call-outs found as a cluster by the real detector,
a red-list drug check weeks earlier, the time slider choosing the week, the numbers
table matching the picture, clear errors, panel-only, and optional tiles lined up in Web
Mercator with the page's policy letting in their server alone."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta
from html import unescape

import pytest
from flask import Flask
from flask.testing import FlaskClient

from ldis.bootstrap import Container
from ldis.domain.clusters import ClusterSettings
from ldis.domain.figures import LONDON, week_start
from ldis.domain.roles import Role
from ldis.services import clusters
from ldis.web.app import create_app
from ldis.web.map_drawing import SHADES
from tests.integration.conftest import People
from tests.integration.test_area_lookup import places  # noqa: F401 (fixture)
from tests.integration.webpages import Web, text
from tests.unit.test_map_drawing import osm_tile

pytestmark = pytest.mark.integration

CALLOUTS = "Ambulance call-out"
TILES = "https://tiles.example.org/{z}/{x}/{y}.png"


def _now_uk() -> datetime:
    return datetime.now(UTC).astimezone(LONDON)


@pytest.fixture
def seeded(client: FlaskClient, places: None, people: People, container: Container) -> None:  # noqa: F811
    reporter = people.headers("ambulance", Role.reporter)
    # Seven call-outs in York Central over the last ten hours, within this UK week (or,
    # early on a Monday, crossing into it: the test asks for two weeks then).
    start = datetime.now(UTC) - timedelta(hours=10)
    burst = [
        {
            "occurred_at": (start + timedelta(hours=1.4 * n)).isoformat(),
            "area": "YORK-C",
            "location": {"lat": 53.958 + 0.001 * (n % 3), "lon": -1.081 + 0.001 * (n % 2)},
            "source": {"type": "ambulance", "name": "YAS", "reference": f"INC-{n}"},
        }
        for n in range(7)
    ]
    accepted = client.post("/api/v1/callouts", json=burst, headers=reporter).get_json()
    assert accepted["accepted"] == 7, accepted
    assert clusters.recompute(container.db, ClusterSettings()) >= 1
    # A red-list drug check in Selby three weeks ago, with no location of its own.
    three_weeks_ago = week_start(_now_uk().date()) - timedelta(weeks=3) + timedelta(days=2)
    lab = people.headers("lab", Role.reporter)
    body = {
        "kind": "drug_checking",
        "area": "SELBY",
        "sample_obtained_on": three_weeks_ago.isoformat(),
        "sold_as": "oxycodone",
        "form": "tablet",
        "results": [{"substance": "metonitazene", "method": "lc-ms"}],
        "source": {"type": "drug_checking_service", "name": "Lab"},
    }
    response = client.post("/api/v1/reports", json=body, headers=lab)
    assert response.status_code == 201, response.get_json()


@pytest.fixture
def board(app: Flask, container: Container, people: People) -> FlaskClient:
    web = Web(app, container, people.apps)
    browser = app.test_client()
    response = web.login(browser, web.user("chair", Role.panel))
    assert response.status_code == 302, text(response)
    return browser


def row(html: str, code: str) -> list[str]:
    """The numbers table's cells for one area (after its heading cell)."""
    match = re.search(
        rf'<th scope="row">[^<]*<span class="muted">{re.escape(code)}</span></th>(.*?)</tr>',
        html,
        re.S,
    )
    assert match, f"no row for {code}"
    return [unescape(c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", match.group(1))]


def headings(html: str) -> list[str]:
    table = html.split('id="numbers"', 1)[1]
    return [unescape(h) for h in re.findall(r'<th scope="col"[^>]*>(.*?)</th>', table)]


def by_heading(html: str, code: str) -> dict[str, str]:
    return dict(zip(headings(html)[1:], row(html, code), strict=True))


def area_fill(html: str, code: str) -> str:
    match = re.search(rf'<path d="[^"]*" fill="([^"]+)"[^>]*><title>[^<]*\({code}\)', html)
    assert match, f"no shape for {code}"
    return match.group(1)


def test_this_week_shows_the_call_outs_and_their_cluster(board: FlaskClient, seeded: None) -> None:
    weeks = 2 if _now_uk().weekday() == 0 and _now_uk().hour < 11 else 1
    response = board.get(f"/dashboard/map?weeks={'4' if weeks == 2 else '1'}")
    assert response.status_code == 200, text(response)
    html = text(response)
    assert "<script" not in html and '<svg xmlns="http://www.w3.org/2000/svg"' in html
    york_c = by_heading(html, "YORK-C")
    assert york_c[CALLOUTS] == "7", york_c
    assert york_c["All reports"] == "7" and york_c["Cluster signals"] == "1", york_c
    # Seven dots, each titled with its report's reference, none ringed red.
    dots = re.findall(r'<circle [^>]*r="5.5" fill="([^"]+)"([^>]*)><title>([^<]+)</title>', html)
    assert len(dots) == 7 and all("call" in t or "callout" in t for _, _, t in dots), dots
    assert not any("#d4351c" in ring for _, ring, _ in dots)
    # The cluster: a dashed red circle around them, linked in the list below.
    circle = re.search(
        r'<circle cx="([\d.]+)" cy="([\d.]+)" r="([\d.]+)" fill="#d4351c"[^>]*stroke-dasharray[^>]*>'
        r"<title>Cluster signal (\d+)",
        html,
    )
    assert circle, "no cluster drawn"
    assert f'href="/signals/{circle.group(4)}"' in html
    assert float(circle.group(3)) >= 8
    # York Central is shaded as the busiest area; Selby had nothing this week.
    assert area_fill(html, "YORK-C") == SHADES[4] and area_fill(html, "SELBY") == SHADES[0]
    assert by_heading(html, "SELBY")["All reports"] == "0"
    assert "7 reports with a location are drawn as dots." in html


def test_the_slider_goes_back_to_the_red_list_drug_check(board: FlaskClient, seeded: None) -> None:
    html = text(board.get("/dashboard/map?week=-3&weeks=1"))
    selby = by_heading(html, "SELBY")
    assert selby["Drug checking result"] == "1" and selby["Red-list"] == "1", selby
    assert by_heading(html, "YORK-C")["All reports"] == "0"
    assert 'value="-3"' in html and 'r="5.5"' not in html  # no located report that week
    assert "No cluster of call-outs or overdoses was found in this period." in html
    assert area_fill(html, "SELBY") != SHADES[0]
    monday = week_start(_now_uk().date()) - timedelta(weeks=3)
    assert f"Week starting {monday.strftime('%-d %b %Y')}" in html
    # One click a week each way, keeping what else was chosen.
    assert 'href="/dashboard/map?week=-4&amp;weeks=1"' in html
    assert 'href="/dashboard/map?week=-2&amp;weeks=1"' in html
    # Twelve weeks up to this one hold both.
    html = text(board.get("/dashboard/map?weeks=12&area=NYORKS"))
    assert by_heading(html, "SELBY")["Red-list"] == "1"
    assert by_heading(html, "YORK-C")["All reports"] == "7"


def test_bad_choices_are_named_and_the_map_is_panel_only(
    board: FlaskClient, seeded: None, app: Flask, container: Container, people: People
) -> None:
    response = board.get("/dashboard/map?week=3&weeks=5&area=NOWHERE")
    assert response.status_code == 400
    html = text(response)
    assert "Week is out of range: move the slider to a week in the last 26" in html
    assert "Weeks shown: choose one, four or twelve weeks" in html
    assert "Area there is no area with the code NOWHERE" in html
    assert 'class="error-summary"' in html
    web = Web(app, container, people.apps)
    reporter = app.test_client()
    assert web.login(reporter, web.user("reporter", Role.reporter)).status_code == 302
    assert reporter.get("/dashboard/map").status_code == 403
    assert app.test_client().get("/dashboard/map").status_code == 302  # to the login page


def test_an_empty_partnership_gets_words_not_a_blank_map(board: FlaskClient) -> None:
    html = text(board.get("/dashboard/map"))
    assert "Nothing to draw yet." in html and "<svg xmlns" not in html
    assert "No areas have been set up yet." in html


def test_configured_tiles_line_up_and_only_their_server_is_allowed(
    container: Container, people: People, seeded: None
) -> None:
    settings = container.settings.model_copy(
        update={"map_tile_url": TILES, "map_tile_attribution": "© Example contributors"}
    )
    app = create_app(dataclasses.replace(container, settings=settings))
    web = Web(app, container, people.apps)
    browser = app.test_client()
    assert web.login(browser, web.user("tiles", Role.panel)).status_code == 302
    response = browser.get("/dashboard/map?area=YORK")
    assert response.status_code == 200
    policy = response.headers["Content-Security-Policy"]
    assert "img-src 'self' https://tiles.example.org" in policy and "script-src 'none'" in policy
    html = text(response)
    hrefs = re.findall(r'<image href="https://tiles\.example\.org/(\d+)/(\d+)/(\d+)\.png"', html)
    assert hrefs, "no tiles drawn"
    zoom = int(hrefs[0][0])
    assert 8 <= zoom <= 14, zoom  # York (about 23 x 19 km) fills a 640 px map
    assert osm_tile(53.959, -1.081, zoom) in {(int(x), int(y)) for _, x, y in hrefs}
    assert "© Example contributors" in html
