"""Contacts through the JSON API against PostgreSQL: numbers in E.164 (UK mobiles only), real
e-mail addresses, duplicates refused naming the field with nothing written, per-channel
state, changes, and removal that erases the person but keeps the delivery history."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from ldis.bootstrap import Container
from ldis.domain.roles import Role
from ldis.services import contacts
from ldis.store.models import (
    AuditEvent,
    Contact,
    ContactChannel,
    ContactUnsubscription,
    Notice,
)
from tests.integration.conftest import People
from tests.integration.test_services_api import (  # noqa: F401  (notice_queue: autouse)
    NoticeQueue,
    add_service,
    make_manager,
    notice_queue,
)

pytestmark = pytest.mark.integration

API = "/api/v1"
PERSON = {
    "name": "Duty worker",
    "email": "Duty@Example.org",
    "phone": "07700 900123",
    "channels": ["sms", "email"],
}


def count(container: Container, model: Any) -> int:
    with container.db.transaction() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


@pytest.fixture
def admin(client: FlaskClient, people: People) -> dict[str, str]:
    headers = people.headers("admin", Role.admin)
    for area in ({"code": "YORK", "name": "York"}, {"code": "SELBY", "name": "Selby"}):
        assert client.post(f"{API}/areas", json=area, headers=headers).status_code == 201
    return headers


@pytest.fixture
def service(client: FlaskClient, admin: dict[str, str]) -> dict[str, Any]:
    return add_service(client, admin, name="York NSP", areas=["YORK"])


def post_contact(client: FlaskClient, headers: dict[str, str], service_id: int, **body: Any) -> Any:
    return client.post(
        f"{API}/services/{service_id}/contacts", json={**PERSON, **body}, headers=headers
    )


def test_admin_adds_a_contact_whose_channels_await_verification(
    client: FlaskClient,
    admin: dict[str, str],
    service: dict[str, Any],
    container: Container,
    notice_queue: NoticeQueue,  # noqa: F811  (the autouse fixture, imported above)
) -> None:
    response = post_contact(
        client, admin, service["id"], role="backup", quiet_hours={"start": "22:00", "end": "07:00"}
    )
    assert response.status_code == 201, response.get_json()
    view = response.get_json()
    assert view["phone"] == "+447700900123" and view["email"] == "Duty@example.org"
    assert (view["role"], view["quiet_hours"]) == ("backup", {"start": "22:00", "end": "07:00"})
    assert view["channels"] == ["sms", "email"]
    assert view["verified"] == {"sms": False, "email": False}
    for channel in ("sms", "email"):
        state = view["channel_status"][channel]
        assert state["status"] == "pending" and state["pending_verification"] is True
        assert not state["verified"] and not state["opted_out"] and not state["failed"]
    assert view["reachable"] is False
    with container.db.transaction() as session:
        queued = session.execute(select(Notice.purpose, Notice.recipient, Notice.status)).all()
        notice_ids = list(session.scalars(select(Notice.id)))
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "contact.created"))
    assert sorted(queued) == [
        ("verify_email", "Duty@example.org", "queued"),
        ("verify_sms", "+447700900123", "queued"),
    ]
    # Both go to the broker once the contact is committed.
    assert sorted(notice_queue.notices) == sorted(notice_ids)
    assert event is not None and event.detail == {
        "service_id": service["id"],
        "channels": ["sms", "email"],
        "verified_by_admin": False,
    }
    # The audit log never holds contact details.
    assert "Duty" not in str(event.detail) and "7700" not in str(event.detail)

    listed = client.get(f"{API}/services/{service['id']}/contacts", headers=admin).get_json()
    assert [c["id"] for c in listed] == [view["id"]]
    summary = client.get(f"{API}/services/{service['id']}", headers=admin).get_json()["contacts"]
    assert summary == {"total": 1, "reachable": 0, "pending_verification": 1}


def test_admin_may_mark_channels_verified_a_manager_may_not(
    client: FlaskClient,
    admin: dict[str, str],
    service: dict[str, Any],
    people: People,
    container: Container,
) -> None:
    manager = make_manager(client, people, admin, service["id"], "manager")
    refused = post_contact(client, manager, service["id"], verified=True)
    assert refused.status_code == 403
    assert count(container, Contact) == 0

    verified = post_contact(client, admin, service["id"], verified=True)
    assert verified.status_code == 201
    assert verified.get_json()["verified"] == {"sms": True, "email": True}
    assert verified.get_json()["reachable"] is True
    assert count(container, Notice) == 0, "an admin-verified list is sent no codes"

    by_manager = post_contact(
        client,
        manager,
        service["id"],
        name="B",
        email="b@example.org",
        phone=None,
        channels=["email"],
    )
    assert by_manager.status_code == 201
    assert by_manager.get_json()["channel_status"]["email"]["status"] == "pending"


def test_duplicates_are_refused_naming_the_field_and_nothing_is_written(
    client: FlaskClient, admin: dict[str, str], service: dict[str, Any], container: Container
) -> None:
    assert post_contact(client, admin, service["id"]).status_code == 201
    before = (count(container, Contact), count(container, Notice), count(container, AuditEvent))
    same_email = post_contact(
        client, admin, service["id"], name="Other", phone="07700 900999", email="duty@example.org"
    )
    assert same_email.status_code == 409
    assert same_email.get_json()["fields"] == {
        "email": "a contact with this e-mail address is already at this service"
    }
    same_phone = post_contact(
        client, admin, service["id"], name="Other", email="other@example.org", phone="+447700900123"
    )
    assert same_phone.status_code == 409 and set(same_phone.get_json()["fields"]) == {"phone"}
    both = post_contact(client, admin, service["id"], name="Again")
    assert set(both.get_json()["fields"]) == {"email", "phone"}
    after = (count(container, Contact), count(container, Notice), count(container, AuditEvent))
    assert after == before

    # The same person at another service is a different contact, and fine.
    other = add_service(client, admin, name="Selby NSP", areas=["SELBY"])
    assert post_contact(client, admin, other["id"]).status_code == 201


def test_a_duplicate_that_slips_past_the_check_is_caught_by_the_index(
    client: FlaskClient,
    admin: dict[str, str],
    service: dict[str, Any],
    container: Container,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert post_contact(client, admin, service["id"]).status_code == 201
    # As if a concurrent request had added the same address after our check.
    monkeypatch.setattr(contacts, "_refuse_duplicates", lambda *a, **k: None)
    raced = post_contact(client, admin, service["id"], name="Racer", phone="07700 900555")
    assert raced.status_code == 409, raced.get_json()
    assert set(raced.get_json()["fields"]) == {"email"}
    assert count(container, Contact) == 1


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("phone", "+1 202 555 0143", "must be a UK mobile number"),
        ("phone", "+33 6 12 34 56 78", "must be a UK mobile number"),
        ("phone", "0113 496 0000", "landlines cannot receive text messages"),
        ("phone", "call me maybe", "is not a phone number"),
        ("phone", "07911", "is not a valid phone number"),
        ("email", "duty@", "email"),
        ("email", "not an address", "email"),
    ],
)
def test_bad_numbers_and_addresses_are_refused(
    client: FlaskClient,
    admin: dict[str, str],
    service: dict[str, Any],
    container: Container,
    field: str,
    value: str,
    expected: str,
) -> None:
    response = post_contact(client, admin, service["id"], **{field: value})
    assert response.status_code == 422
    fields = response.get_json()["fields"]
    assert set(fields) == {field}
    assert expected in fields[field] or field == "email"
    assert (count(container, Contact), count(container, Notice)) == (0, 0)


def test_a_channel_needs_its_address(
    client: FlaskClient, admin: dict[str, str], service: dict[str, Any]
) -> None:
    response = post_contact(client, admin, service["id"], phone=None)
    assert response.status_code == 422
    assert response.get_json()["fields"] == {"channels": "sms needs a mobile number in phone"}
    bad_quiet = post_contact(client, admin, service["id"], quiet_hours={"start": "22:00"})
    assert "quiet_hours.end" in bad_quiet.get_json()["fields"]


def test_change_a_contact(
    client: FlaskClient, admin: dict[str, str], service: dict[str, Any], container: Container
) -> None:
    quiet = {"start": "23:00", "end": "06:30"}
    created = post_contact(client, admin, service["id"], verified=True, quiet_hours=quiet)
    path = f"{API}/contacts/{created.get_json()['id']}"
    renamed = client.patch(
        path, json={"name": "Night duty", "role": "backup", "quiet_hours": None}, headers=admin
    )
    assert renamed.status_code == 200
    view = renamed.get_json()
    assert (view["name"], view["role"], view["quiet_hours"]) == ("Night duty", "backup", None)
    assert view["verified"] == {"sms": True, "email": True}, "no address changed"
    assert count(container, Notice) == 0

    dropped = client.patch(path, json={"channels": ["email"], "phone": None}, headers=admin)
    assert dropped.status_code == 200, dropped.get_json()
    assert dropped.get_json()["channels"] == ["email"] and dropped.get_json()["phone"] is None

    refused = client.patch(path, json={"email": None}, headers=admin)
    assert refused.status_code == 422
    assert refused.get_json()["fields"] == {"channels": "email needs an address in email"}
    cleared = client.patch(path, json={"channels": None}, headers=admin)
    assert cleared.status_code == 422 and "channels" in cleared.get_json()["fields"]
    bad = client.patch(path, json={"phone": "+1 202 555 0143"}, headers=admin)
    assert bad.status_code == 422 and "phone" in bad.get_json()["fields"]

    other = post_contact(
        client, admin, service["id"], name="Other", email="other@example.org", phone="07700 900777"
    ).get_json()
    clash = client.patch(
        f"{API}/contacts/{other['id']}", json={"email": "duty@example.org"}, headers=admin
    )
    assert clash.status_code == 409 and set(clash.get_json()["fields"]) == {"email"}
    with container.db.transaction() as session:
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "contact.changed").order_by(AuditEvent.id)
        ).first()
        assert event is not None and event.detail == {
            "service_id": service["id"],
            "fields": ["name", "role", "quiet_hours"],
            "channels_added": [],
            "channels_removed": [],
        }


def test_a_manager_cannot_reach_another_services_contacts(
    client: FlaskClient,
    admin: dict[str, str],
    service: dict[str, Any],
    people: People,
) -> None:
    other = add_service(client, admin, name="Selby NSP", areas=["SELBY"])
    theirs = post_contact(client, admin, other["id"]).get_json()
    manager = make_manager(client, people, admin, service["id"], "manager")
    for method, suffix, body in [
        ("GET", "", None),
        ("PATCH", "", {"name": "X"}),
        ("DELETE", "", None),
        ("POST", "/verification/sms", None),
        ("POST", "/verification/sms/confirm", {"code": "123456"}),
    ]:
        response = client.open(
            f"{API}/contacts/{theirs['id']}{suffix}", method=method, json=body, headers=manager
        )
        assert response.status_code == 404, (method, suffix, response.get_json())
    reporter = people.headers("reporter", Role.reporter)
    assert client.get(f"{API}/contacts/{theirs['id']}", headers=reporter).status_code == 403


def test_removing_a_contact_erases_them_but_keeps_the_row(
    client: FlaskClient, admin: dict[str, str], service: dict[str, Any], container: Container
) -> None:
    created = post_contact(client, admin, service["id"]).get_json()
    with container.db.transaction() as session:
        session.add(ContactUnsubscription(contact_id=created["id"], alert_kind="exercise"))
    response = client.delete(f"{API}/contacts/{created['id']}", headers=admin)
    assert response.status_code == 200
    view = response.get_json()
    assert (view["name"], view["email"], view["phone"], view["channels"]) == (
        "Former contact",
        None,
        None,
        [],
    )
    assert view["removed"] is True and view["opted_out_at"] is not None
    with container.db.transaction() as session:
        contact = session.get(Contact, created["id"])
        assert contact is not None and contact.link_version == 2
        assert session.scalar(select(func.count()).select_from(ContactChannel)) == 0
        assert session.scalar(select(func.count()).select_from(ContactUnsubscription)) == 0
        notices = session.execute(select(Notice.recipient, Notice.text_body, Notice.status)).all()
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "contact.removed"))
    # The codes and links not yet sent are cancelled and their copies lose the details.
    assert notices and all(n == ("(removed)", "(removed)", "failed") for n in notices)
    assert event is not None and event.detail == {"service_id": service["id"]}
    listed = client.get(f"{API}/services/{service['id']}/contacts", headers=admin).get_json()
    assert listed == []
    with_removed = client.get(
        f"{API}/services/{service['id']}/contacts?removed=true", headers=admin
    ).get_json()
    assert [c["id"] for c in with_removed] == [created["id"]]
    assert client.delete(f"{API}/contacts/{created['id']}", headers=admin).status_code == 200
    gone = client.patch(f"{API}/contacts/{created['id']}", json={"name": "Back"}, headers=admin)
    assert gone.status_code == 409
    # The address is free again at this service.
    assert post_contact(client, admin, service["id"]).status_code == 201
