"""Service, contact and service-type pages through Flask's test client against PostgreSQL
with CSRF on: lists and empty states, forms with errors beside the fields, per-channel
states, codes, removal, and who may see what."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from ldis.bootstrap import Container
from ldis.domain.roles import Role
from ldis.store.models import Contact, Service, ServiceType
from tests.integration.conftest import People
from tests.integration.test_services_api import notice_queue  # noqa: F401  (autouse)
from tests.integration.test_verification import set_code
from tests.integration.webpages import (
    AREA,
    Web,
    count,
    csrf,
    error_beside,
    make_web,
    post_form,
    summary_links,
    text,
)

pytestmark = pytest.mark.integration

API = "/api/v1"
NEW_SERVICE = {
    "name": "Selby NSP",
    "type": "needle_syringe_programme",
    "areas": [AREA],
    "ref": "NSP-1",
    "alert_levels": ["professional", "public"],
    "alert_kinds": ["drug_alert", "cluster", "information", "exercise"],
}
NEW_CONTACT = {
    "name": "Duty worker",
    "role": "primary",
    "email": "duty@example.org",
    "phone": "07700 900123",
    "channels": ["sms", "email"],
    "quiet_start": "22:00",
    "quiet_end": "07:00",
}


@pytest.fixture
def web(app: Flask, container: Container, client: FlaskClient, people: People) -> Web:
    return make_web(app, container, client, people)


@pytest.fixture
def admin(web: Web) -> FlaskClient:
    return web.browser("boss", Role.admin)


def post_on(browser: FlaskClient, page: str, action: str, fields: dict[str, Any]) -> Any:
    """Post a form that `page` shows (its action accepts POST only)."""
    token = csrf(browser.get(page))
    return browser.post(action, data={"csrf_token": token, **fields})


def new_service(browser: FlaskClient, **fields: Any) -> int:
    response = post_form(browser, "/services/new", {**NEW_SERVICE, **fields})
    assert response.status_code == 302, text(response)
    match = re.search(r"/services/(\d+)$", response.headers["Location"])
    assert match
    return int(match.group(1))


def test_admin_adds_a_service_with_errors_shown_first(
    admin: FlaskClient, container: Container
) -> None:
    empty = admin.get("/services")
    assert empty.status_code == 200
    html = text(empty)
    assert "No services yet" in html and 'href="/services"' in html and "<script" not in html

    form = admin.get("/services/new")
    assert form.status_code == 200
    checked = re.findall(r'name="alert_(?:levels|kinds)" value="(\w+)" checked', text(form))
    assert len(checked) == 6, "every level and kind ticked to start with"
    assert "Dangerous drug alerts" in text(form)

    bad = post_form(
        admin, "/services/new", {"name": "", "type": "spaceship", "alert_levels": ["public"]}
    )
    assert bad.status_code == 422
    html = text(bad)
    assert error_beside(html, "name") == "Enter service name"
    assert error_beside(html, "areas") == "Select at least one area"
    assert error_beside(html, "alert_kinds") == "Select at least one kind of alert"
    assert summary_links(html) == ["name", "areas", "alert_kinds"]
    assert 'value="public" checked' in html, "what was ticked is kept"
    wrong_type = post_form(admin, "/services/new", {**NEW_SERVICE, "type": "spaceship"})
    assert wrong_type.status_code == 422
    assert "is not a service type; use one of:" in error_beside(text(wrong_type), "type")
    assert count(container, Service) == 0

    service_id = new_service(admin)
    page = admin.get(f"/services/{service_id}")
    html = text(page)
    assert "Selby NSP was added" in html and "No reachable contact" in html
    assert "This service has no contacts yet" in html and "Every kind" in html
    with container.db.transaction() as session:
        service = session.get(Service, service_id)
        assert service is not None and service.alert_kinds == [] and service.ref == "NSP-1"

    listed = text(admin.get("/services"))
    assert f'href="/services/{service_id}"' in listed and "No reachable contact" in listed
    assert "0 of 0 reachable" in listed
    assert "No services match" in text(admin.get("/services?type=hostel"))
    bad_filter = admin.get("/services?area=ATLANTIS")
    assert error_beside(text(bad_filter), "area") == "Choose an area from the list"


def test_admin_edits_confirms_and_manages_a_service(
    web: Web, admin: FlaskClient, container: Container
) -> None:
    service_id = new_service(admin)
    path = f"/services/{service_id}"
    changed = post_form(
        admin,
        path,
        {**NEW_SERVICE, "name": "Selby needle exchange", "alert_kinds": ["drug_alert"], "ref": ""},
    )
    assert changed.status_code == 302, text(changed)
    html = text(admin.get(path))
    assert "Selby needle exchange" in html and "details were saved" in html
    assert "Dangerous drug alerts" in html
    bad = post_form(admin, path, {**NEW_SERVICE, "areas": ["NOWHERE"]})
    assert bad.status_code == 422 and "unknown area code" in error_beside(text(bad), "areas")

    confirmed = post_on(admin, path, f"{path}/confirm", {})
    assert confirmed.status_code == 302
    assert "recorded as checked and current" in text(admin.get(path))
    with container.db.transaction() as session:
        service = session.get(Service, service_id)
        assert service is not None and service.confirmed_at is not None and service.ref is None

    web.user("manager", Role.reporter)
    unknown = post_on(admin, path, f"{path}/managers", {"email": "ghost@example.org"})
    assert unknown.status_code == 422
    assert "create the user first" in error_beside(text(unknown), "email")
    added = post_on(admin, path, f"{path}/managers", {"email": "manager@example.org"})
    assert added.status_code == 302
    html = text(admin.get(path))
    assert "manager@example.org now manages this service" in html
    user_id = re.search(rf'action="{path}/managers/(\d+)/remove"', html)
    assert user_id
    removed = post_on(admin, path, f"{path}/managers/{user_id.group(1)}/remove", {})
    assert removed.status_code == 302
    assert "No managers" in text(admin.get(path))


def test_contacts_are_added_verified_changed_and_removed(
    admin: FlaskClient, container: Container
) -> None:
    service_id = new_service(admin)
    path = f"/services/{service_id}/contacts/new"
    assert "These addresses are already confirmed" in text(admin.get(path))
    bad = post_form(admin, path, {**NEW_CONTACT, "phone": "0113 496 0000", "email": "duty@"})
    assert bad.status_code == 422
    html = text(bad)
    assert "landlines cannot receive text messages" in error_beside(html, "phone")
    assert error_beside(html, "email").startswith("E-mail address")
    assert summary_links(html) == ["email", "phone"]
    none = post_form(admin, path, {**NEW_CONTACT, "channels": []})
    assert error_beside(text(none), "channels") == "Select at least one way to send alerts"
    assert count(container, Contact) == 0

    added = post_form(admin, path, NEW_CONTACT)
    assert added.status_code == 302, text(added)
    html = text(admin.get(f"/services/{service_id}"))
    assert "Duty worker was added. A confirmation was sent by text message (sms) and e-mail" in html
    assert "Waiting for confirmation" in html
    duplicate = post_form(
        admin, path, {**NEW_CONTACT, "name": "Again", "phone": "", "channels": ["email"]}
    )
    assert duplicate.status_code == 422
    assert "already at this service" in error_beside(text(duplicate), "email")

    with container.db.transaction() as session:
        contact_id = session.scalars(select(Contact.id)).one()
    page = f"/contacts/{contact_id}"
    html = text(admin.get(page))
    assert "Send a new code" in html and "Send a new link" in html
    assert 'value="22:00"' in html and "+447700900123" in html
    too_soon = post_on(admin, page, f"{page}/verification/sms", {})
    assert too_soon.status_code == 409 and "wait" in text(too_soon)

    wrong = post_on(admin, page, f"{page}/verification/sms/confirm", {"code": "12"})
    assert wrong.status_code == 422 and "6-digit" in error_beside(text(wrong), "code")
    set_code(container, contact_id, "424242")
    right = post_on(admin, page, f"{page}/verification/sms/confirm", {"code": "424242"})
    assert right.status_code == 302
    html = text(admin.get(page))
    assert "The mobile number is confirmed" in html and "Confirmed" in html
    assert "1 of 1 reachable" in text(admin.get("/services"))

    changed = post_form(admin, page, {**NEW_CONTACT, "phone": "07700 900456", "quiet_start": ""})
    assert changed.status_code == 422, "one quiet time without the other"
    assert error_beside(text(changed), "quiet_start") == "Enter quiet from"
    changed = post_form(
        admin, page, {**NEW_CONTACT, "phone": "07700 900456", "quiet_start": "", "quiet_end": ""}
    )
    assert changed.status_code == 302, text(changed)
    html = text(admin.get(page))
    assert "Waiting for confirmation by text message (sms)" in html and "+447700900456" in html

    confirm_page = admin.get(f"{page}/remove")
    assert "cannot be undone" in text(confirm_page)
    removed = admin.post(f"{page}/remove", data={"csrf_token": csrf(confirm_page)})
    assert removed.status_code == 302
    html = text(admin.get(f"/services/{service_id}"))
    assert "Duty worker was removed" in html and "This service has no contacts yet" in html
    with container.db.transaction() as session:
        contact = session.get(Contact, contact_id)
        assert contact is not None and (contact.name, contact.email) == ("Former contact", None)


def test_a_manager_sees_only_their_services(
    web: Web, admin: FlaskClient, client: FlaskClient, container: Container
) -> None:
    mine = new_service(admin, name="Mine", ref="")
    theirs = new_service(admin, name="Theirs", ref="")
    manager = web.browser("manager", Role.service_manager)
    assert "You do not manage any services yet" in text(manager.get("/services"))
    admin_api = web.token("boss")
    response = client.post(
        f"{API}/services/{mine}/managers", json={"email": "manager@example.org"}, headers=admin_api
    )
    assert response.status_code == 201

    home = manager.get("/")
    assert home.status_code == 302 and home.headers["Location"].endswith("/services")
    html = text(manager.get("/services"))
    assert f'href="/services/{mine}"' in html and f'href="/services/{theirs}"' not in html
    assert "File a report" not in html, "the navigation offers only what they may use"
    assert "Add a service" not in html and 'href="/services"' in html
    assert manager.get(f"/services/{theirs}").status_code == 404
    assert manager.get(f"/services/{theirs}/contacts/new").status_code == 404
    assert manager.get("/services/new").status_code == 403
    assert manager.get("/service-types").status_code == 403
    page = text(manager.get(f"/services/{mine}"))
    assert 'name="ref"' not in page and "Add manager" not in page
    assert "already confirmed" not in text(manager.get(f"/services/{mine}/contacts/new"))
    added = post_form(manager, f"/services/{mine}/contacts/new", NEW_CONTACT)
    assert added.status_code == 302
    reporter = web.browser("reporter", Role.reporter)
    assert reporter.get("/services").status_code == 403
    assert 'href="/services"' not in text(reporter.get("/reports"))


def test_a_form_without_its_csrf_token_changes_nothing(
    admin: FlaskClient, container: Container
) -> None:
    response = admin.post("/services/new", data=NEW_SERVICE)
    assert response.status_code == 400 and "This form has expired" in text(response)
    assert count(container, Service) == 0


def test_admin_manages_the_service_types(admin: FlaskClient, container: Container) -> None:
    page = admin.get("/service-types")
    assert page.status_code == 200 and "Needle and syringe programme" in text(page)
    bad = post_form(admin, "/service-types", {"code": "bad code", "label": ""})
    assert bad.status_code == 422
    assert error_beside(text(bad), "label") == "Enter name shown"
    assert "code" in summary_links(text(bad))
    added = post_form(
        admin, "/service-types", {"code": "sexual_health", "label": "Sexual health clinic"}
    )
    assert added.status_code == 302
    twice = post_form(admin, "/service-types", {"code": "sexual_health", "label": "Again"})
    assert twice.status_code == 422 and "already exists" in error_beside(text(twice), "code")

    renamed = post_on(
        admin, "/service-types", "/service-types/sexual_health", {"label": "Sexual health"}
    )
    assert renamed.status_code == 302
    blank = post_on(admin, "/service-types", "/service-types/sexual_health", {"label": " "})
    assert blank.status_code == 422 and error_beside(text(blank), "label-sexual_health")
    retired = post_on(admin, "/service-types", "/service-types/sexual_health", {"active": "false"})
    assert retired.status_code == 302
    assert "It is retired" in text(admin.get("/service-types"))
    with container.db.transaction() as session:
        row = session.get(ServiceType, "sexual_health")
        assert row is not None and (row.label, row.active) == ("Sexual health", False)
    choices = text(admin.get("/services/new"))
    assert 'value="sexual_health"' not in choices
