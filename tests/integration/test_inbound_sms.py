"""Twilio's inbound webhook, posted as Twilio posts it and signed with Twilio's scheme:
STOP, START, HELP and code replies; unsigned, forged or unconfigured requests change nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from flask.testing import FlaskClient
from twilio.request_validator import RequestValidator

from ldis.bootstrap import Container
from ldis.domain.roles import Role
from ldis.domain.verification import code_hash
from ldis.services.inbound_sms import NO_MATCH
from ldis.store.models import ContactChannel
from tests.integration import selfservice as s

pytestmark = pytest.mark.integration
EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response />'


@pytest.fixture
def queue() -> s.RecordingQueue:
    return s.RecordingQueue()


@pytest.fixture
def twilio(container: Container, queue: s.RecordingQueue) -> FlaskClient:
    return s.twilio_app(container, queue).test_client()


@pytest.fixture
def york(container: Container) -> tuple[int, int]:
    """A service with one contact (SMS and e-mail, verified); (service id, contact id)."""
    s.area(container)
    service_id = s.service(container)
    return service_id, s.contact(container, service_id)


def _unchanged(container: Container, contact_id: int) -> None:
    assert s.channel(container, contact_id, "sms").opted_out_at is None
    assert s.audit_events(container, "contact.sms_opted_out") == []


def test_a_text_without_a_signature_is_refused(
    container: Container, twilio: FlaskClient, york: tuple[int, int]
) -> None:
    response = s.text_in(twilio, "STOP", signature="")
    assert response.status_code == 403
    assert response.get_json()["error"] == "forbidden"
    _unchanged(container, york[1])


def test_a_forged_signature_is_refused(
    container: Container, twilio: FlaskClient, york: tuple[int, int]
) -> None:
    response = s.text_in(twilio, "STOP", sign_with="not-our-token")
    assert response.status_code == 403
    _unchanged(container, york[1])


def test_a_signature_for_other_fields_or_another_url_is_refused(
    container: Container, twilio: FlaskClient, york: tuple[int, int]
) -> None:
    url = "http://ldis.test" + s.INBOUND_PATH
    signed_help = RequestValidator(s.TWILIO_TOKEN).compute_signature(url, {"Body": "HELP"})
    assert s.text_in(twilio, "STOP", signature=signed_help).status_code == 403
    elsewhere = s.text_in(twilio, "STOP", url="https://attacker.example/webhooks/twilio/inbound")
    assert elsewhere.status_code == 403
    _unchanged(container, york[1])


def test_without_a_twilio_token_every_text_is_refused(
    container: Container, client: FlaskClient, york: tuple[int, int]
) -> None:
    """The default app has no LDIS_TWILIO_AUTH_TOKEN: nothing can be checked, so all is refused."""
    assert s.text_in(client, "STOP").status_code == 403
    _unchanged(container, york[1])


def test_stop_is_honoured_at_once_and_start_restores(
    container: Container, twilio: FlaskClient, york: tuple[int, int]
) -> None:
    contact_id = york[1]
    elsewhere = s.service(container, "Selby pharmacy")
    same_phone = s.contact(container, elsewhere, name="Locum", email=None)

    response = s.text_in(twilio, " Stop. ")
    assert response.status_code == 200
    assert response.mimetype == "application/xml"
    assert response.get_data(as_text=True) == EMPTY, "Twilio itself sends the STOP reply"
    for cid in (contact_id, same_phone):
        assert s.channel(container, cid, "sms").opted_out_at is not None
    assert s.channel(container, contact_id, "email").opted_out_at is None, "e-mail carries on"
    events = s.audit_events(container, "contact.sms_opted_out")
    assert sorted(e.entity_id for e in events) == sorted([contact_id, same_phone])
    assert all(s.PHONE not in str(e.detail) and "7700" not in str(e.detail) for e in events)

    stopped = s.send_alert(container)
    sent = s.outbox(container, stopped)
    assert [m.channel for m in sent] == ["email"], "no text to a phone that said STOP"
    refused = [d for d in s.deliveries(container, stopped) if d.channel == "sms"]
    assert {(d.status, d.last_error) for d in refused} <= {("failed", "recipient opted out")}

    assert s.text_in(twilio, "start").get_data(as_text=True) == EMPTY
    assert s.channel(container, contact_id, "sms").opted_out_at is None
    assert len(s.audit_events(container, "contact.sms_opted_in")) == 2
    restarted = s.send_alert(container, title="Xylazine in heroin")
    texts = [m for m in s.outbox(container, restarted) if m.channel == "sms"]
    assert [m.recipient for m in texts] == [s.PHONE, s.PHONE]
    assert "Reply STOP to opt out" in texts[0].text_body


def test_a_repeated_stop_changes_nothing(
    container: Container, twilio: FlaskClient, york: tuple[int, int]
) -> None:
    assert s.text_in(twilio, "STOP", sid="SM1").status_code == 200
    first = s.channel(container, york[1], "sms").opted_out_at
    assert s.text_in(twilio, "STOP", sid="SM1").status_code == 200  # Twilio's retry
    assert s.text_in(twilio, "UNSUBSCRIBE").status_code == 200
    assert s.channel(container, york[1], "sms").opted_out_at == first
    assert len(s.audit_events(container, "contact.sms_opted_out")) == 1


def test_help_replies_with_who_we_are_and_how_to_stop(
    twilio: FlaskClient, york: tuple[int, int]
) -> None:
    response = s.text_in(twilio, "help")
    text = response.get_data(as_text=True)
    assert response.status_code == 200
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?><Response><Message>')
    assert "drug alerts" in text and "http://ldis.test" in text and "Reply STOP to stop" in text
    assert s.text_in(twilio, "INFO").get_data(as_text=True) == text


def test_an_unknown_sender_asking_for_help_still_gets_it(twilio: FlaskClient) -> None:
    assert "Reply STOP" in s.text_in(twilio, "HELP", sender="+447700900999").get_data(as_text=True)


def _pending_code(container: Container, contact_id: int, code: str = "123456") -> None:
    with container.db.transaction() as session:
        row = session.get(ContactChannel, (contact_id, "sms"))
        assert row is not None
        row.verified_at = None
        row.verification_hash = code_hash(container.settings.secret(), contact_id, "sms", code)
        row.verification_sent_at = datetime.now(UTC)


def test_a_code_reply_confirms_the_number_once(
    container: Container, twilio: FlaskClient, york: tuple[int, int]
) -> None:
    _pending_code(container, york[1])
    response = s.text_in(twilio, "My code is 123 456", sid="SMcode")
    assert response.status_code == 200
    reply = "Thanks, this number is confirmed for York NSP drug alerts."
    assert f"<Message>{reply}</Message>" in response.get_data(as_text=True)
    assert s.channel(container, york[1], "sms").verified_at is not None

    # Twilio retries when our answer was lost: the same answer, nothing verified twice.
    again = s.text_in(twilio, "My code is 123 456", sid="SMcode")
    assert f"<Message>{reply}</Message>" in again.get_data(as_text=True)
    # A new text with the spent code matches nothing.
    later = s.text_in(twilio, "123456")
    assert f"<Message>{NO_MATCH}</Message>" in later.get_data(as_text=True)


def test_a_wrong_code_is_not_matched_and_counts_as_a_guess(
    container: Container, twilio: FlaskClient, york: tuple[int, int]
) -> None:
    _pending_code(container, york[1])
    response = s.text_in(twilio, "654321")
    assert f"<Message>{NO_MATCH}</Message>" in response.get_data(as_text=True)
    row = s.channel(container, york[1], "sms")
    assert row.verified_at is None
    assert row.verification_attempts == 1


def test_a_sender_that_is_not_a_uk_mobile_gets_no_answer(
    container: Container, twilio: FlaskClient, york: tuple[int, int]
) -> None:
    for sender in ("+12025550123", "Vodafone", ""):
        response = s.text_in(twilio, "STOP", sender=sender)
        assert (response.status_code, response.get_data(as_text=True)) == (200, EMPTY)
    _unchanged(container, york[1])


def test_the_manager_is_told_when_stop_leaves_a_service_unreachable(
    container: Container, twilio: FlaskClient, queue: s.RecordingQueue
) -> None:
    s.area(container)
    manager = s.user(container, "manager", Role.service_manager)
    s.user(container, "admin", Role.admin)
    lonely = s.service(container, "Selby hostel", managers=(manager.user_id,))
    s.contact(container, lonely, email=None)  # its only contact, by text alone
    covered = s.service(container, "York NSP")
    s.contact(container, covered, name="A", email=None)
    s.contact(container, covered, name="B", phone="+447700900456")

    assert s.text_in(twilio, "STOP").status_code == 200

    [notice] = s.notices_for(container, "manager_alert")
    assert queue.notices == [notice.id], "the worker is asked to send it after the commit"
    assert notice.recipient == "manager@example.org"
    [sent] = s.send_notices(container, queue.notices)
    assert sent.recipient == "manager@example.org"
    assert sent.subject == "Selby hostel can no longer receive drug alerts"
    assert "a contact replied STOP" in sent.text_body
    assert "http://ldis.test/services/" in sent.text_body
    assert "7700" not in sent.text_body and "Duty worker" not in sent.text_body

    # A second opt-out the same day (after START) tells nobody twice.
    s.text_in(twilio, "START")
    s.text_in(twilio, "STOP")
    assert len(s.notices_for(container, "manager_alert")) == 1
