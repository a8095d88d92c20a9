"""Twilio's status callbacks (`POST /webhooks/twilio/status`): only Twilio-signed ones count;
`delivered` moves a text to delivered, `undelivered`/`failed` record the error (and flag the
contact when the number is at fault); repeats and late, out-of-order callbacks change
nothing, and nothing ever moves backwards."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from twilio.request_validator import RequestValidator
from werkzeug.test import TestResponse

from ldis.bootstrap import Container
from ldis.settings import SmsChannel
from ldis.store.models import Delivery
from tests.fakes.twilio_api import FakeTwilio
from tests.integration import selfservice as s
from tests.integration.selfservice import TWILIO_TOKEN, RecordingQueue, twilio_app
from workers.channels import build_senders

pytestmark = pytest.mark.integration

SID = "AC" + "5" * 32
PATH = "/webhooks/twilio/status"
URL = "http://ldis.test" + PATH


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio(SID, TWILIO_TOKEN) as server:
        yield server


@pytest.fixture
def app(container: Container) -> Flask:
    return twilio_app(container, RecordingQueue())


@pytest.fixture
def texts(container: Container, fake: FakeTwilio) -> list[Delivery]:
    """Two texts sent in-process through the Twilio channel to two contacts at Selby."""
    s.area(container)
    service = s.service(container, "Selby NSP")
    s.contact(container, service, name="Ann", phone="+447700900201", email=None)
    s.contact(container, service, name="Bob", phone="+447700900202", email=None)
    settings = container.settings.model_copy(
        update={
            "sms_channel": SmsChannel.twilio,
            "twilio_account_sid": SID,
            "twilio_auth_token": TWILIO_TOKEN,
            "twilio_from": "+447700900000",
            "twilio_base_url": fake.url,
        }
    )
    alert_id = s.send_alert(container, senders=build_senders(settings, container.db))
    sent = s.deliveries(container, alert_id)
    assert [d.status for d in sent] == ["sent", "sent"]
    return sent


def post(
    client: FlaskClient,
    fake: FakeTwilio,
    sid: str,
    status: str,
    *,
    error_code: int | None = None,
    signature: str | None = None,
) -> TestResponse:
    form, signed = fake.status_callback(sid, status, url=URL, error_code=error_code)
    headers = {"X-Twilio-Signature": signature if signature is not None else signed}
    if signature == "":
        headers = {}
    return client.post(PATH, data=form, headers=headers)


def now(container: Container, delivery: Delivery) -> Delivery:
    with container.db.transaction() as session:
        row = session.get(Delivery, delivery.id)
        assert row is not None
        session.expunge(row)
        return row


def test_forged_and_unsigned_callbacks_are_refused_and_change_nothing(
    container: Container, app: Flask, fake: FakeTwilio, texts: list[Delivery]
) -> None:
    client = app.test_client()
    sid = texts[0].provider_id or ""
    forged = post(client, fake, sid, "delivered", signature="bm90IGEgc2lnbmF0dXJl")
    unsigned = post(client, fake, sid, "delivered", signature="")
    # Signed by someone with another token, or for another URL: forged too.
    form, _ = fake.status_callback(sid, "delivered", url=URL)
    wrong_key = RequestValidator("not-our-token").compute_signature(URL, form)
    wrong_url = RequestValidator(TWILIO_TOKEN).compute_signature("http://evil.test" + PATH, form)

    assert [r.status_code for r in (forged, unsigned)] == [403, 403]
    for signature in (wrong_key, wrong_url):
        response = client.post(PATH, data=form, headers={"X-Twilio-Signature": signature})
        assert response.status_code == 403
    row = now(container, texts[0])
    assert (row.status, row.provider_status, row.delivered_at) == ("sent", None, None)


def test_a_signed_delivered_callback_delivers_and_late_ones_change_nothing(
    container: Container, app: Flask, fake: FakeTwilio, texts: list[Delivery]
) -> None:
    client = app.test_client()
    sid = texts[0].provider_id or ""

    assert post(client, fake, sid, "sent").status_code == 204
    assert now(container, texts[0]).provider_status == "sent"
    assert post(client, fake, sid, "delivered").status_code == 204
    delivered = now(container, texts[0])
    assert (delivered.status, delivered.provider_status) == ("delivered", "delivered")
    assert delivered.delivered_at is not None

    # Twice, late, out of order, or a contradicting final word: nothing moves backwards.
    for status in ("delivered", "sent", "queued", "undelivered", "failed"):
        assert post(client, fake, sid, status, error_code=30006).status_code == 204
        row = now(container, texts[0])
        assert (row.status, row.provider_status, row.delivered_at) == (
            "delivered",
            "delivered",
            delivered.delivered_at,
        )
    # The other text was never touched; a sid that is not ours is answered and ignored.
    assert now(container, texts[1]).status == "sent"
    form = {"MessageSid": "SMnotours", "MessageStatus": "delivered", "AccountSid": SID}
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(URL, form)
    response = client.post(PATH, data=form, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 204


def test_undelivered_records_the_error_and_flags_a_dead_number_once(
    container: Container, app: Flask, fake: FakeTwilio, texts: list[Delivery]
) -> None:
    client = app.test_client()
    dead, off = texts
    for _ in range(2):  # a repeat flags nobody twice
        assert (
            post(client, fake, dead.provider_id or "", "undelivered", error_code=30005).status_code
            == 204
        )
    # 30003: the handset is off. Not the number's fault: failed, nobody flagged.
    assert post(client, fake, off.provider_id or "", "failed", error_code=30003).status_code == 204

    failed, unreachable = now(container, dead), now(container, off)
    assert (failed.status, failed.provider_status) == ("failed", "undelivered")
    assert "30005" in (failed.last_error or "")
    assert (unreachable.status, unreachable.provider_status) == ("failed", "failed")
    assert "30003" in (unreachable.last_error or "")
    assert len(s.audit_events(container, "contact.flagged")) == 1
    assert s.get_contact(container, failed.contact_id).flagged_at is not None
    assert s.get_contact(container, unreachable.contact_id).flagged_at is None
    assert s.channel(container, failed.contact_id, "sms").failed_at is not None
    # A late `delivered` cannot resurrect a failed text.
    assert post(client, fake, dead.provider_id or "", "delivered").status_code == 204
    assert now(container, dead).status == "failed"
