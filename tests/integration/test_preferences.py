"""The contact's own preferences page, opened from the signed link in a message: kinds, quiet
hours, everything, one-click unsubscribe from a mail client; honoured at the next send."""

from __future__ import annotations

import re
from datetime import time

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from ldis.bootstrap import Container
from ldis.domain.roles import Role
from ldis.services.delivery import compose
from ldis.services.delivery_claims import Claimed
from ldis.store.models import Contact
from tests.integration import selfservice as s
from tests.integration.webpages import csrf, error_beside, text

pytestmark = pytest.mark.integration


@pytest.fixture
def queue() -> s.RecordingQueue:
    return s.RecordingQueue()


@pytest.fixture
def browser(container: Container, queue: s.RecordingQueue) -> FlaskClient:
    return s.local_app(container, queue).test_client()


@pytest.fixture
def york(container: Container) -> tuple[int, int]:
    s.area(container)
    manager = s.user(container, "manager", Role.service_manager)
    service_id = s.service(container, managers=(manager.user_id,))
    return service_id, s.contact(container, service_id)


def _path(container: Container, contact_id: int, version: int = 1) -> str:
    url = container.links.preferences_url(contact_id, version)
    assert url.startswith("http://ldis.test/preferences/")
    return url.removeprefix("http://ldis.test")


def _post(
    browser: FlaskClient, page: str, action: str, data: dict[str, object] | None = None
) -> TestResponse:
    token = csrf(browser.get(page))
    return browser.post(f"{page}/{action}", data={"csrf_token": token, **(data or {})})


def test_a_bad_or_revoked_link_finds_nothing(
    container: Container, browser: FlaskClient, york: tuple[int, int]
) -> None:
    contact_id = york[1]
    ack_token = container.links.ack_token(contact_id)  # signed, but for another purpose
    for path in ("/preferences/nonsense", f"/preferences/{ack_token}"):
        response = browser.get(path)
        assert response.status_code == 404
        assert "This link is not valid" in text(response)
    page = _path(container, contact_id)
    assert browser.get(page).status_code == 200
    with container.db.transaction() as session:
        found = session.get(Contact, contact_id)
        assert found is not None
        found.link_version += 1  # revokes every link already sent
    assert browser.get(page).status_code == 404
    assert browser.get(_path(container, contact_id, 2)).status_code == 200


def test_the_page_shows_the_service_masked_addresses_and_kinds(
    container: Container, browser: FlaskClient, york: tuple[int, int]
) -> None:
    response = browser.get(_path(container, york[1]))
    html = text(response)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert "York NSP" in html
    assert "07700 9•••23" in html and "d•••@example.org" in html
    assert "900123" not in html and "duty@example.org" not in html
    assert "Duty worker" not in html, "a forwarded link must not show whose settings these are"
    for label in ("Dangerous drug alerts", "Overdose cluster alerts", "Preparedness exercises"):
        assert label in html
    assert len(re.findall(r'name="kinds" value="\w+" checked', html)) == 4


def test_unsubscribing_from_one_kind_stops_only_that_kind(
    container: Container, browser: FlaskClient, york: tuple[int, int]
) -> None:
    page = _path(container, york[1])
    response = _post(browser, page, "kinds", {"kinds": ["drug_alert", "information", "exercise"]})
    assert response.status_code == 303
    followed = browser.get(response.headers["Location"])
    assert "You will not get the kinds you unticked" in text(followed)
    assert 'value="cluster" checked' not in text(followed)
    assert [u.alert_kind for u in s.get_contact(container, york[1]).unsubscriptions] == ["cluster"]
    [event] = s.audit_events(container, "contact.kinds_changed")
    assert event.detail["unsubscribed"] == ["cluster"] and event.actor_id is None

    cluster = s.send_alert(container, kind="cluster")
    assert s.outbox(container, cluster) == []
    assert {d.last_error for d in s.deliveries(container, cluster)} <= {"recipient opted out"}
    drugs = s.send_alert(container, kind="drug_alert", title="Xylazine in heroin")
    assert sorted(m.channel for m in s.outbox(container, drugs)) == ["email", "sms"]


def test_a_kind_not_on_the_list_is_refused(
    container: Container, browser: FlaskClient, york: tuple[int, int]
) -> None:
    response = _post(browser, _path(container, york[1]), "kinds", {"kinds": ["weather"]})
    assert response.status_code == 422
    assert "Choose alerts from the list" in text(response)
    assert s.get_contact(container, york[1]).unsubscriptions == []


def test_unsubscribing_from_everything_and_back(
    container: Container, browser: FlaskClient, york: tuple[int, int], queue: s.RecordingQueue
) -> None:
    page = _path(container, york[1])
    response = _post(browser, page, "stop-all")
    assert response.status_code == 303
    assert "You are unsubscribed" in text(browser.get(page))
    assert s.get_contact(container, york[1]).opted_out_at is not None
    assert len(s.audit_events(container, "contact.unsubscribed")) == 1

    # Its only contact left: the manager is told, once, without the contact's details.
    [notice] = s.notices_for(container, "manager_alert")
    assert queue.notices == [notice.id]
    assert "a contact unsubscribed from all alerts" in notice.text_body
    assert "Duty worker" not in notice.text_body and "duty@" not in notice.text_body

    stopped = s.send_alert(container)
    assert s.outbox(container, stopped) == []

    assert _post(browser, page, "resume").status_code == 303
    assert s.get_contact(container, york[1]).opted_out_at is None
    back = s.send_alert(container, title="Xylazine in heroin")
    assert len(s.outbox(container, back)) == 2


def test_quiet_hours_are_checked_and_saved(
    container: Container, browser: FlaskClient, york: tuple[int, int]
) -> None:
    page = _path(container, york[1])
    bad = _post(browser, page, "quiet-hours", {"quiet_start": "25:00", "quiet_end": "07:00"})
    assert bad.status_code == 422
    assert error_beside(text(bad), "quiet_start") == "Enter a real time, like 22:00"
    assert 'value="25:00"' in text(bad), "what was typed is kept"
    same = _post(browser, page, "quiet-hours", {"quiet_start": "22:00", "quiet_end": "22:00"})
    assert "must differ" in error_beside(text(same), "quiet_end")
    half = _post(browser, page, "quiet-hours", {"quiet_start": "22:00", "quiet_end": ""})
    assert error_beside(text(half), "quiet_end").startswith("Enter the time quiet hours end")
    assert s.get_contact(container, york[1]).quiet_start is None

    ok = _post(browser, page, "quiet-hours", {"quiet_start": "22:00", "quiet_end": "07:00"})
    assert ok.status_code == 303
    saved = s.get_contact(container, york[1])
    assert (saved.quiet_start, saved.quiet_end) == (time(22, 0), time(7, 0))
    assert 'value="22:00"' in text(browser.get(page))

    _post(browser, page, "quiet-hours", {"quiet_start": "", "quiet_end": ""})
    assert s.get_contact(container, york[1]).quiet_start is None
    assert len(s.audit_events(container, "contact.quiet_hours_changed")) == 2


def test_page_forms_need_the_csrf_token(
    container: Container, browser: FlaskClient, york: tuple[int, int]
) -> None:
    page = _path(container, york[1])
    browser.get(page)
    for action, data in (("stop-all", {}), ("kinds", {"kinds": "drug_alert"}), ("resume", {})):
        response = browser.post(f"{page}/{action}", data=data)
        assert response.status_code == 400
        assert "This form has expired" in text(response)
    contact = s.get_contact(container, york[1])
    assert contact.opted_out_at is None and contact.unsubscriptions == []


def test_one_click_unsubscribe_from_a_mail_client(
    container: Container, browser: FlaskClient, york: tuple[int, int]
) -> None:
    url = _path(container, york[1]) + "/unsubscribe"
    # A link scanner's GET, or a POST without the RFC 8058 body, changes nothing.
    assert browser.get(url).status_code == 303
    assert browser.post(url, data={"something": "else"}).status_code == 400
    assert s.channel(container, york[1], "email").opted_out_at is None

    # The mail client posts exactly this, with no session and no CSRF token.
    fresh = s.local_app(container, s.RecordingQueue()).test_client()
    response = fresh.post(
        url, data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200
    assert "unsubscribed from alert e-mails" in text(response)
    assert s.channel(container, york[1], "email").opted_out_at is not None
    assert s.channel(container, york[1], "sms").opted_out_at is None
    assert len(s.audit_events(container, "contact.email_opted_out")) == 1
    assert fresh.post(url, data={"List-Unsubscribe": "One-Click"}).status_code == 200  # repeat
    assert len(s.audit_events(container, "contact.email_opted_out")) == 1

    alert = s.send_alert(container)
    assert [m.channel for m in s.outbox(container, alert)] == ["sms"]


def test_every_alert_carries_the_contacts_own_link(
    container: Container, york: tuple[int, int]
) -> None:
    alert = s.send_alert(container)
    messages = {m.channel: m for m in s.outbox(container, alert)}
    own = container.links.preferences_url(york[1], 1)
    assert f"Change what you receive: {own}" in messages["email"].text_body
    assert f'href="{own}"' in (messages["email"].html_body or "")
    assert "Reply STOP to opt out" in messages["sms"].text_body

    item = Claimed(
        delivery_id=7,
        channel="email",
        address="duty@example.org",
        contact_name="Duty worker",
        alert_id=alert,
        version=1,
        template="professional",
        content={
            "title": "T",
            "priority": "urgent",
            "areas": ["SELBY"],
            "fields": {"summary": "S", "advice": "A"},
        },
        contact_id=york[1],
        link_version=3,
    )
    headers = compose(item, container.renderer, container.links).headers
    assert (
        headers["List-Unsubscribe"]
        == f"<{container.links.preferences_url(york[1], 3)}/unsubscribe>"
    )
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_a_change_is_honoured_for_alerts_already_queued(
    container: Container, browser: FlaskClient, york: tuple[int, int]
) -> None:
    """Deliveries written before the contact changed their mind are refused at send time."""
    queued = s.send_alert(container, deliver=False)
    cluster = s.send_alert(container, kind="cluster", title="Cluster in Selby", deliver=False)
    assert {d.status for d in s.deliveries(container, queued)} == {"queued"}
    page = _path(container, york[1])
    _post(browser, page, "kinds", {"kinds": ["drug_alert", "information", "exercise"]})
    s.deliver_alert(container, cluster)
    assert s.outbox(container, cluster) == []
    # Refused, not tried: no try is counted.
    assert [(d.status, d.last_error, d.attempts) for d in s.deliveries(container, cluster)] == [
        ("failed", "recipient opted out", 0),
        ("failed", "recipient opted out", 0),
    ]

    _post(browser, page, "stop-all")
    s.deliver_alert(container, queued)
    assert s.outbox(container, queued) == []
    assert {d.last_error for d in s.deliveries(container, queued)} == {"recipient opted out"}
