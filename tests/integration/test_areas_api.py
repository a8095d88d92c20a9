"""Areas through the JSON API against PostgreSQL: the hierarchy (loops refused), boundaries
(bad GeoJSON refused with the place named, nothing stored), neighbours both ways, point
lookup most specific first, and the lookup at work in report intake and cluster signals."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from ldis.bootstrap import Container
from ldis.domain.roles import Role
from ldis.store.models import Area, AreaNeighbour, AuditEvent
from tests.integration.conftest import People

pytestmark = pytest.mark.integration

API = "/api/v1/areas"


def box(min_lon: float, min_lat: float, max_lon: float, max_lat: float) -> dict[str, Any]:
    ring = [
        [min_lon, min_lat],
        [max_lon, min_lat],
        [max_lon, max_lat],
        [min_lon, max_lat],
        [min_lon, min_lat],
    ]
    return {"type": "Polygon", "coordinates": [ring]}


# County > district > ward, and a second district: boxes nested as the real places are.
HIERARCHY = [
    ("NYORKS", "North Yorkshire", None, box(-2.6, 53.6, -0.2, 54.6)),
    ("YORK", "York", "NYORKS", box(-1.25, 53.88, -0.9, 54.05)),
    ("YORK-C", "York Central", "YORK", box(-1.09, 53.95, -1.07, 53.97)),
    ("SELBY", "Selby", "NYORKS", box(-1.3, 53.7, -0.9, 53.87)),
]
IN_YORK_C = (53.959, -1.081)
BOW_TIE = {
    "type": "Polygon",
    "coordinates": [
        [[-1.10, 53.95], [-1.06, 53.97], [-1.06, 53.95], [-1.10, 53.97], [-1.10, 53.95]]
    ],
}


@pytest.fixture
def admin(people: People) -> dict[str, str]:
    return people.headers("admin", Role.admin)


@pytest.fixture
def places(client: FlaskClient, admin: dict[str, str]) -> dict[str, str]:
    for code, name, parent, boundary in HIERARCHY:
        body = {"code": code, "name": name, **({"parent": parent} if parent else {})}
        assert client.post(API, json=body, headers=admin).status_code == 201
        response = client.put(f"{API}/{code}/boundary", json=boundary, headers=admin)
        assert response.status_code == 200, response.get_json()
    return admin


def audit_actions(container: Container) -> list[str]:
    with container.db.transaction() as session:
        return list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def stored(container: Container, code: str) -> Area:
    with container.db.transaction() as session:
        area = session.scalar(select(Area).where(Area.code == code))
        assert area is not None
        session.expunge(area)
        return area


# --- the hierarchy ---------------------------------------------------------------------------


def test_the_list_is_a_tree_with_boundaries_and_neighbours(
    client: FlaskClient, places: dict[str, str], people: People
) -> None:
    client.post(f"{API}/YORK/neighbours", json={"code": "SELBY"}, headers=places)
    client.post(API, json={"code": "LEEDS", "name": "Leeds"}, headers=places)
    manager = people.headers("manager", Role.service_manager)
    listed = client.get(API, headers=manager).get_json()
    assert [(a["code"], a["depth"]) for a in listed] == [
        ("LEEDS", 0),
        ("NYORKS", 0),
        ("SELBY", 1),
        ("YORK", 1),
        ("YORK-C", 2),
    ]
    by_code = {a["code"]: a for a in listed}
    assert by_code["YORK-C"]["parent"] == "YORK" and by_code["YORK-C"]["has_boundary"] is True
    assert by_code["LEEDS"]["has_boundary"] is False
    assert by_code["YORK"]["neighbours"] == ["SELBY"] and by_code["SELBY"]["neighbours"] == ["YORK"]
    reporter = people.headers("reporter", Role.reporter)
    assert client.get(API, headers=reporter).status_code == 403


def test_one_area_shows_its_sub_areas_box_and_depth(
    client: FlaskClient, places: dict[str, str]
) -> None:
    york = client.get(f"{API}/york", headers=places).get_json()  # codes are not case-sensitive
    assert york["code"] == "YORK" and york["children"] == ["YORK-C"] and york["depth"] == 1
    assert york["bbox"] == [-1.25, 53.88, -0.9, 54.05]
    missing = client.get(f"{API}/ATLANTIS", headers=places)
    assert missing.status_code == 404 and missing.get_json()["error"] == "not_found"


def test_create_refuses_a_repeated_code_and_an_unknown_parent(
    client: FlaskClient, admin: dict[str, str]
) -> None:
    assert client.post(API, json={"code": "york", "name": "York"}, headers=admin).status_code == 201
    again = client.post(API, json={"code": "YORK", "name": "York"}, headers=admin)
    assert again.status_code == 409 and again.get_json()["fields"] == {"code": "is already used"}
    orphan = client.post(API, json={"code": "W1", "name": "W", "parent": "NOPE"}, headers=admin)
    assert orphan.status_code == 422
    assert orphan.get_json()["fields"] == {"parent.0": "unknown area code 'NOPE'"}


def test_patch_renames_and_moves_an_area(
    client: FlaskClient, places: dict[str, str], container: Container
) -> None:
    moved = client.patch(
        f"{API}/YORK-C", json={"name": "York City Centre", "parent": "SELBY"}, headers=places
    )
    assert moved.status_code == 200, moved.get_json()
    assert moved.get_json()["name"] == "York City Centre" and moved.get_json()["parent"] == "SELBY"
    top = client.patch(f"{API}/YORK-C", json={"parent": None}, headers=places).get_json()
    assert top["parent"] is None and top["depth"] == 0
    assert stored(container, "YORK-C").parent_id is None
    assert audit_actions(container).count("area.updated") == 2


@pytest.mark.parametrize(
    ("code", "parent", "words"),
    [
        ("NYORKS", "YORK-C", "NYORKS cannot sit under YORK-C, one of its sub-areas"),
        ("YORK", "YORK", "YORK cannot sit under itself"),
    ],
)
def test_a_parent_that_would_make_a_loop_is_refused(
    client: FlaskClient,
    places: dict[str, str],
    container: Container,
    code: str,
    parent: str,
    words: str,
) -> None:
    before = stored(container, code).parent_id
    response = client.patch(
        f"{API}/{code}", json={"name": "Renamed", "parent": parent}, headers=places
    )
    assert response.status_code == 422
    assert words in response.get_json()["fields"]["parent"]
    after = stored(container, code)
    assert after.parent_id == before and after.name != "Renamed"  # the rename went too


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "body"), ({"name": None}, "name"), ({"parent": "NOPE"}, "parent.0"), ({"x": 1}, "x")],
)
def test_patch_names_what_is_wrong(
    client: FlaskClient, places: dict[str, str], body: dict[str, Any], field: str
) -> None:
    response = client.patch(f"{API}/YORK", json=body, headers=places)
    assert response.status_code == 422 and field in response.get_json()["fields"]


# --- boundaries -------------------------------------------------------------------------------


def test_a_boundary_is_stored_with_its_box_and_served_as_a_feature(
    client: FlaskClient, places: dict[str, str], container: Container
) -> None:
    york = stored(container, "YORK")
    assert (york.min_lon, york.min_lat, york.max_lon, york.max_lat) == (-1.25, 53.88, -0.9, 54.05)
    response = client.get(f"{API}/YORK/boundary", headers=places)
    assert response.status_code == 200 and response.mimetype == "application/geo+json"
    feature = response.get_json()
    assert feature["type"] == "Feature" and feature["geometry"] == HIERARCHY[1][3]
    assert feature["properties"] == {"code": "YORK", "name": "York"}


def test_a_feature_collection_of_one_is_accepted(
    client: FlaskClient, admin: dict[str, str], container: Container
) -> None:
    client.post(API, json={"code": "W1", "name": "Ward"}, headers=admin)
    one = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "properties": {}, "geometry": HIERARCHY[2][3]}],
    }
    response = client.put(f"{API}/W1/boundary", json=one, headers=admin)
    assert response.status_code == 200 and response.get_json()["has_boundary"] is True
    assert stored(container, "W1").boundary == HIERARCHY[2][3]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        (BOW_TIE, "boundary", "the boundary crosses itself near lon -1.08, lat 53.96"),
        (
            {"type": "Polygon", "coordinates": [HIERARCHY[1][3]["coordinates"][0][:4]]},
            "boundary.coordinates.0",
            "is not closed",
        ),
        (
            {
                "type": "Feature",
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[-1, 53], [200, 53], [-1, 54], [-1, 53]]],
                },
            },
            "boundary.geometry.coordinates.0.1",
            "longitude 200 is outside -180 to 180",
        ),
        (
            {"type": "LineString", "coordinates": [[-1, 53], [-1, 54]]},
            "boundary.type",
            "Polygon or MultiPolygon",
        ),
        ([1, 2], "boundary", "must be a GeoJSON object"),
    ],
)
def test_bad_geojson_is_refused_and_changes_nothing(
    client: FlaskClient,
    places: dict[str, str],
    container: Container,
    body: Any,
    field: str,
    words: str,
) -> None:
    before = stored(container, "YORK")
    events = len(audit_actions(container))
    response = client.put(f"{API}/YORK/boundary", json=body, headers=places)
    assert response.status_code == 422
    problem = response.get_json()
    assert problem["error"] == "validation_failed" and words in problem["fields"][field]
    assert problem["message"].endswith("nothing was stored.")
    after = stored(container, "YORK")
    assert after.boundary == before.boundary and after.max_lat == before.max_lat
    assert after.updated_at == before.updated_at
    assert len(audit_actions(container)) == events


def test_a_body_that_is_not_json_is_refused(client: FlaskClient, places: dict[str, str]) -> None:
    broken = client.put(
        f"{API}/YORK/boundary",
        data="{not json",
        headers={**places, "Content-Type": "application/json"},
    )
    assert broken.status_code == 400
    wrong_type = client.put(f"{API}/YORK/boundary", data="x", headers=places)
    assert wrong_type.status_code == 415


def test_removing_a_boundary(
    client: FlaskClient, places: dict[str, str], container: Container
) -> None:
    assert client.delete(f"{API}/YORK-C/boundary", headers=places).status_code == 204
    area = stored(container, "YORK-C")
    assert area.boundary is None and area.min_lon is None and area.max_lat is None
    with container.db.transaction() as session:
        # SQL NULL, not a JSON null: "no boundary" is one thing in the database.
        nulls = session.scalar(
            select(func.count()).select_from(Area).where(Area.boundary.is_(None))
        )
    assert nulls == 1
    assert client.get(f"{API}/YORK-C/boundary", headers=places).status_code == 404
    assert client.delete(f"{API}/YORK-C/boundary", headers=places).status_code == 404
    assert "area.boundary_removed" in audit_actions(container)


def test_only_admins_change_boundaries(
    client: FlaskClient, places: dict[str, str], people: People
) -> None:
    panel = people.headers("panel", Role.panel)
    assert (
        client.put(f"{API}/YORK/boundary", json=HIERARCHY[1][3], headers=panel).status_code == 403
    )
    assert client.delete(f"{API}/YORK/boundary", headers=panel).status_code == 403
    assert client.get(f"{API}/YORK/boundary", headers=panel).status_code == 200


# --- neighbours -------------------------------------------------------------------------------


def test_neighbours_are_linked_and_unlinked_both_ways(
    client: FlaskClient, places: dict[str, str], container: Container
) -> None:
    first = client.post(f"{API}/YORK/neighbours", json={"code": "selby"}, headers=places)
    assert first.status_code == 201 and first.get_json()["neighbours"] == ["SELBY"]
    again = client.post(f"{API}/YORK/neighbours", json={"code": "YORK"}, headers=places)
    assert again.status_code == 422 and "its own neighbour" in again.get_json()["fields"]["code"]
    repeat = client.post(f"{API}/SELBY/neighbours", json={"code": "YORK"}, headers=places)
    assert repeat.status_code == 200 and repeat.get_json()["neighbours"] == ["YORK"]
    unknown = client.post(f"{API}/YORK/neighbours", json={"code": "NOPE"}, headers=places)
    assert unknown.status_code == 422 and unknown.get_json()["fields"] == {
        "code.0": "unknown area code 'NOPE'"
    }
    with container.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(AreaNeighbour)) == 2
    assert client.delete(f"{API}/SELBY/neighbours/YORK", headers=places).status_code == 204
    with container.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(AreaNeighbour)) == 0
    assert client.get(f"{API}/YORK", headers=places).get_json()["neighbours"] == []
    assert client.delete(f"{API}/SELBY/neighbours/YORK", headers=places).status_code == 404
    assert audit_actions(container)[-2:] == ["area.neighbour_linked", "area.neighbour_unlinked"]


# --- point lookup -----------------------------------------------------------------------------


def test_locate_gives_the_most_specific_area_first(
    client: FlaskClient, places: dict[str, str], people: People
) -> None:
    reporter = people.headers("reporter", Role.reporter)
    lat, lon = IN_YORK_C
    found = client.get(f"{API}/locate?lat={lat}&lon={lon}", headers=reporter)
    assert found.status_code == 200
    assert [(a["code"], a["depth"]) for a in found.get_json()] == [
        ("YORK-C", 2),
        ("YORK", 1),
        ("NYORKS", 0),
    ]
    selby = client.get(f"{API}/locate?lat=53.78&lon=-1.07", headers=reporter).get_json()
    assert [a["code"] for a in selby] == ["SELBY", "NYORKS"]
    on_edge = client.get(f"{API}/locate?lat=53.97&lon=-1.08", headers=reporter).get_json()
    assert on_edge[0]["code"] == "YORK-C"
    assert client.get(f"{API}/locate?lat=51.5&lon=-0.12", headers=reporter).get_json() == []


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("lat=north&lon=-1", {"lat": "give the latitude as a number, like 53.96"}),
        ("lat=95&lon=-1", {"lat": "latitude must be between -90 and 90"}),
        ("lat=53.9", {"lon": "give the longitude, like -1.08"}),
    ],
)
def test_locate_refuses_a_bad_point(
    client: FlaskClient, admin: dict[str, str], query: str, fields: dict[str, str]
) -> None:
    response = client.get(f"{API}/locate?{query}", headers=admin)
    assert response.status_code == 422 and response.get_json()["fields"] == fields
