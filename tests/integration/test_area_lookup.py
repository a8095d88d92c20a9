"""The point lookup at work: a report giving a location alone gets the most specific area
whose boundary contains it (a near miss outside every boundary is refused, a call-out kept
without an area), and a cluster signal takes the area around its centre."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from ldis.bootstrap import Container
from ldis.domain.clusters import ClusterSettings
from ldis.domain.roles import Role
from ldis.services import clusters
from ldis.store.models import Area, Report, Signal
from tests.integration.conftest import People
from tests.integration.test_areas_api import API, HIERARCHY, IN_YORK_C

pytestmark = pytest.mark.integration


@pytest.fixture
def places(client: FlaskClient, people: People) -> None:
    admin = people.headers("admin", Role.admin)
    for code, name, parent, boundary in HIERARCHY:
        body = {"code": code, "name": name, **({"parent": parent} if parent else {})}
        assert client.post(API, json=body, headers=admin).status_code == 201
        assert client.put(f"{API}/{code}/boundary", json=boundary, headers=admin).status_code == 200


NEAR_MISS: dict[str, Any] = {
    "kind": "near_miss",
    "occurred_at": "2026-11-21T23:40:00Z",
    "location": {"lat": IN_YORK_C[0], "lon": IN_YORK_C[1]},
    "suspected_substances": ["heroin"],
    "naloxone_doses": 2,
    "outcome": "hospital",
    "source": {"type": "outreach", "name": "York outreach"},
}


def test_a_report_with_a_location_alone_gets_the_most_specific_area(
    client: FlaskClient, places: None, people: People, container: Container
) -> None:
    reporter = people.headers("outreach", Role.reporter)
    filed = client.post("/api/v1/reports", json=NEAR_MISS, headers=reporter)
    assert filed.status_code == 201, filed.get_json()
    assert filed.get_json()["area"] == "YORK-C"
    report_id = filed.get_json()["id"]
    assert (
        client.get(f"/api/v1/reports/{report_id}", headers=reporter).get_json()["area"] == "YORK-C"
    )
    resend = client.post("/api/v1/reports", json=NEAR_MISS, headers=reporter)
    assert resend.status_code == 200 and resend.get_json()["id"] == report_id
    given = client.post("/api/v1/reports", json={**NEAR_MISS, "area": "SELBY"}, headers=reporter)
    assert given.status_code == 201 and given.get_json()["area"] == "SELBY"  # as given


def test_a_location_outside_every_area_is_refused_for_a_near_miss(
    client: FlaskClient, places: None, people: People, container: Container
) -> None:
    reporter = people.headers("outreach", Role.reporter)
    london = {**NEAR_MISS, "location": {"lat": 51.5, "lon": -0.12}}
    response = client.post("/api/v1/reports", json=london, headers=reporter)
    assert response.status_code == 422
    assert response.get_json()["fields"] == {
        "area": "no area's boundary contains the location (51.5, -0.12); give the area code"
    }
    with container.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Report)) == 0


def test_callouts_get_areas_from_their_location_and_keep_none_outside(
    client: FlaskClient, places: None, people: People, container: Container
) -> None:
    reporter = people.headers("ambulance", Role.reporter)
    batch = [
        {"occurred_at": "2026-11-20T10:00:00Z", "location": {"lat": 53.78, "lon": -1.07}},
        {"occurred_at": "2026-11-20T11:00:00Z", "location": {"lat": 51.5, "lon": -0.12}},
        {
            "occurred_at": "2026-11-20T12:00:00Z",
            "location": {"lat": 53.78, "lon": -1.07},
            "area": "YORK",
        },
    ]
    body = client.post(
        "/api/v1/callouts",
        json={"source": {"type": "ambulance"}, "callouts": batch},
        headers=reporter,
    ).get_json()
    assert body == {"accepted": 3, "duplicates": 0, "rejected": []}
    with container.db.transaction() as session:
        areas = session.execute(
            select(Area.code).select_from(Report).outerjoin(Area).order_by(Report.id)
        ).scalars()
        assert list(areas) == ["SELBY", None, "YORK"]


def test_a_cluster_signal_takes_the_area_containing_its_centre(
    client: FlaskClient, places: None, people: People, container: Container
) -> None:
    reporter = people.headers("ambulance", Role.reporter)
    start = datetime.now(UTC) - timedelta(hours=10)
    # Call-outs in York Central, all (wrongly) filed as Selby: the detector's own choice of
    # area would be Selby; the boundary around the cluster's centre says York Central.
    burst = [
        {
            "occurred_at": (start + timedelta(hours=1.5 * n)).isoformat(),
            "area": "SELBY",
            "location": {"lat": 53.958 + 0.001 * (n % 3), "lon": -1.081 + 0.001 * (n % 2)},
            "source": {"type": "ambulance", "name": "YAS", "reference": f"INC-{n}"},
        }
        for n in range(7)
    ]
    assert client.post("/api/v1/callouts", json=burst, headers=reporter).get_json()["accepted"] == 7
    assert clusters.recompute(container.db, ClusterSettings()) >= 1
    with container.db.transaction() as session:
        found = session.execute(
            select(Signal.details, Area.code)
            .join(Area, Area.id == Signal.area_id)
            .where(Signal.kind == "cluster")
        ).all()
    spacetime = [code for details, code in found if details.get("method") == "spacetime"]
    assert spacetime and set(spacetime) == {"YORK-C"}
