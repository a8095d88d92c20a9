"""Inbound text keywords read as Twilio reads them (so our opt-outs agree with the carrier's),
ACK replies that acknowledge an alert, and the small rules behind self-service and hygiene: masking, which failures flag a contact,
which deliveries must not be sent, when a review is due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ldis.domain.hygiene import (
    ADDRESS_FAILED,
    OPTED_OUT,
    recipient_failure,
    review_due,
    send_blocked,
)
from ldis.domain.inbound import AckRequest, Keyword, acknowledgement, keyword
from ldis.domain.masking import mask_email, mask_phone


@pytest.mark.parametrize(
    "body",
    [
        "STOP",
        "stop",
        " Stop. ",
        "STOPALL",
        "stop all",
        "UNSUBSCRIBE",
        "Cancel!",
        "end",
        "QUIT",
        "revoke",
        "OPTOUT",
        "opt-out",
        "Opt out",
    ],
)
def test_opt_out_words(body: str) -> None:
    assert keyword(body) is Keyword.stop


@pytest.mark.parametrize("body", ["START", "start", "Yes", "yes!", "UNSTOP", " un-stop "])
def test_opt_in_words(body: str) -> None:
    assert keyword(body) is Keyword.start


@pytest.mark.parametrize("body", ["HELP", "help?", "Info", " INFO\n"])
def test_help_words(body: str) -> None:
    assert keyword(body) is Keyword.help


@pytest.mark.parametrize(
    "body", ["", "123456", "stop sending me these", "please stop", "STOP 123456", "helpful", "no"]
)
def test_anything_else_is_no_keyword(body: str) -> None:
    assert keyword(body) is None


@pytest.mark.parametrize(
    "body", ["ACK", "ack", " Ack. ", "ACK!", "Acknowledged", "acknowledge", "ACK ref"]
)
def test_ack_alone_acknowledges_the_latest_alert(body: str) -> None:
    assert acknowledgement(body) == AckRequest()


@pytest.mark.parametrize(
    ("body", "alert_id", "version"),
    [
        ("ACK LDIS-12-v1", 12, 1),
        ("ack ldis-12-V3", 12, 3),
        ("ACK Ref LDIS-12-v1", 12, 1),
        ("ACK LDIS12V1", 12, 1),
        ("ACKLDIS-7-v2", 7, 2),
        ("ACK LDIS-12", 12, None),
        ("ACK 12", 12, None),
        ("ack 12 v2", 12, 2),
        ("Acknowledged LDIS-40-v1.", 40, 1),
        ("LDIS-12-v1", 12, 1),
        (" ldis 12 ", 12, None),
        ("Ref LDIS-9-v4", 9, 4),
        ("12", 12, None),
        ("12v2", 12, 2),
        ("99999", 99999, None),
        ("ACK 123456", 123456, None),  # with ACK first, any number is an alert number
    ],
)
def test_ack_with_a_reference_names_the_alert(
    body: str, alert_id: int, version: int | None
) -> None:
    assert acknowledgement(body) == AckRequest(alert_id, version)


@pytest.mark.parametrize(
    "body",
    [
        "",
        "   ",
        "123456",  # a verification code, never an acknowledgement
        "123 456",
        "My code is 123456",
        "12 13",
        "ACK 12 13",
        "ack, who is this?",
        "thanks",
        "STOP",
        "HELP",
        "LDIS",
        "ACK LDIS",
        "ACK LDIS-0-v1",
        "LDIS-12-v0",
        "0",
        "back",
        "package",
    ],
)
def test_other_texts_are_no_acknowledgement(body: str) -> None:
    assert acknowledgement(body) is None


@pytest.mark.parametrize("body", ["STOP", "START", "HELP", "INFO", "YES"])
def test_twilio_keywords_are_never_acknowledgements(body: str) -> None:
    """Keywords are read first; an ACK parse of them must agree that they are not ACKs."""
    assert keyword(body) is not None
    assert acknowledgement(body) is None


def test_phone_numbers_are_masked_in_the_middle() -> None:
    assert mask_phone("+447700900123") == "07700 9•••23"
    assert mask_phone("+447911123456") == "07911 1•••56"
    assert "900" not in mask_phone("+447700900123")[7:]


def test_email_addresses_keep_only_the_first_letter_and_domain() -> None:
    assert mask_email("duty.desk@example.org") == "d•••@example.org"
    assert mask_email("not-an-address") == "•••"


@pytest.mark.parametrize(
    ("channel", "error", "opted_out"),
    [
        (
            "sms",
            "twilio 21211 (HTTP 400): The 'To' number [number] is not a valid phone number.",
            False,
        ),
        ("sms", "twilio 21614 (HTTP 400): 'To' number is not a valid mobile number", False),
        ("sms", "twilio 21610 (HTTP 400): Attempt to send to unsubscribed recipient", True),
        ("email", "recipient refused: 550 5.1.1 [address]: mailbox unavailable", False),
        ("email", "no address", False),
    ],
)
def test_the_recipients_own_failures_flag_them(channel: str, error: str, opted_out: bool) -> None:
    failure = recipient_failure(channel, error)
    assert failure is not None
    assert failure.opted_out is opted_out
    assert "[number]" not in failure.reason and "@" not in failure.reason


@pytest.mark.parametrize(
    ("channel", "error"),
    [
        ("sms", "no sms channel"),  # our set-up
        ("sms", "twilio 21408 (HTTP 400): Permission to send an SMS has not been enabled"),
        ("sms", "twilio 20003 (HTTP 401): Authenticate"),
        ("email", "recipient refused: 450 try later"),
        ("email", "cannot build message: ValueError"),
        ("email", "twilio 21211 (HTTP 400): not an sms"),
        ("sms", None),
    ],
)
def test_failures_that_are_ours_flag_nobody(channel: str, error: str | None) -> None:
    assert recipient_failure(channel, error) is None


def test_what_stops_a_send() -> None:
    clear = {
        "contact_opted_out": False,
        "channel_opted_out": False,
        "channel_failed": False,
        "kind_unsubscribed": False,
    }
    assert send_blocked(**clear) is None
    for reason in ("contact_opted_out", "channel_opted_out", "kind_unsubscribed"):
        assert send_blocked(**{**clear, reason: True}) == OPTED_OUT
    assert send_blocked(**{**clear, "channel_failed": True}) == ADDRESS_FAILED


NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
YEAR = timedelta(days=365)


def test_a_review_is_due_a_year_after_confirmation_or_creation() -> None:
    old, recent = NOW - timedelta(days=400), NOW - timedelta(days=30)
    due = {"reminded_at": None, "now": NOW, "interval": YEAR}
    assert review_due(confirmed_at=None, created_at=old, **due)
    assert not review_due(confirmed_at=recent, created_at=old, **due)
    assert not review_due(confirmed_at=None, created_at=recent, **due)
    assert review_due(confirmed_at=old, created_at=old, **due)


def test_a_review_reminder_is_not_repeated_within_thirty_days() -> None:
    old = NOW - timedelta(days=400)
    base = {"confirmed_at": None, "created_at": old, "now": NOW, "interval": YEAR}
    assert not review_due(reminded_at=NOW - timedelta(days=29), **base)
    assert review_due(reminded_at=NOW - timedelta(days=30), **base)
