"""Acknowledging an alert: the signed link in every message, and a reply `ACK` to the text
(through the real Twilio-signed inbound webhook). The first acknowledgement wins; an ACK
from an unknown number or with nothing to acknowledge is answered politely and changes
nothing; phone numbers never reach the logs."""

from __future__ import annotations

import logging

import pytest
from flask.testing import FlaskClient
from sqlalchemy import update
from werkzeug.test import TestResponse

from ldis.bootstrap import Container
from ldis.services.acknowledgements import NOTHING_TO_ACK, UNKNOWN_NUMBER
from ldis.store.models import Delivery
from tests.integration import selfservice as s

pytestmark = pytest.mark.integration
OTHER_PHONE = "+447700900456"


@pytest.fixture
def twilio(container: Container) -> FlaskClient:
    return s.twilio_app(container, s.RecordingQueue()).test_client()


@pytest.fixture
def york(container: Container) -> tuple[int, int]:
    """A service with one contact (SMS and e-mail, verified); (service id, contact id)."""
    s.area(container)
    service_id = s.service(container)
    return service_id, s.contact(container, service_id)


def _by_channel(container: Container, alert_id: int) -> dict[str, Delivery]:
    return {d.channel: d for d in s.deliveries(container, alert_id)}


def _reply(response: TestResponse) -> str:
    text = response.get_data(as_text=True)
    assert "<Message>" in text, text
    return text.split("<Message>", 1)[1].split("</Message>", 1)[0]


def test_the_link_acknowledges_once_and_says_how(
    container: Container, client: FlaskClient, york: tuple[int, int]
) -> None:
    alert_id = s.send_alert(container)
    email = _by_channel(container, alert_id)["email"]
    sent = [m for m in s.outbox(container, alert_id) if m.channel == "email"]
    assert container.links.ack_url(email.id) in sent[0].text_body, "the message carries it"

    path = "/ack/" + container.links.ack_token(email.id)
    response = client.get(path)
    assert response.status_code == 200
    assert "receipt confirmed" in response.get_data(as_text=True)
    first = _by_channel(container, alert_id)["email"]
    assert first.acknowledged_at is not None
    assert first.acknowledged_via == "link"
    assert _by_channel(container, alert_id)["sms"].acknowledged_at is None

    assert client.get(path).status_code == 200, "a second click is fine"
    assert _by_channel(container, alert_id)["email"].acknowledged_at == first.acknowledged_at


def test_a_forged_or_unknown_link_acknowledges_nothing(
    container: Container, client: FlaskClient, york: tuple[int, int]
) -> None:
    alert_id = s.send_alert(container)
    assert client.get("/ack/not-a-signed-token").status_code == 404
    assert client.get("/ack/" + container.links.ack_token(999_999)).status_code == 404
    assert all(d.acknowledged_at is None for d in s.deliveries(container, alert_id))


def test_ack_by_text_acknowledges_the_latest_alert_sent_to_that_phone(
    container: Container, twilio: FlaskClient, york: tuple[int, int]
) -> None:
    older = s.send_alert(container, title="Xylazine in heroin")
    newer = s.send_alert(container, title="Nitazenes in fake oxycodone")

    response = s.text_in(twilio, "ack")
    assert response.status_code == 200
    reply = _reply(response)
    assert f"LDIS-{newer}-v1" in reply and "Nitazenes in fake oxycodone" in reply
    acked = _by_channel(container, newer)
    assert acked["sms"].acknowledged_at is not None
    assert acked["sms"].acknowledged_via == "sms"
    assert acked["email"].acknowledged_at is None, "only the text that was answered"
    assert _by_channel(container, older)["sms"].acknowledged_at is None

    # The next ACK takes the next one still waiting; then there is nothing left.
    assert f"LDIS-{older}-v1" in _reply(s.text_in(twilio, "ACK"))
    assert _by_channel(container, older)["sms"].acknowledged_via == "sms"
    assert _reply(s.text_in(twilio, "ACK")) == NOTHING_TO_ACK


@pytest.mark.parametrize("form", ["ACK LDIS-{id}-v1", "LDIS-{id}-v1", "{id}", "ack ldis {id}"])
def test_ack_with_a_reference_acknowledges_that_alert(
    container: Container, twilio: FlaskClient, york: tuple[int, int], form: str
) -> None:
    named = s.send_alert(container, title="Xylazine in heroin")
    latest = s.send_alert(container, title="Nitazenes in fake oxycodone")

    reply = _reply(s.text_in(twilio, form.format(id=named)))
    assert f"LDIS-{named}-v1" in reply and "Xylazine in heroin" in reply
    assert _by_channel(container, named)["sms"].acknowledged_via == "sms"
    assert _by_channel(container, latest)["sms"].acknowledged_at is None

    again = _reply(s.text_in(twilio, f"ACK LDIS-{named}-v1"))
    assert "already acknowledged" in again and f"LDIS-{named}-v1" in again


def test_a_reference_to_an_alert_the_phone_never_got_changes_nothing(
    container: Container, twilio: FlaskClient, york: tuple[int, int]
) -> None:
    alert_id = s.send_alert(container)
    assert _reply(s.text_in(twilio, f"ACK LDIS-{alert_id + 50}-v1")) == NOTHING_TO_ACK
    assert _reply(s.text_in(twilio, f"ACK LDIS-{alert_id}-v2")) == NOTHING_TO_ACK
    assert all(d.acknowledged_at is None for d in s.deliveries(container, alert_id))


def test_an_unknown_number_is_answered_politely_and_changes_nothing(
    container: Container, twilio: FlaskClient, york: tuple[int, int]
) -> None:
    alert_id = s.send_alert(container)
    assert _reply(s.text_in(twilio, "ACK", sender="+447700900999")) == UNKNOWN_NUMBER
    assert all(d.acknowledged_at is None for d in s.deliveries(container, alert_id))


def test_a_known_number_with_nothing_sent_gets_a_polite_reply(
    twilio: FlaskClient, york: tuple[int, int]
) -> None:
    assert _reply(s.text_in(twilio, "ACK")) == NOTHING_TO_ACK


def test_a_retried_webhook_gets_the_same_answer_and_acknowledges_once(
    container: Container, twilio: FlaskClient, york: tuple[int, int]
) -> None:
    alert_id = s.send_alert(container)
    first = _reply(s.text_in(twilio, "ACK", sid="SMretry"))
    at = _by_channel(container, alert_id)["sms"].acknowledged_at
    assert at is not None
    assert _reply(s.text_in(twilio, "ACK", sid="SMretry")) == first
    assert _by_channel(container, alert_id)["sms"].acknowledged_at == at
    [record] = [n for n in s.notices_for(container, "sms_reply") if n.text_body == first]
    assert record.status == "sent", "Twilio delivered it as our TwiML answer"


def test_one_phone_listed_at_two_services_acknowledges_both_copies(
    container: Container, twilio: FlaskClient, york: tuple[int, int]
) -> None:
    elsewhere = s.service(container, "Selby pharmacy")
    s.contact(container, elsewhere, name="Locum", email=None)  # the same phone
    alert_id = s.send_alert(container)
    texts = [d for d in s.deliveries(container, alert_id) if d.channel == "sms"]
    assert len(texts) == 2
    _reply(s.text_in(twilio, "ACK"))
    texts = [d for d in s.deliveries(container, alert_id) if d.channel == "sms"]
    assert all(d.acknowledged_via == "sms" for d in texts)


def test_a_text_that_failed_cannot_be_acknowledged_by_reply(
    container: Container, twilio: FlaskClient, york: tuple[int, int]
) -> None:
    """Only a text that may have reached the phone counts: a failed one did not."""
    alert_id = s.send_alert(container, deliver=False)
    with container.db.transaction() as session:
        session.execute(
            update(Delivery)
            .where(Delivery.alert_id == alert_id)
            .values(status="failed", last_error="twilio 21408 (HTTP 400): region not enabled")
        )
    assert _reply(s.text_in(twilio, "ACK")) == NOTHING_TO_ACK
    assert all(d.acknowledged_at is None for d in s.deliveries(container, alert_id))


def test_other_texts_still_go_to_codes_and_keywords(
    container: Container, twilio: FlaskClient, york: tuple[int, int]
) -> None:
    alert_id = s.send_alert(container)
    assert "could not match" in _reply(s.text_in(twilio, "123456"))
    assert "Reply STOP to stop" in _reply(s.text_in(twilio, "HELP"))
    assert all(d.acknowledged_at is None for d in s.deliveries(container, alert_id))


def test_no_phone_number_is_logged(
    container: Container,
    twilio: FlaskClient,
    york: tuple[int, int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    alert_id = s.send_alert(container)
    with caplog.at_level(logging.DEBUG):
        s.text_in(twilio, "ACK")
        s.text_in(twilio, "ACK", sender=OTHER_PHONE)
        s.text_in(twilio, f"ACK LDIS-{alert_id}-v1")
    assert any("acknowledg" in r.getMessage() for r in caplog.records), "it is logged"
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for phone in (s.PHONE, OTHER_PHONE):
        assert phone not in logged and phone[3:] not in logged and phone[-6:] not in logged
