"""Reports through the JSON API: every kind, the vocabulary, the privacy guard, duplicates,
batches that keep good rows, updates, and the panel's filters; all against PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from ldis.bootstrap import Container
from ldis.domain.roles import Role
from ldis.domain.substances import Vocabulary
from ldis.store.models import Report, ReportSubstance
from tests.integration.conftest import People
from tests.integration.thin_path import AREA, NEAR_MISS

pytestmark = pytest.mark.integration

DRUG_CHECK: dict[str, Any] = {
    "kind": "drug_checking",
    "area": AREA,
    "sample_obtained_on": "2026-11-20",
    "sold_as": "oxycodone",
    "form": "tablet",
    "appearance": {"colour": "green", "shape": "round", "markings": "OC 80"},
    "results": [
        {"substance": "Protonitazepyne", "method": "lc-ms", "abundance": "primary"},
        {"substance": "caffeine", "method": "lc-ms", "abundance": "trace"},
        {"substance": "zorbazine", "method": "ftir", "abundance": "trace"},
    ],
    "source": {"type": "drug_checking_service", "name": "Lab", "reference": "S-001"},
}


@pytest.fixture
def reporter(client: FlaskClient, people: People) -> dict[str, str]:
    admin = people.headers("admin", Role.admin)
    assert (
        client.post(
            "/api/v1/areas", json={"code": "NYORKS", "name": "N Yorks"}, headers=admin
        ).status_code
        == 201
    )
    area = {"code": AREA, "name": "Selby", "parent": "NYORKS"}
    assert client.post("/api/v1/areas", json=area, headers=admin).status_code == 201
    return people.headers("lab", Role.reporter)


def test_drug_checking_result_is_normalised_against_the_vocabulary(
    client: FlaskClient, reporter: dict[str, str]
) -> None:
    response = client.post("/api/v1/reports", json=DRUG_CHECK, headers=reporter)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["reference"].startswith("R-") and body["red_list"] is True
    by_written = {s["written"]: s for s in body["substances"]}
    same = Vocabulary.load_default().lookup("N-pyrrolidino protonitazene").canonical
    assert same and by_written["Protonitazepyne"]["canonical"] == same
    assert by_written["Protonitazepyne"]["class"] == "nitazene"
    assert by_written["caffeine"]["red_list"] is False
    unknown = by_written["zorbazine"]
    assert unknown["known"] is False and unknown["canonical"] is None  # kept, flagged
    assert body["results"][2]["substance"] == "zorbazine"


def test_same_source_reference_is_a_duplicate_not_a_second_report(
    client: FlaskClient, reporter: dict[str, str], container: Container
) -> None:
    first = client.post("/api/v1/reports", json=DRUG_CHECK, headers=reporter)
    again = client.post("/api/v1/reports", json={**DRUG_CHECK, "notes": "resent"}, headers=reporter)
    assert first.status_code == 201 and again.status_code == 200
    assert again.get_json()["duplicate"] is True
    assert again.get_json()["id"] == first.get_json()["id"]
    with container.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Report)) == 1


def test_same_content_within_minutes_is_a_duplicate(
    client: FlaskClient, reporter: dict[str, str]
) -> None:
    first = client.post("/api/v1/reports", json=NEAR_MISS, headers=reporter)
    again = client.post("/api/v1/reports", json=NEAR_MISS, headers=reporter)
    other = client.post(
        "/api/v1/reports", json={**NEAR_MISS, "naloxone_doses": 3}, headers=reporter
    )
    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 201)
    assert again.get_json()["id"] == first.get_json()["id"]


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"notes": "<script>alert(1)</script>"}, "notes", "script"),
        ({"notes": "Seen with Mr Smith, call 07911 123456"}, "notes", "phone"),
        ({"notes": "his email is joe@example.com"}, "notes", "e-mail"),
        ({"occurred_at": "1999-12-31T23:00:00Z"}, "occurred_at", "2000"),
        (
            {"occurred_at": (datetime.now(UTC) + timedelta(days=2)).isoformat()},
            "occurred_at",
            "future",
        ),
        ({"area": "ATLANTIS"}, "area", "unknown area"),
        ({"naloxone_doses": "two"}, "naloxone_doses", "integer"),
    ],
)
def test_bad_reports_name_the_field_and_store_nothing(
    client: FlaskClient,
    reporter: dict[str, str],
    container: Container,
    change: dict[str, Any],
    field: str,
    words: str,
) -> None:
    response = client.post("/api/v1/reports", json={**NEAR_MISS, **change}, headers=reporter)
    assert response.status_code == 422, response.get_json()
    fields = response.get_json()["fields"]
    assert field in fields and words.lower() in fields[field].lower(), fields
    with container.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Report)) == 0


def test_callout_batch_keeps_good_rows_and_reports_bad_ones_by_index(
    client: FlaskClient, reporter: dict[str, str], container: Container
) -> None:
    batch = {
        "source": {"type": "ambulance", "name": "YAS"},
        "callouts": [
            {
                "occurred_at": "2026-11-01T02:10:00Z",
                "location": {"lat": 53.78, "lon": -1.07},
                "naloxone_given": True,
                "reference": "ignored-field",
            },
            {
                "occurred_at": "2026-11-01T02:10:00Z",
                "location": {"lat": 53.78, "lon": -1.07},
                "naloxone_given": True,
                "source": {"type": "ambulance", "reference": "INC-2"},
            },
            {"occurred_at": "not a date", "area": AREA},
            {"occurred_at": "2026-11-02", "area": "NOWHERE"},
            {"occurred_at": "2026-11-02", "area": AREA, "naloxone_given": ""},
            "not an object",
        ],
    }
    response = client.post("/api/v1/callouts", json=batch, headers=reporter)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["accepted"] == 2 and body["duplicates"] == 0
    rejected = {r["index"]: r["fields"] for r in body["rejected"]}
    assert set(rejected) == {0, 2, 3, 5}
    assert "reference" in rejected[0]  # unknown fields are refused, not dropped
    assert "occurred_at" in rejected[2] and "area" in rejected[3]
    again = client.post("/api/v1/callouts", json=batch, headers=reporter).get_json()
    assert again["accepted"] == 0 and again["duplicates"] == 2
    with container.db.transaction() as session:
        kinds = list(session.scalars(select(Report.kind)))
        assert kinds == ["callout", "callout"]


def test_updates_only_by_the_filer(
    client: FlaskClient, reporter: dict[str, str], people: People
) -> None:
    report = client.post("/api/v1/reports", json=NEAR_MISS, headers=reporter).get_json()
    path = f"/api/v1/reports/{report['id']}/updates"
    ok = client.post(path, json={"text": "Lab confirmed metonitazene."}, headers=reporter)
    assert (
        ok.status_code == 201
        and ok.get_json()["updates"][0]["text"] == "Lab confirmed metonitazene."
    )
    stranger = people.headers("other", Role.reporter)
    assert client.post(path, json={"text": "x"}, headers=stranger).status_code == 404
    personal = client.post(path, json={"text": "DOB 01/02/1990"}, headers=reporter)
    assert personal.status_code == 422 and "date of birth" in personal.get_json()["fields"]["text"]


def test_panel_filters(client: FlaskClient, reporter: dict[str, str], people: People) -> None:
    client.post("/api/v1/reports", json=DRUG_CHECK, headers=reporter)
    client.post("/api/v1/reports", json=NEAR_MISS, headers=reporter)
    panel = people.headers("panel", Role.panel)

    def ids(query: str) -> list[str]:
        response = client.get(f"/api/v1/reports?{query}", headers=panel)
        assert response.status_code == 200, response.get_json()
        return [r["kind"] for r in response.get_json()["reports"]]

    assert sorted(ids("")) == ["drug_checking", "near_miss"]
    assert ids("kind=near_miss") == ["near_miss"]
    assert ids("red_list=true") == ["drug_checking"]
    assert ids("substance=n-pyrrolidino%20protonitazene") == ["drug_checking"]
    assert ids("substance=protonitazepine") == ["drug_checking"]
    assert sorted(ids("area=NYORKS")) == [
        "drug_checking",
        "near_miss",
    ]  # a parent covers its children
    assert ids("since=2026-11-21") == ["near_miss"]
    bad = client.get("/api/v1/reports?since=yesterday&limit=0", headers=panel)
    assert bad.status_code == 422 and set(bad.get_json()["fields"]) == {"since", "limit"}
    # A reporter lists only their own.
    assert (
        client.get("/api/v1/reports", headers=people.headers("other", Role.reporter)).get_json()[
            "reports"
        ]
        == []
    )


def test_admins_extend_the_vocabulary(
    client: FlaskClient, reporter: dict[str, str], people: People, container: Container
) -> None:
    admin = people.headers("admin")
    entry = {"name": "Zorbazine", "class": "nitazene", "red_list": True, "synonyms": ["zorba"]}
    assert client.post("/api/v1/substances", json=entry, headers=admin).status_code == 201
    assert client.post("/api/v1/substances", json=entry, headers=admin).status_code == 409
    clash = {"name": "Fakeitol", "class": "opioid", "synonyms": ["heroin"]}
    assert client.post("/api/v1/substances", json=clash, headers=admin).status_code == 422
    body = client.post("/api/v1/reports", json=DRUG_CHECK, headers=reporter).get_json()
    zorba = next(s for s in body["substances"] if s["written"] == "zorbazine")
    assert zorba["canonical"] == "Zorbazine" and zorba["red_list"] is True
    with container.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(ReportSubstance)) == 3
