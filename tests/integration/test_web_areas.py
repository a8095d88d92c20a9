"""Area pages through Flask's test client against PostgreSQL with CSRF on: the tree and the
point lookup, adding and editing areas, uploading a boundary (drawn as SVG, bad files refused
beside the field with nothing changed), neighbours, and who may see or change what."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from io import BytesIO
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from ldis.bootstrap import Container
from ldis.domain.roles import Role
from ldis.store.models import Area, AreaNeighbour
from tests.integration.conftest import People
from tests.integration.test_areas_api import BOW_TIE, HIERARCHY, box
from tests.integration.webpages import Web, csrf, error_beside, summary_links, text

pytestmark = pytest.mark.integration


@pytest.fixture
def web(app: Flask, container: Container) -> Web:
    return Web(app, container)


@pytest.fixture
def places(client: FlaskClient, people: People) -> None:
    admin = people.headers("api-admin", Role.admin)
    for code, name, parent, boundary in HIERARCHY:
        body = {"code": code, "name": name, **({"parent": parent} if parent else {})}
        assert client.post("/api/v1/areas", json=body, headers=admin).status_code == 201
        if code != "SELBY":  # one area without a boundary
            client.put(f"/api/v1/areas/{code}/boundary", json=boundary, headers=admin)


def area(container: Container, code: str) -> Area | None:
    with container.db.transaction() as session:
        found = session.scalar(select(Area).where(Area.code == code))
        if found is not None:
            session.expunge(found)
        return found


def upload(browser: FlaskClient, code: str, content: bytes, filename: str = "york.geojson") -> Any:
    token = csrf(browser.get(f"/areas/{code}"))
    return browser.post(
        f"/areas/{code}/boundary",
        data={"csrf_token": token, "boundary": (BytesIO(content), filename)},
        content_type="multipart/form-data",
    )


def post(browser: FlaskClient, page: str, action: str, fields: dict[str, str]) -> Any:
    return browser.post(action, data={"csrf_token": csrf(browser.get(page)), **fields})


# --- the list, the tree and the point lookup ---------------------------------------------------


def test_the_list_is_an_indented_tree_with_boundary_marks(places: None, web: Web) -> None:
    browser = web.browser("admin", Role.admin)
    html = text(browser.get("/areas"))
    tree = html.split('<ul class="area-tree">', 1)[1]
    # Nested lists: North Yorkshire > (Selby, York > York Central).
    order = re.findall(r'href="/areas/([A-Z-]+)"', tree.split('<h2 id="locate">')[0])
    assert order == ["NYORKS", "SELBY", "YORK", "YORK-C"]
    york = tree.split('href="/areas/YORK"', 1)[1]
    assert york.index("<ul>") < york.index('href="/areas/YORK-C"')
    selby = tree.split('href="/areas/SELBY"', 1)[1].split("</li>", 1)[0]
    assert "No boundary" in selby
    assert "Add an area" in html and '<a href="/areas">Areas</a>' in html


def test_the_empty_list_says_so(web: Web) -> None:
    html = text(web.browser("admin", Role.admin).get("/areas"))
    assert "No areas yet." in html and "load-boundaries" in html


def test_the_panel_may_look_but_not_change(places: None, web: Web, container: Container) -> None:
    panel = web.browser("panel", Role.panel)
    html = text(panel.get("/areas/YORK"))
    assert "<svg" in html and "Upload boundary" not in html and "Save changes" not in html
    assert "Add an area" not in text(panel.get("/areas"))
    assert panel.get("/areas/new").status_code == 403
    token = csrf(panel.get("/areas?lat=1&lon=1"))  # any page with a form token: logout's
    response = panel.post("/areas/YORK", data={"csrf_token": token, "name": "Yoik"})
    assert response.status_code == 403
    assert area(container, "YORK").name == "York"  # type: ignore[union-attr]
    reporter = web.browser("reporter", Role.reporter)
    assert reporter.get("/areas").status_code == 403
    anonymous = web.app.test_client().get("/areas/YORK")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]


def test_locating_a_point_lists_the_most_specific_area_first(places: None, web: Web) -> None:
    browser = web.browser("panel", Role.panel)
    html = text(browser.get("/areas?lat=53.959&lon=-1.081"))
    located = html.split('<ol id="located">', 1)[1].split("</ol>", 1)[0]
    assert re.findall(r'href="/areas/([A-Z-]+)"', located) == ["YORK-C", "YORK", "NYORKS"]
    nowhere = text(browser.get("/areas?lat=51.5&lon=-0.12"))
    assert "No area's boundary contains this point" in nowhere


def test_a_bad_point_is_named_beside_its_field(places: None, web: Web) -> None:
    response = web.browser("panel", Role.panel).get("/areas?lat=95&lon=")
    assert response.status_code == 422
    html = text(response)
    assert error_beside(html, "lat") == "Latitude must be between -90 and 90"
    assert error_beside(html, "lon") == "Give the longitude, like -1.08"
    assert summary_links(html) == ["lat", "lon"]


# --- adding and editing ----------------------------------------------------------------------


def test_adding_an_area_under_a_parent(places: None, web: Web, container: Container) -> None:
    browser = web.browser("admin", Role.admin)
    form = text(browser.get("/areas/new?parent=YORK"))
    assert '<option selected value="YORK">' in form or 'value="YORK" selected' in form
    response = post(
        browser,
        "/areas/new",
        "/areas/new",
        {"code": "york-w", "name": "York West", "parent": "YORK"},
    )
    assert response.status_code == 302 and response.headers["Location"] == "/areas/YORK-W"
    added = area(container, "YORK-W")
    assert added is not None and added.name == "York West"
    assert "Area YORK-W added." in text(browser.get("/areas/YORK-W"))


@pytest.mark.parametrize(
    ("fields", "field_id", "words"),
    [
        ({"code": "", "name": "X"}, "code", "Enter code"),
        ({"code": "BAD CODE", "name": "X"}, "code", "only letters, numbers, dots"),
        ({"code": "NEW", "name": ""}, "name", "Enter name"),
        ({"code": "YORK", "name": "York again"}, "code", "There is already an area YORK"),
    ],
)
def test_a_bad_new_area_is_refused_beside_the_field(
    places: None,
    web: Web,
    container: Container,
    fields: dict[str, str],
    field_id: str,
    words: str,
) -> None:
    browser = web.browser("admin", Role.admin)
    response = post(browser, "/areas/new", "/areas/new", {"parent": "", **fields})
    assert response.status_code == 422
    assert words in error_beside(text(response), field_id)
    with container.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Area)) == len(HIERARCHY)


def test_a_form_without_its_csrf_token_is_refused(places: None, web: Web) -> None:
    browser = web.browser("admin", Role.admin)
    response = browser.post("/areas/new", data={"code": "X1", "name": "X"})
    assert response.status_code == 400 and "This form has expired" in text(response)


def test_editing_the_name_and_parent(places: None, web: Web, container: Container) -> None:
    browser = web.browser("admin", Role.admin)
    page = text(browser.get("/areas/YORK"))
    parents = page.split('id="parent"', 1)[1].split("</select>", 1)[0]
    assert 'value="YORK-C"' not in parents  # not under its own sub-area
    response = post(browser, "/areas/YORK", "/areas/YORK", {"name": "City of York", "parent": ""})
    assert response.status_code == 302
    york = area(container, "YORK")
    assert york is not None and york.name == "City of York" and york.parent_id is None


def test_a_loop_is_refused_beside_the_parent(places: None, web: Web, container: Container) -> None:
    browser = web.browser("admin", Role.admin)
    response = post(browser, "/areas/YORK", "/areas/YORK", {"name": "York", "parent": "YORK-C"})
    assert response.status_code == 422
    assert "would make a loop" in error_beside(text(response), "parent")
    york = area(container, "YORK")
    assert york is not None and york.parent_id is not None  # still under North Yorkshire


# --- boundaries -------------------------------------------------------------------------------


def test_uploading_a_boundary_draws_it(places: None, web: Web, container: Container) -> None:
    browser = web.browser("admin", Role.admin)
    feature = {"type": "Feature", "properties": {}, "geometry": box(-1.3, 53.7, -0.9, 53.87)}
    response = upload(browser, "SELBY", json.dumps(feature).encode())
    assert response.status_code == 302, text(response)
    selby = area(container, "SELBY")
    assert selby is not None and selby.boundary == feature["geometry"]
    html = text(browser.get("/areas/SELBY"))
    assert "The boundary was saved." in html and "<script" not in html
    drawing = html[html.index("<svg") : html.index("</svg>") + 6]
    svg = ET.fromstring(drawing)
    ns = "{http://www.w3.org/2000/svg}"
    assert svg.find(f"{ns}title").text == "Outline of the boundary of Selby"  # type: ignore[union-attr]
    path = svg.find(f"{ns}path")
    assert (
        path is not None and path.get("d", "").startswith("M") and path.get("d", "").endswith("Z")
    )
    assert "-1.30000" in html and "53.87000" in html  # the extent table under the drawing


@pytest.mark.parametrize(
    ("content", "filename", "words"),
    [
        (
            json.dumps(BOW_TIE).encode(),
            "york.geojson",
            "The boundary crosses itself near lon -1.08, lat 53.96",
        ),
        (b"{not json", "york.geojson", "not valid JSON (line 1, column 2)"),
        (b"\xff\xfe\x00", "york.json", "not text"),
        (json.dumps(HIERARCHY[1][3]).encode(), "york.kml", "must be a .geojson or .json file"),
        (
            json.dumps(
                {"type": "Polygon", "coordinates": [[[-1, 53], [200, 53], [-1, 54], [-1, 53]]]}
            ).encode(),
            "york.geojson",
            "Outer ring, position 2: longitude 200 is outside -180 to 180",
        ),
        (
            json.dumps(
                {
                    "type": "MultiPolygon",
                    "coordinates": [
                        [HIERARCHY[1][3]["coordinates"][0]],
                        [[[-1, 53], [-1, 54], [-1, 53]]],
                    ],
                }
            ).encode(),
            "york.geojson",
            "Polygon 2, outer ring: has 3 positions",
        ),
    ],
)
def test_a_bad_boundary_file_is_refused_beside_the_field(
    places: None, web: Web, container: Container, content: bytes, filename: str, words: str
) -> None:
    browser = web.browser("admin", Role.admin)
    before = area(container, "YORK")
    response = upload(browser, "YORK", content, filename)
    assert response.status_code == 422
    html = text(response)
    assert words in error_beside(html, "boundary")
    assert summary_links(html) == ["boundary"]
    after = area(container, "YORK")
    assert before is not None and after is not None and after.boundary == before.boundary


def test_several_problems_are_all_listed(places: None, web: Web) -> None:
    ring = [[-1, 53], [200, 53], [-1, 95], [-1, 53]]
    response = upload(
        web.browser("admin", Role.admin),
        "YORK",
        json.dumps({"type": "Polygon", "coordinates": [ring]}).encode(),
    )
    message = error_beside(text(response), "boundary")
    assert message.startswith("The file has 2 problems: Outer ring, position 2")
    assert "position 3: latitude 95" in message


def test_no_file_and_a_file_too_large(places: None, web: Web) -> None:
    browser = web.browser("admin", Role.admin)
    token = csrf(browser.get("/areas/YORK"))
    none = browser.post(
        "/areas/YORK/boundary", data={"csrf_token": token}, content_type="multipart/form-data"
    )
    assert none.status_code == 422
    assert error_beside(text(none), "boundary") == "Choose a .geojson or .json file"
    big = upload(browser, "YORK", b" " * (5 * 1024 * 1024 + 1))
    assert big.status_code == 422
    assert error_beside(text(big), "boundary") == "The file must be 5 MB or smaller"
    huge = upload(browser, "YORK", b" " * (6 * 1024 * 1024))
    assert huge.status_code == 413 and "5 MB or smaller" in text(huge)


def test_removing_a_boundary(places: None, web: Web, container: Container) -> None:
    browser = web.browser("admin", Role.admin)
    response = post(browser, "/areas/YORK-C", "/areas/YORK-C/boundary/delete", {})
    assert response.status_code == 302
    assert area(container, "YORK-C").boundary is None  # type: ignore[union-attr]
    html = text(browser.get("/areas/YORK-C"))
    assert "The boundary was removed." in html and "<svg" not in html


# --- neighbours -------------------------------------------------------------------------------


def test_linking_and_unlinking_neighbours(places: None, web: Web, container: Container) -> None:
    browser = web.browser("admin", Role.admin)
    linked = post(browser, "/areas/YORK", "/areas/YORK/neighbours", {"neighbour": "SELBY"})
    assert linked.status_code == 302
    selby = text(browser.get("/areas/SELBY"))
    assert 'href="/areas/YORK"' in selby.split('id="neighbours"', 1)[1]
    page = text(browser.get("/areas/YORK"))
    choices = page.split('id="neighbour"', 1)[1].split("</select>", 1)[0]
    assert 'value="SELBY"' not in choices and 'value="YORK"' not in choices
    blank = post(browser, "/areas/YORK", "/areas/YORK/neighbours", {"neighbour": ""})
    assert blank.status_code == 422
    assert error_beside(text(blank), "neighbour") == "Choose the area to link"
    itself = post(browser, "/areas/YORK", "/areas/YORK/neighbours", {"neighbour": "YORK"})
    assert "its own neighbour" in error_beside(text(itself), "neighbour")
    unlinked = post(browser, "/areas/YORK", "/areas/YORK/neighbours/SELBY/delete", {})
    assert unlinked.status_code == 302
    with container.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(AreaNeighbour)) == 0


def test_an_unknown_area_page_is_a_404(web: Web) -> None:
    response = web.browser("admin", Role.admin).get("/areas/ATLANTIS")
    assert response.status_code == 404 and "Area not found" in text(response)
