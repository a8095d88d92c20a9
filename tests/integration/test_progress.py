"""An alert's progress once sent: the JSON (`GET /api/v1/alerts/{id}/deliveries`) and the
live page (`/alerts/{id}/deliveries`) with totals per channel and state, failures by reason,
services not yet acknowledged (full phone numbers for the panel only), escalation stages,
and resend to failed (API and page), which puts back only what can be tried again."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from ldis.bootstrap import Container
from ldis.domain.messages import OutgoingMessage, SendOutcome, SendResult
from ldis.domain.roles import Role
from ldis.services import delivery, escalation
from ldis.store.models import Alert, AlertVersion, Delivery
from tests.integration import selfservice as s
from tests.integration.conftest import People
from tests.integration.webpages import Web, csrf, text
from workers.channels import build_senders

pytestmark = pytest.mark.integration
ANN_PHONE = "+447700900101"  # York NSP: its texts fail on our side (Twilio 21408)
CAT_PHONE = "+447700900201"  # Selby pharmacy: not a valid number (Twilio 21211)
OURS = "twilio 21408 (HTTP 400): Permission to send an SMS has not been enabled"
THEIRS = "twilio 21211 (HTTP 400): The 'To' number [number] is not a valid phone number."


class Queue(s.RecordingQueue):
    def __init__(self) -> None:
        super().__init__()
        self.deliveries: list[tuple[int, bool]] = []

    def enqueue_deliveries(
        self, delivery_ids: list[int], *, urgent: bool, countdown: float = 0
    ) -> None:
        self.deliveries += [(i, urgent) for i in delivery_ids]


class FailingTexts:
    """An SMS provider that refuses both numbers, each for its own reason."""

    def send_many(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        errors = {ANN_PHONE: OURS, CAT_PHONE: THEIRS}
        return [SendResult(SendOutcome.permanent_error, error=errors[m.to]) for m in messages]


@pytest.fixture
def queue() -> Queue:
    return Queue()


@pytest.fixture
def app(container: Container, queue: Queue) -> Flask:  # the session's app, with our queue
    return s.local_app(container, queue)


@pytest.fixture
def api(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def sent(container: Container) -> dict[str, int]:
    """An urgent alert sent to two services: e-mails arrive, both texts fail."""
    s.area(container)
    york = s.service(container, "York NSP")
    selby = s.service(container, "Selby pharmacy")
    ann = s.contact(container, york, name="Ann", phone=ANN_PHONE, email="ann@example.org")
    cat = s.contact(container, selby, name="Cat", phone=CAT_PHONE, email="cat@example.org")
    outbox = build_senders(container.settings, container.db)["email"]
    alert_id = s.send_alert(container, senders={"email": outbox, "sms": FailingTexts()})
    return {"alert": alert_id, "york": york, "selby": selby, "ann": ann, "cat": cat}


def _delivery(container: Container, alert_id: int, contact_id: int, channel: str) -> Delivery:
    [found] = [
        d
        for d in s.deliveries(container, alert_id)
        if d.contact_id == contact_id and d.channel == channel
    ]
    return found


def _get(api: FlaskClient, alert_id: int, headers: dict[str, str]) -> dict[str, Any]:
    response = api.get(f"/api/v1/alerts/{alert_id}/deliveries", headers=headers)
    assert response.status_code == 200, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def test_progress_counts_failures_and_services_not_acknowledged(
    container: Container, api: FlaskClient, people: People, sent: dict[str, int]
) -> None:
    alert_id = sent["alert"]
    panel = people.headers("pat", Role.panel)
    body = _get(api, alert_id, panel)
    assert body["alert"]["id"] == alert_id and body["alert"]["priority"] == "urgent"
    assert body["escalate_after_minutes"] == 30 and body["resend_version"] == 1
    [v] = body["versions"]
    assert v["reference"] == f"LDIS-{alert_id}-v1"
    by_channel = v["totals"]["by_channel"]
    assert (by_channel["sms"]["failed"], by_channel["sms"]["total"]) == (2, 2)
    assert (by_channel["email"]["sent"], by_channel["email"]["failed"]) == (2, 0)
    assert v["totals"]["all"]["total"] == 4 and v["totals"]["all"]["acknowledged"] == 0

    failures = {group["reason"]: group for group in v["failures"]}
    assert set(failures) == {OURS, THEIRS}
    [ours] = failures[OURS]["deliveries"]
    assert (ours["contact"], ours["service"], ours["channel"]) == ("Ann", "York NSP", "sms")
    assert ours["resendable"] is True and ours["address"] == "07700 9•••01"
    [theirs] = failures[THEIRS]["deliveries"]
    assert (theirs["contact"], theirs["service"]) == ("Cat", "Selby pharmacy")
    assert theirs["resendable"] is False, "the number is wrong: fix it first"
    assert v["resendable"] == 1

    assert v["services"] == {"total": 2, "acknowledged": 0, "not_acknowledged": 2}
    assert [w["name"] for w in v["not_acknowledged"]] == ["Selby pharmacy", "York NSP"]

    # Ann acknowledges by the link in her e-mail: York leaves the list.
    email = _delivery(container, alert_id, sent["ann"], "email")
    assert api.get("/ack/" + container.links.ack_token(email.id)).status_code == 200
    [v] = _get(api, alert_id, panel)["versions"]
    assert v["services"] == {"total": 2, "acknowledged": 1, "not_acknowledged": 1}
    assert v["totals"]["by_channel"]["email"]["acknowledged"] == 1
    [waiting] = v["not_acknowledged"]
    assert (waiting["name"], waiting["type"]) == ("Selby pharmacy", "needle_syringe_programme")
    [cat] = waiting["contacts"]
    assert cat["phone"] == CAT_PHONE and cat["phone_display"] == "07700 900201"
    assert {"channel": "email", "address": "c•••@example.org", "state": "receiving"} in cat[
        "channels"
    ]
    assert {"channel": "sms", "address": "07700 9•••01", "state": "failing"} in cat["channels"]


def test_admins_see_progress_without_full_phone_numbers(
    api: FlaskClient, people: People, sent: dict[str, int]
) -> None:
    body = _get(api, sent["alert"], people.headers("adam", Role.admin))
    assert body["phones_shown"] is False
    contacts = [c for w in body["versions"][0]["not_acknowledged"] for c in w["contacts"]]
    assert contacts and all("phone" not in c for c in contacts)
    assert "900201" not in str(body) and "900101" not in str(body)


def test_progress_needs_the_panel_or_an_admin(
    api: FlaskClient, people: People, sent: dict[str, int]
) -> None:
    reporter = people.headers("rita", Role.reporter)
    assert (
        api.get(f"/api/v1/alerts/{sent['alert']}/deliveries", headers=reporter).status_code == 403
    )
    assert api.get(f"/api/v1/alerts/{sent['alert']}/deliveries").status_code == 401
    panel = people.headers("pat", Role.panel)
    missing = api.get(f"/api/v1/alerts/{sent['alert'] + 99}/deliveries", headers=panel)
    assert missing.status_code == 404


def test_escalation_stages_show_per_service(
    container: Container, api: FlaskClient, people: People, sent: dict[str, int]
) -> None:
    alert_id = sent["alert"]
    with container.db.transaction() as session:
        approved = session.scalar(
            select(AlertVersion.approved_at).where(AlertVersion.alert_id == alert_id)
        )
    assert approved is not None
    escalation.escalate(
        container.db,
        after=timedelta(minutes=30),
        links=container.links,
        now=approved + timedelta(minutes=31),
    )
    [v] = _get(api, alert_id, people.headers("pat", Role.panel))["versions"]
    assert sorted((e["service"], e["stage"]) for e in v["escalations"]) == [
        ("Selby pharmacy", "backup"),
        ("Selby pharmacy", "panel"),
        ("York NSP", "backup"),
        ("York NSP", "panel"),
    ], "neither has a backup, so both go straight to the panel"
    stages = {w["name"]: [e["stage"] for e in w["escalations"]] for w in v["not_acknowledged"]}
    assert stages == {"Selby pharmacy": ["backup", "panel"], "York NSP": ["backup", "panel"]}


def test_resend_to_failed_puts_back_only_what_can_go(
    container: Container,
    api: FlaskClient,
    people: People,
    queue: Queue,
    sent: dict[str, int],
) -> None:
    alert_id = sent["alert"]
    path = f"/api/v1/alerts/{alert_id}/resend-failed"
    assert api.post(path, headers=people.headers("adam", Role.admin)).status_code == 403
    assert _delivery(container, alert_id, sent["ann"], "sms").status == "failed"

    panel = people.headers("pat", Role.panel)
    response = api.post(path, headers=panel)
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"alert_id": alert_id, "version": 1, "resent": 1}
    ann = _delivery(container, alert_id, sent["ann"], "sms")
    assert (ann.status, ann.attempts, ann.last_error) == ("queued", 0, None)
    assert queue.deliveries == [(ann.id, True)], "enqueued on the urgent queue"
    cat = _delivery(container, alert_id, sent["cat"], "sms")
    assert (cat.status, cat.last_error) == ("failed", THEIRS)
    [event] = s.audit_events(container, "alert.resent")
    assert event.entity_id == alert_id and event.detail == {"version": 1, "deliveries": 1}
    assert event.actor_id == people.ids["pat"]

    # The worker sends it again (the provider works now).
    delivery.deliver(
        container.db,
        [ann.id],
        build_senders(container.settings, container.db),
        container.renderer,
        container.links,
    )
    assert _delivery(container, alert_id, sent["ann"], "sms").status == "sent"
    [v] = _get(api, alert_id, panel)["versions"]
    assert v["totals"]["by_channel"]["sms"]["failed"] == 1 and v["resendable"] == 0

    # Nothing left to resend: a second press does nothing.
    assert api.post(path, headers=panel).get_json()["resent"] == 0
    assert len(queue.deliveries) == 1
    assert len(s.audit_events(container, "alert.resent")) == 1


def test_resend_is_refused_once_the_alert_has_expired(
    container: Container,
    api: FlaskClient,
    people: People,
    queue: Queue,
    sent: dict[str, int],
) -> None:
    alert_id = sent["alert"]
    panel = people.headers("pat", Role.panel)
    with container.db.transaction() as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        approved = alert.approved_at
        assert approved is not None
        session.execute(
            update(Alert).where(Alert.id == alert_id).values(expires_at=approved + timedelta(0))
        )
    response = api.post(f"/api/v1/alerts/{alert_id}/resend-failed", headers=panel)
    assert response.status_code == 409
    assert "expired" in response.get_json()["message"]
    assert queue.deliveries == []
    assert _delivery(container, alert_id, sent["ann"], "sms").status == "failed"


# --- the page -----------------------------------------------------------------------------


def test_the_page_shows_progress_and_phone_numbers_to_the_panel(
    container: Container, app: Flask, sent: dict[str, int]
) -> None:
    alert_id = sent["alert"]
    browser = Web(app, container).browser("penny", Role.panel)
    response = browser.get(f"/alerts/{alert_id}/deliveries")
    html = text(response)
    assert response.status_code == 200
    assert response.headers["Refresh"] == "10"
    assert "no-store" in response.headers["Cache-Control"]
    assert "<script" not in html
    assert f'href="/alerts/{alert_id}"' in html
    assert f"LDIS-{alert_id}-v1" in html
    assert "0 of 2 services acknowledged" in html
    assert "Resend to failed (1)" in html
    assert "twilio 21408" in html and "twilio 21211" in html
    assert 'href="tel:+447700900201">07700 900201</a>' in html
    assert 'href="tel:+447700900101">07700 900101</a>' in html

    off = browser.get(f"/alerts/{alert_id}/deliveries?auto=off")
    assert "Refresh" not in off.headers
    assert "Refresh every 10 seconds" in text(off)


def test_admins_see_the_page_without_phone_numbers_or_the_button(
    container: Container, app: Flask, sent: dict[str, int]
) -> None:
    browser = Web(app, container).browser("adele", Role.admin)
    html = text(browser.get(f"/alerts/{sent['alert']}/deliveries"))
    assert "Selby pharmacy" in html and "07700 9•••01" in html
    assert "07700 900201" not in html and "tel:" not in html
    assert "Resend to failed" not in html


def test_the_page_is_for_the_panel_and_admins(
    container: Container, app: Flask, sent: dict[str, int]
) -> None:
    web = Web(app, container)
    reporter = web.browser("ruth", Role.reporter)
    assert reporter.get(f"/alerts/{sent['alert']}/deliveries").status_code == 403
    anonymous = app.test_client().get(f"/alerts/{sent['alert']}/deliveries")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    panel = web.browser("penny", Role.panel)
    assert panel.get(f"/alerts/{sent['alert'] + 99}/deliveries").status_code == 404


def test_resend_to_failed_from_the_page(
    container: Container, app: Flask, queue: Queue, sent: dict[str, int]
) -> None:
    alert_id = sent["alert"]
    page = f"/alerts/{alert_id}/deliveries"
    web = Web(app, container)
    browser = web.browser("penny", Role.panel)

    forged = browser.post(f"{page}/resend-failed", data={})
    assert forged.status_code == 400, "no CSRF token, no resend"
    assert _delivery(container, alert_id, sent["ann"], "sms").status == "failed"

    admin = web.browser("adele", Role.admin)
    refused = admin.post(f"{page}/resend-failed", data={"csrf_token": csrf(admin.get("/hygiene"))})
    assert refused.status_code == 403
    assert queue.deliveries == []

    token = csrf(browser.get(page))
    response = browser.post(f"{page}/resend-failed", data={"csrf_token": token})
    assert response.status_code == 303 and response.headers["Location"].endswith(page)
    assert "1 failed message queued to send again." in text(browser.get(page))
    ann = _delivery(container, alert_id, sent["ann"], "sms")
    assert ann.status == "queued"
    assert queue.deliveries == [(ann.id, True)]
