"""Service types and services through the JSON API against PostgreSQL: admins manage all,
a service's manager only theirs (another service is a 404), retired types, filters,
managers, and the yearly confirmation."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from ldis.bootstrap import Container
from ldis.domain.roles import Role
from ldis.store.models import AuditEvent, Service, User
from tests.integration.conftest import People

pytestmark = pytest.mark.integration

API = "/api/v1"


class NoticeQueue:
    """Stands in for the broker: records the notices a use case enqueues after its commit.
    Without it a session's worker would send them while the test (or the table clean-up
    after it) still runs."""

    def __init__(self) -> None:
        self.notices: list[int] = []

    def enqueue_notices(self, notice_ids: list[int], *, countdown: float = 0) -> None:
        self.notices.extend(notice_ids)

    def enqueue_fan_out(self, alert_id: int, version: int, *, urgent: bool) -> None:
        return None

    def enqueue_deliveries(
        self, delivery_ids: list[int], *, urgent: bool, countdown: float = 0
    ) -> None:
        return None

    def enqueue_cluster_detection(self, report_ids: list[int]) -> None:
        return None

    def ping(self) -> None:
        return None


@pytest.fixture(autouse=True)
def notice_queue(
    request: pytest.FixtureRequest, container: Container, monkeypatch: pytest.MonkeyPatch
) -> NoticeQueue:
    """Every test here records notices instead of sending them, unless it runs the worker."""
    queue = NoticeQueue()
    if "worker" not in request.fixturenames:
        monkeypatch.setattr(container, "queue", queue)
    return queue


def count(container: Container, model: Any) -> int:
    with container.db.transaction() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


@pytest.fixture
def admin(client: FlaskClient, people: People) -> dict[str, str]:
    headers = people.headers("admin", Role.admin)
    for area in (
        {"code": "NYORKS", "name": "North Yorkshire"},
        {"code": "YORK", "name": "York", "parent": "NYORKS"},
        {"code": "YORK-C", "name": "York city centre", "parent": "YORK"},
        {"code": "SELBY", "name": "Selby", "parent": "NYORKS"},
        {"code": "LEEDS", "name": "Leeds"},
    ):
        assert client.post(f"{API}/areas", json=area, headers=headers).status_code == 201
    return headers


def add_service(client: FlaskClient, admin: dict[str, str], **body: Any) -> dict[str, Any]:
    payload = {"name": "York NSP", "type": "needle_syringe_programme", "areas": ["YORK-C"]}
    response = client.post(f"{API}/services", json={**payload, **body}, headers=admin)
    assert response.status_code == 201, response.get_json()
    result: dict[str, Any] = response.get_json()
    return result


def make_manager(
    client: FlaskClient, people: People, admin: dict[str, str], service_id: int, name: str
) -> dict[str, str]:
    headers = people.headers(name, Role.reporter)
    response = client.post(
        f"{API}/services/{service_id}/managers",
        json={"email": f"{name.upper()}@example.org"},
        headers=admin,
    )
    assert response.status_code == 201, response.get_json()
    return headers


def test_service_types_are_a_managed_list(
    client: FlaskClient, admin: dict[str, str], people: People, container: Container
) -> None:
    reporter = people.headers("reporter", Role.reporter)
    listed = client.get(f"{API}/service-types", headers=reporter)
    assert listed.status_code == 200
    codes = {t["code"] for t in listed.get_json()}
    assert {"pharmacy", "emergency_department"} <= codes

    new = {"code": "Sexual_Health", "label": "Sexual health clinic"}
    assert client.post(f"{API}/service-types", json=new, headers=reporter).status_code == 403
    created = client.post(f"{API}/service-types", json=new, headers=admin)
    assert created.status_code == 201
    assert created.get_json() == {
        "code": "sexual_health",
        "label": "Sexual health clinic",
        "active": True,
        "services": 0,
    }
    again = client.post(f"{API}/service-types", json=new, headers=admin)
    assert again.status_code == 409 and again.get_json()["fields"] == {
        "code": "already exists; change its label instead"
    }
    bad = client.post(
        f"{API}/service-types", json={"code": "no spaces", "label": ""}, headers=admin
    )
    assert bad.status_code == 422 and set(bad.get_json()["fields"]) == {"code", "label"}

    renamed = client.patch(
        f"{API}/service-types/sexual_health", json={"label": "Sexual health"}, headers=admin
    )
    assert renamed.status_code == 200 and renamed.get_json()["label"] == "Sexual health"
    missing = client.patch(f"{API}/service-types/nothing", json={"active": False}, headers=admin)
    assert missing.status_code == 404
    events = count(container, AuditEvent)
    assert (
        client.patch(f"{API}/service-types/pharmacy", json={"x": 1}, headers=admin).status_code
        == 422
    )
    assert count(container, AuditEvent) == events


def test_a_retired_type_stays_on_services_but_cannot_be_chosen(
    client: FlaskClient, admin: dict[str, str]
) -> None:
    service = add_service(client, admin, type="pharmacy")
    retired = client.patch(f"{API}/service-types/pharmacy", json={"active": False}, headers=admin)
    assert retired.get_json() == {
        "code": "pharmacy",
        "label": "Pharmacy",
        "active": False,
        "services": 1,
    }
    refused = client.post(
        f"{API}/services", json={"name": "P2", "type": "pharmacy", "areas": ["YORK"]}, headers=admin
    )
    assert refused.status_code == 422
    message = refused.get_json()["fields"]["type"]
    assert (
        message.startswith("'pharmacy' is retired; use one of: ")
        and "emergency_department" in message
    )
    assert "pharmacy," not in message

    kept = client.get(f"{API}/services/{service['id']}", headers=admin).get_json()
    assert kept["type"] == "pharmacy"
    # Saving a change with the same retired type is fine; moving to it from another is not.
    same = client.patch(
        f"{API}/services/{service['id']}", json={"type": "pharmacy", "name": "P"}, headers=admin
    )
    assert same.status_code == 200 and same.get_json()["name"] == "P"
    other = add_service(client, admin, name="Other", type="hostel")
    moved = client.patch(f"{API}/services/{other['id']}", json={"type": "pharmacy"}, headers=admin)
    assert moved.status_code == 422 and "retired" in moved.get_json()["fields"]["type"]
    active_only = client.get(f"{API}/service-types?active=true", headers=admin).get_json()
    assert "pharmacy" not in {t["code"] for t in active_only}


def test_create_a_service_with_levels_kinds_and_ref(
    client: FlaskClient, admin: dict[str, str], container: Container
) -> None:
    contract = add_service(client, admin)
    assert {"id", "name", "type", "areas"} <= set(contract)
    assert contract["alert_levels"] == ["professional", "public"]
    assert contract["alert_kinds"] == [] and contract["reachable"] is False
    assert contract["contacts"] == {"total": 0, "reachable": 0, "pending_verification": 0}

    full = add_service(
        client,
        admin,
        name="York ED",
        type="emergency_department",
        areas=["york", "SELBY", "YORK"],
        ref="ED-1",
        alert_levels=["professional"],
        alert_kinds=["drug_alert", "cluster"],
    )
    assert full["areas"] == ["YORK", "SELBY"] and full["ref"] == "ED-1"
    assert (full["alert_levels"], full["alert_kinds"]) == (
        ["professional"],
        ["drug_alert", "cluster"],
    )

    before = count(container, Service)
    bad_bodies: list[tuple[dict[str, Any], str]] = [
        ({"type": "spaceship"}, "type"),
        ({"areas": ["NOWHERE"]}, "areas.0"),
        ({"areas": []}, "areas"),
        ({"alert_levels": ["everyone"]}, "alert_levels.0"),
        ({"alert_kinds": ["gossip"]}, "alert_kinds.0"),
        ({"colour": "red"}, "colour"),
    ]
    for body, field in bad_bodies:
        response = client.post(
            f"{API}/services",
            json={"name": "X", "type": "pharmacy", "areas": ["YORK"], **body},
            headers=admin,
        )
        assert response.status_code == 422, body
        assert field in response.get_json()["fields"], response.get_json()
    unknown = client.post(
        f"{API}/services", json={"name": "X", "type": "spaceship", "areas": ["YORK"]}, headers=admin
    ).get_json()["fields"]["type"]
    assert "is not a service type; use one of:" in unknown and "pharmacy" in unknown
    taken = client.post(
        f"{API}/services",
        json={"name": "X", "type": "pharmacy", "areas": ["YORK"], "ref": "ED-1"},
        headers=admin,
    )
    assert taken.status_code == 409 and taken.get_json()["fields"] == {
        "ref": "another service already has this ref"
    }
    assert count(container, Service) == before


def test_admin_lists_and_filters_services(client: FlaskClient, admin: dict[str, str]) -> None:
    nsp = add_service(client, admin, name="York NSP", areas=["YORK-C"])
    county = add_service(
        client, admin, name="County ED", type="emergency_department", areas=["NYORKS"]
    )
    leeds = add_service(client, admin, name="Leeds hostel", type="hostel", areas=["LEEDS"])

    def names(query: str) -> list[str]:
        response = client.get(f"{API}/services{query}", headers=admin)
        assert response.status_code == 200, response.get_json()
        return [s["name"] for s in response.get_json()]

    assert names("") == ["County ED", "Leeds hostel", "York NSP"]
    assert names("?type=hostel") == [leeds["name"]]
    # An area's filter includes services covering places inside it.
    assert names("?area=york") == [nsp["name"]]
    assert names("?area=NYORKS") == [county["name"], nsp["name"]]
    assert names("?area=NYORKS&type=emergency_department") == [county["name"]]
    bad_area = client.get(f"{API}/services?area=ATLANTIS", headers=admin)
    assert bad_area.status_code == 422 and "area" in bad_area.get_json()["fields"]
    assert client.get(f"{API}/services?type=spaceship", headers=admin).status_code == 422


def test_a_manager_sees_and_changes_only_their_service(
    client: FlaskClient, admin: dict[str, str], people: People, container: Container
) -> None:
    mine = add_service(client, admin, name="Mine", ref="M-1")
    theirs = add_service(client, admin, name="Theirs")
    manager = make_manager(client, people, admin, mine["id"], "manager")

    listed = client.get(f"{API}/services", headers=manager).get_json()
    assert [s["id"] for s in listed] == [mine["id"]]
    detail = client.get(f"{API}/services/{mine['id']}", headers=manager).get_json()
    assert detail["managers"] == [
        {"id": people.ids["manager"], "name": "Manager", "email": "manager@example.org"}
    ]
    assert detail["confirmed_at"] is None

    for method, path, body in [
        ("GET", f"/services/{theirs['id']}", None),
        ("PATCH", f"/services/{theirs['id']}", {"name": "Hacked"}),
        ("POST", f"/services/{theirs['id']}/confirm", None),
        ("GET", f"/services/{theirs['id']}/contacts", None),
        (
            "POST",
            f"/services/{theirs['id']}/contacts",
            {"name": "X", "email": "x@example.org", "channels": ["email"]},
        ),
        ("GET", "/services/99999", None),
    ]:
        response = client.open(f"{API}{path}", method=method, json=body, headers=manager)
        assert response.status_code == 404, (method, path, response.get_json())
    assert (
        client.post(
            f"{API}/services",
            json={"name": "N", "type": "pharmacy", "areas": ["YORK"]},
            headers=manager,
        ).status_code
        == 403
    )

    changed = client.patch(
        f"{API}/services/{mine['id']}",
        json={"name": "Mine, renamed", "areas": ["YORK", "SELBY"], "alert_kinds": ["drug_alert"]},
        headers=manager,
    )
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["areas"] == ["YORK", "SELBY"]
    ref = client.patch(f"{API}/services/{mine['id']}", json={"ref": "M-2"}, headers=manager)
    assert ref.status_code == 403
    assert client.get(f"{API}/services/{mine['id']}", headers=manager).get_json()["ref"] == "M-1"
    cleared = client.patch(f"{API}/services/{mine['id']}", json={"name": None}, headers=manager)
    assert cleared.status_code == 422 and "name" in cleared.get_json()["fields"]
    with container.db.transaction() as session:
        actions = list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
        change = session.scalar(select(AuditEvent).where(AuditEvent.action == "service.changed"))
        assert change is not None
        assert change.detail == {"fields": ["name", "areas", "alert_kinds"]}
    assert actions.count("service.changed") == 1


def test_managers_are_added_with_the_role_and_removed(
    client: FlaskClient, admin: dict[str, str], people: People, container: Container
) -> None:
    service = add_service(client, admin)
    people.headers("nurse", Role.panel)
    unknown = client.post(
        f"{API}/services/{service['id']}/managers",
        json={"email": "ghost@example.org"},
        headers=admin,
    )
    assert (
        unknown.status_code == 422
        and "create the user first" in unknown.get_json()["fields"]["email"]
    )
    bad = client.post(
        f"{API}/services/{service['id']}/managers", json={"email": "nope"}, headers=admin
    )
    assert bad.status_code == 422 and "email" in bad.get_json()["fields"]

    added = client.post(
        f"{API}/services/{service['id']}/managers",
        json={"email": "Nurse@Example.org"},
        headers=admin,
    )
    assert added.status_code == 201
    nurse_id = people.ids["nurse"]
    assert [m["id"] for m in added.get_json()["managers"]] == [nurse_id]
    with container.db.transaction() as session:
        user = session.get(User, nurse_id)
        assert user is not None and user.role_names == {"panel", "service_manager"}
        event = session.scalar(
            select(AuditEvent).where(AuditEvent.action == "service.manager_added")
        )
        assert event is not None and event.detail == {"user_id": nurse_id, "role_granted": True}
    twice = client.post(
        f"{API}/services/{service['id']}/managers",
        json={"email": "nurse@example.org"},
        headers=admin,
    )
    assert twice.status_code == 409
    nurse = people.headers("nurse")
    assert client.get(f"{API}/services/{service['id']}", headers=nurse).status_code == 200
    assert (
        client.delete(
            f"{API}/services/{service['id']}/managers/{nurse_id}", headers=nurse
        ).status_code
        == 403
    )

    removed = client.delete(f"{API}/services/{service['id']}/managers/{nurse_id}", headers=admin)
    assert removed.status_code == 200 and removed.get_json()["managers"] == []
    assert client.get(f"{API}/services/{service['id']}", headers=nurse).status_code == 404
    assert (
        client.delete(
            f"{API}/services/{service['id']}/managers/{nurse_id}", headers=admin
        ).status_code
        == 404
    )


def test_confirming_the_details_records_the_review(
    client: FlaskClient, admin: dict[str, str], people: People, container: Container
) -> None:
    service = add_service(client, admin)
    manager = make_manager(client, people, admin, service["id"], "manager")
    with container.db.transaction() as session:
        row = session.get(Service, service["id"])
        assert row is not None
        row.review_reminded_at = row.created_at
    confirmed = client.post(f"{API}/services/{service['id']}/confirm", headers=manager)
    assert confirmed.status_code == 200
    body = confirmed.get_json()
    assert body["confirmed_at"] is not None and body["review_reminded_at"] is None
    with container.db.transaction() as session:
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "service.confirmed"))
        assert event is not None and event.actor_id == people.ids["manager"]
