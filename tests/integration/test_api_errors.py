"""Bad input on every endpoint gets the contract's JSON error: never a 500, never HTML."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from ldis.domain.roles import Role
from tests.integration.cases import decided_report_via
from tests.integration.conftest import People
from tests.integration.thin_path import ALERT, AREA, NEAR_MISS

pytestmark = pytest.mark.integration

ENDPOINTS = [
    ("POST", "/api/v1/areas"),
    ("POST", "/api/v1/services"),
    ("POST", "/api/v1/services/1/contacts"),
    ("POST", "/api/v1/reports"),
    ("GET", "/api/v1/reports/1"),
    ("POST", "/api/v1/alerts"),
    ("POST", "/api/v1/alerts/1/submit"),
    ("POST", "/api/v1/alerts/1/approve"),
    ("POST", "/api/v1/alerts/1/reject"),
    ("GET", "/api/v1/alerts/1"),
]


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body: dict[str, Any] = response.get_json()
    assert body["error"] == code and body["message"] and isinstance(body["fields"], dict)
    return body


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_no_token_and_a_bad_token_are_401(client: FlaskClient, method: str, path: str) -> None:
    assert_error(client.open(path, method=method, json={}), 401, "unauthenticated")
    bad = {"Authorization": "Bearer ldis_not-a-real-token"}
    assert_error(client.open(path, method=method, json={}, headers=bad), 401, "unauthenticated")


@pytest.mark.parametrize(("method", "path"), [e for e in ENDPOINTS if "reports" not in e[1]])
def test_a_reporter_is_403_outside_reports(
    client: FlaskClient, people: People, method: str, path: str
) -> None:
    headers = people.headers("reporter", Role.reporter)
    assert_error(client.open(path, method=method, json={}, headers=headers), 403, "forbidden")


def test_unknown_api_paths_and_methods_are_json(client: FlaskClient) -> None:
    assert_error(client.get("/api/v1/nothing-here"), 404, "not_found")
    assert_error(client.delete("/api/v1/reports"), 405, "method_not_allowed")


def test_malformed_wrong_type_and_huge_bodies(client: FlaskClient, people: People) -> None:
    headers = people.headers("reporter", Role.reporter)
    broken = client.post(
        "/api/v1/reports", data="{not json", headers=headers, content_type="application/json"
    )
    assert_error(broken, 400, "bad_request")
    form = client.post("/api/v1/reports", data={"kind": "near_miss"}, headers=headers)
    assert_error(form, 415, "unsupported_media_type")
    huge = client.post(
        "/api/v1/reports",
        data=b'{"notes": "' + b"x" * 10_000_000 + b'"}',
        headers=headers,
        content_type="application/json",
    )
    assert_error(huge, 413, "too_large")
    array = client.post("/api/v1/reports", json=[1, 2], headers=headers)
    assert assert_error(array, 422, "validation_failed")["fields"] == {
        "body": "must be a JSON object"
    }


def test_validation_names_fields_and_unknown_areas(client: FlaskClient, people: People) -> None:
    headers = people.headers("reporter", Role.reporter)
    body = assert_error(
        client.post("/api/v1/reports", json={**NEAR_MISS, "naloxone_doses": -1}, headers=headers),
        422,
        "validation_failed",
    )
    assert set(body["fields"]) == {"naloxone_doses"}
    body = assert_error(
        client.post("/api/v1/reports", json={**NEAR_MISS, "area": "NOWHERE"}, headers=headers),
        422,
        "validation_failed",
    )
    assert body["fields"] == {"area": "unknown area code 'NOWHERE'"}


def test_admin_endpoints_validate(client: FlaskClient, people: People) -> None:
    admin = people.headers("admin", Role.admin)
    assert (
        client.post("/api/v1/areas", json={"code": "A1", "name": "A"}, headers=admin).status_code
        == 201
    )
    dup = client.post("/api/v1/areas", json={"code": "a1", "name": "A"}, headers=admin)
    assert_error(dup, 409, "conflict")
    bad = client.post("/api/v1/areas", json={"code": "has space", "parent": "NOPE"}, headers=admin)
    assert set(assert_error(bad, 422, "validation_failed")["fields"]) == {"code", "name"}
    orphan = client.post(
        "/api/v1/areas", json={"code": "A2", "name": "A", "parent": "NOPE"}, headers=admin
    )
    assert assert_error(orphan, 422, "validation_failed")["fields"] == {
        "parent.0": "unknown area code 'NOPE'"
    }
    svc = client.post(
        "/api/v1/services", json={"name": "S", "type": "nsp", "areas": []}, headers=admin
    )
    assert "areas" in assert_error(svc, 422, "validation_failed")["fields"]
    nobody = client.post(
        "/api/v1/services/999/contacts",
        json={"name": "C", "email": "c@example.org", "channels": ["email"]},
        headers=admin,
    )
    assert_error(nobody, 404, "not_found")
    service = client.post(
        "/api/v1/services", json={"name": "S", "type": "pharmacy", "areas": ["A1"]}, headers=admin
    ).get_json()
    landline = client.post(
        f"/api/v1/services/{service['id']}/contacts",
        json={"name": "C", "phone": "0113 496 0000", "channels": ["sms"]},
        headers=admin,
    )
    assert "landlines" in assert_error(landline, 422, "validation_failed")["fields"]["phone"]


def _awaiting(client: FlaskClient, people: People) -> tuple[int, dict[str, str]]:
    admin = people.headers("admin", Role.admin)
    client.post("/api/v1/areas", json={"code": AREA, "name": "Selby"}, headers=admin)
    drafter = people.headers("drafter", Role.panel)
    report_id = decided_report_via(client, drafter, AREA)
    alert = client.post(
        "/api/v1/alerts", json={**ALERT, "report_id": report_id}, headers=drafter
    ).get_json()
    return alert["id"], drafter


def test_alert_state_conflicts(client: FlaskClient, people: People) -> None:
    alert_id, drafter = _awaiting(client, people)
    other = people.headers("other", Role.panel)

    def approve(alert: int) -> Any:
        return client.post(
            f"/api/v1/alerts/{alert}/approve", json={"otp": people.otp("other")}, headers=other
        )

    # Approving a draft (not yet submitted) is the wrong state.
    assert_error(approve(alert_id), 409, "conflict")
    # Only an author submits their draft.
    assert_error(client.post(f"/api/v1/alerts/{alert_id}/submit", headers=other), 403, "forbidden")
    assert client.post(f"/api/v1/alerts/{alert_id}/submit", headers=drafter).status_code == 200
    assert_error(client.post(f"/api/v1/alerts/{alert_id}/submit", headers=drafter), 409, "conflict")
    no_reason = client.post(f"/api/v1/alerts/{alert_id}/reject", json={}, headers=other)
    assert "reason" in assert_error(no_reason, 422, "validation_failed")["fields"]
    rejected = client.post(
        f"/api/v1/alerts/{alert_id}/reject", json={"reason": "not confirmed"}, headers=other
    )
    assert rejected.get_json()["status"] == "rejected"
    assert_error(approve(alert_id), 409, "conflict")
    assert_error(client.get("/api/v1/alerts/999", headers=other), 404, "not_found")
    assert_error(approve(999), 404, "not_found")


def test_alert_draft_validation(client: FlaskClient, people: People) -> None:
    _, drafter = _awaiting(client, people)
    body = {**ALERT, "template": "sonnet", "areas": ["NOWHERE"]}
    fields = assert_error(
        client.post("/api/v1/alerts", json=body, headers=drafter), 422, "validation_failed"
    )["fields"]
    # Every problem is named at once, so the drafter fixes them in one go.
    assert set(fields) == {"template", "areas.0"}
    body = {**ALERT, "areas": ["NOWHERE"]}
    fields = assert_error(
        client.post("/api/v1/alerts", json=body, headers=drafter), 422, "validation_failed"
    )["fields"]
    assert fields == {"areas.0": "unknown area code 'NOWHERE'"}


def test_reporters_read_only_their_own_reports(client: FlaskClient, people: People) -> None:
    admin = people.headers("admin", Role.admin)
    client.post("/api/v1/areas", json={"code": AREA, "name": "Selby"}, headers=admin)
    mine = people.headers("alice", Role.reporter)
    theirs = people.headers("bob", Role.reporter)
    report = client.post("/api/v1/reports", json=NEAR_MISS, headers=mine).get_json()
    assert client.get(f"/api/v1/reports/{report['id']}", headers=mine).status_code == 200
    assert_error(client.get(f"/api/v1/reports/{report['id']}", headers=theirs), 404, "not_found")
    panel = people.headers("panel", Role.panel)
    assert (
        client.get(f"/api/v1/reports/{report['id']}", headers=panel).get_json()["reference"]
        == report["reference"]
    )


def test_html_pages_stay_html(client: FlaskClient) -> None:
    response = client.get("/no-such-page")
    assert response.status_code == 404 and response.mimetype == "text/html"
    assert client.get("/ack/not-a-signed-token").status_code == 404
