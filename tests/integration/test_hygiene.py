"""Hygiene: permanent failures flag the contact (through the real Twilio client against the
local fake), managers are told, the /hygiene page lists what needs doing and clears flags,
and the review reminder asks the right services once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import update

from ldis.bootstrap import Container
from ldis.domain.messages import SendOutcome, SendResult
from ldis.domain.roles import Role
from ldis.services import delivery, hygiene
from ldis.services.ports import Sender
from ldis.settings import SmsChannel
from ldis.store.models import Delivery, Service
from tests.fakes.twilio_api import FakeTwilio
from tests.integration import selfservice as s
from tests.integration.webpages import PASSWORD, Web, csrf, text
from workers.channels import build_senders

pytestmark = pytest.mark.integration
SID, TOKEN = "AC" + "1" * 32, "fake-twilio-token"
INVALID, STOPPED = "+447700900911", "+447700900610"
YEAR = timedelta(days=365)


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio(SID, TOKEN) as server:
        server.fail(INVALID, 21211)
        server.fail(STOPPED, 21610)
        yield server


def _twilio_senders(container: Container, fake: FakeTwilio) -> dict[str, Sender]:
    settings = container.settings.model_copy(
        update={
            "sms_channel": SmsChannel.twilio,
            "twilio_account_sid": SID,
            "twilio_auth_token": TOKEN,
            "twilio_from": "+447700900000",
            "twilio_base_url": fake.url,
        }
    )
    return build_senders(settings, container.db)


@pytest.fixture
def selby(container: Container) -> dict[str, int]:
    """A managed service with a contact whose number Twilio calls invalid, and another."""
    s.area(container)
    manager = s.user(container, "manager", Role.service_manager, password=PASSWORD)
    service_id = s.service(container, "Selby hostel", managers=(manager.user_id,))
    return {
        "service": service_id,
        "manager": manager.user_id,
        "bad": s.contact(container, service_id, name="Night desk", phone=INVALID, email=None),
        "good": s.contact(container, service_id, name="Day desk", phone=None),
    }


def test_an_invalid_number_flags_the_contact_and_tells_the_manager(
    container: Container, fake: FakeTwilio, selby: dict[str, int]
) -> None:
    senders = _twilio_senders(container, fake)
    first = s.send_alert(container, senders=senders, deliver=False)
    # Approved before the failure is known: already queued when the number is found invalid.
    second = s.send_alert(container, title="Xylazine in heroin", deliver=False)
    s.deliver_alert(container, first, senders)

    assert [r.to for r in fake.requests] == [INVALID]
    row = s.channel(container, selby["bad"], "sms")
    assert row.failed_at is not None and row.opted_out_at is None
    assert row.failure_reason == "the mobile number is not valid (Twilio 21211)"
    flagged = s.get_contact(container, selby["bad"])
    assert flagged.flagged_at is not None
    assert flagged.flag_reason == "Text messages: the mobile number is not valid (Twilio 21211)"
    [event] = s.audit_events(container, "contact.flagged")
    assert event.entity_id == selby["bad"] and "7700" not in str(event.detail)
    assert {d.channel: d.status for d in s.deliveries(container, first)} == {
        "sms": "failed",
        "email": "sent",
    }

    [notice] = s.notices_for(container, "manager_alert")
    assert notice.recipient == "manager@example.org"
    assert notice.subject == "A contact at Selby hostel needs checking"
    assert "the mobile number is not valid" in notice.text_body
    assert "Night desk" not in notice.text_body and "7700" not in notice.text_body
    assert len(s.notices_for(container, "manager_alert")) == 1, "the other contact is reachable"

    # The alert already queued is not tried on the failed number at all.
    s.deliver_alert(container, second, senders)
    assert len(fake.requests) == 1
    [sms] = [d for d in s.deliveries(container, second) if d.channel == "sms"]
    assert (sms.status, sms.last_error) == (
        "failed",
        "recipient address failed permanently earlier",
    )
    assert len(s.notices_for(container, "manager_alert")) == 1
    third = s.send_alert(container, senders=senders, title="Fentanyl in cocaine")
    assert len(fake.requests) == 1, "nor any later alert"
    assert "sms" not in {d.channel for d in s.deliveries(container, third) if d.status != "failed"}


def test_a_number_stopped_at_the_carrier_is_opted_out_and_the_service_left_unreachable(
    container: Container, fake: FakeTwilio
) -> None:
    s.area(container)
    s.user(container, "admin", Role.admin)  # no manager: admins are told instead
    service_id = s.service(container, "Selby pharmacy")
    contact_id = s.contact(container, service_id, phone=STOPPED, email=None)

    s.send_alert(container, senders=_twilio_senders(container, fake))

    row = s.channel(container, contact_id, "sms")
    assert row.failed_at is not None and row.opted_out_at is not None
    subjects = sorted(n.subject or "" for n in s.notices_for(container, "manager_alert"))
    assert subjects == [
        "A contact at Selby pharmacy needs checking",
        "Selby pharmacy can no longer receive drug alerts",
    ]
    sent = s.send_notices(container)
    assert {m.recipient for m in sent} == {"admin@example.org"}
    assert "no manager is set for Selby pharmacy" in sent[0].text_body


def test_failures_that_are_ours_flag_nobody(container: Container, selby: dict[str, int]) -> None:
    s.send_alert(container, senders={})  # no channels at all: "no sms channel"
    assert s.get_contact(container, selby["bad"]).flagged_at is None
    assert s.notices_for(container, "manager_alert") == []


def test_recording_the_same_failure_twice_flags_once(
    container: Container, selby: dict[str, int]
) -> None:
    alert = s.send_alert(
        container, senders={"email": build_senders(container.settings, container.db)["email"]}
    )
    [sms] = [d for d in s.deliveries(container, alert) if d.channel == "sms"]
    with container.db.transaction() as session:
        session.execute(
            update(Delivery).where(Delivery.id == sms.id).values(status="sending", last_error=None)
        )
    result = SendResult(SendOutcome.permanent_error, error="twilio 21211 (HTTP 400): bad")
    assert delivery.record(container.db, sms.id, result, 1) is False
    assert delivery.record(container.db, sms.id, result, 1) is False  # already failed: no-op
    assert len(s.audit_events(container, "contact.flagged")) == 1
    assert len(s.notices_for(container, "manager_alert")) == 1


@pytest.fixture
def web(app: Flask, container: Container) -> Web:
    return Web(app, container)


def test_the_hygiene_page_and_clearing_a_flag(
    container: Container, fake: FakeTwilio, selby: dict[str, int], web: Web
) -> None:
    s.send_alert(container, senders=_twilio_senders(container, fake))
    other = s.service(container, "Tadcaster NSP", created_at=datetime.now(UTC) - 2 * YEAR)

    admin = web.browser("admin", Role.admin)
    page = text(admin.get("/hygiene"))
    assert "Night desk" in page and "the mobile number is not valid" in page
    assert "Tadcaster NSP" in page.split('id="unreachable"')[1].split('id="review"')[0]
    assert "Tadcaster NSP" in page.split('id="review"')[1]
    assert "Selby hostel" not in page.split('id="unreachable"')[1]

    manager = web.app.test_client()
    assert web.login(manager, "manager@example.org").status_code == 302
    mine = text(manager.get("/hygiene"))
    assert "Night desk" in mine and "Tadcaster NSP" not in mine

    assert web.browser("reporter", Role.reporter).get("/hygiene").status_code == 403

    url = f"/hygiene/contacts/{selby['bad']}/clear-flag"
    assert manager.post(url).status_code == 400, "CSRF token required"
    assert s.get_contact(container, selby["bad"]).flagged_at is not None
    cleared = manager.post(url, data={"csrf_token": csrf(manager.get("/hygiene"))})
    assert cleared.status_code == 303
    assert "Flag cleared" in text(manager.get("/hygiene"))
    assert s.get_contact(container, selby["bad"]).flagged_at is None
    assert s.channel(container, selby["bad"], "sms").failed_at is None
    [event] = s.audit_events(container, "contact.flag_cleared")
    assert event.detail["channels"] == ["sms"]

    other_contact = s.contact(container, other, name="Else", phone="+447700900222", email=None)
    refused = manager.post(
        f"/hygiene/contacts/{other_contact}/clear-flag",
        data={"csrf_token": csrf(manager.get("/hygiene"))},
    )
    assert refused.status_code == 404, "a manager cannot touch another service's contacts"


def test_review_reminders_ask_the_right_services_once(container: Container) -> None:
    now = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    manager = s.user(container, "manager", Role.service_manager)
    s.user(container, "admin", Role.admin)
    long_ago = now - timedelta(days=400)
    due = s.service(container, "Old NSP", managers=(manager.user_id,), created_at=long_ago)
    unmanaged = s.service(container, "Old pharmacy", created_at=long_ago, confirmed_at=long_ago)
    s.service(
        container, "Confirmed NSP", created_at=long_ago, confirmed_at=now - timedelta(days=30)
    )
    s.service(container, "New NSP", created_at=now - timedelta(days=100))
    s.service(
        container,
        "Asked NSP",
        created_at=long_ago,
        review_reminded_at=now - timedelta(days=10),
    )

    ids = hygiene.review_reminders(
        container.db, interval=YEAR, public_url="http://ldis.test", now=now
    )

    reminders = s.notices_for(container, "review")
    assert sorted(ids) == [n.id for n in reminders]
    assert {(n.recipient, n.subject) for n in reminders} == {
        ("manager@example.org", "Yearly check: are Old NSP's details still right?"),
        ("admin@example.org", "Yearly check: are Old pharmacy's details still right?"),
    }
    by_recipient = {n.recipient: n.text_body for n in reminders}
    assert f"http://ldis.test/services/{due}" in by_recipient["manager@example.org"]
    assert "were entered on 19 October 2025" in by_recipient["manager@example.org"]
    assert f"http://ldis.test/services/{unmanaged}" in by_recipient["admin@example.org"]
    with container.db.transaction() as session:
        found = session.get(Service, due)
        assert found is not None and found.review_reminded_at == now

    assert hygiene.review_reminders(container.db, interval=YEAR, public_url="", now=now) == []
    later = now + timedelta(days=31)
    again = hygiene.review_reminders(container.db, interval=YEAR, public_url="", now=later)
    # A month on, the two still unconfirmed are asked again, and "Asked NSP" (asked 41 days
    # before) for the first time by us.
    assert len(again) == 3
    assert len(s.notices_for(container, "review")) == 5
