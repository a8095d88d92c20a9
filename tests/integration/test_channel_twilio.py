"""The Twilio SMS channel against a local fake of the Messages API (real client, real HTTP)."""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from ldis.domain.deliveries import RetryLater
from ldis.domain.messages import OutgoingMessage, SendOutcome
from ldis.settings import Settings, load_settings
from tests.fakes.twilio_api import FakeTwilio
from workers.channels.twilio_sms import TwilioSender

pytestmark = pytest.mark.integration

SID = "AC" + "0" * 32
TOKEN = "secret"
FROM = "+447700900000"
OK = "+447700900001"
OK_2 = "+447700900002"
INVALID = "+447700900911"
STOPPED = "+447700900610"
THROTTLED = "+447700900429"
BROKEN = "+447700900500"
LANDLINE = "+442079460000"
SLOW = "+447700900333"


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio(SID, TOKEN) as server:
        server.fail(INVALID, 21211)
        server.fail(STOPPED, 21610)
        server.fail(LANDLINE, 21614)
        server.fail(THROTTLED, 20429)
        server.fail(BROKEN, 20500)
        yield server


def make_settings(tmp_path: Path, base_url: str, **extra: str) -> Settings:
    values = {
        "sms_channel": "twilio",
        "twilio_account_sid": SID,
        "twilio_auth_token": TOKEN,
        "twilio_from": FROM,
        "twilio_base_url": base_url,
        "public_url": "https://ldis.example.org/",
    }
    values.update(extra)
    return load_settings({}, instance_path=tmp_path, **values)


def sms(
    delivery_id: int, to: str, text: str = "Alert: adulterated heroin, Leeds"
) -> OutgoingMessage:
    return OutgoingMessage(delivery_id=delivery_id, channel="sms", to=to, text=text)


def test_send_posts_fields_and_status_callback(tmp_path: Path, fake: FakeTwilio) -> None:
    sender = TwilioSender(make_settings(tmp_path, fake.url))

    [result] = sender.send_many([sms(1, OK, "Strong batch — take care ✓")])

    assert result.outcome is SendOutcome.sent
    assert result.error is None
    [received] = fake.requests
    assert received.account_sid == SID  # i.e. /2010-04-01/Accounts/{SID}/Messages.json
    assert received.to == OK
    assert received.from_ == FROM
    assert received.body == "Strong batch — take care ✓"
    # public_url's trailing slash is dropped by the settings, so no "//" in the callback.
    assert received.status_callback == "https://ldis.example.org/webhooks/twilio/status"
    assert result.provider_id == received.sid
    assert re.fullmatch(r"SM[0-9a-f]{32}", result.provider_id or "")
    assert fake.unauthorised == 0


def test_environment_edge_does_not_redirect_requests(
    tmp_path: Path, fake: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The client would otherwise rewrite the host to api.dublin.ie1.twilio.com.
    monkeypatch.setenv("TWILIO_EDGE", "dublin")
    monkeypatch.setenv("TWILIO_REGION", "ie1")
    [result] = TwilioSender(make_settings(tmp_path, fake.url)).send_many([sms(1, OK)])
    assert result.outcome is SendOutcome.sent
    assert len(fake.requests) == 1


@pytest.mark.parametrize(("to", "code"), [(INVALID, 21211), (STOPPED, 21610), (LANDLINE, 21614)])
def test_recipient_errors_are_permanent(
    tmp_path: Path, fake: FakeTwilio, to: str, code: int
) -> None:
    [result] = TwilioSender(make_settings(tmp_path, fake.url)).send_many([sms(7, to)])

    assert result.outcome is SendOutcome.permanent_error
    assert result.provider_id is None
    assert str(code) in (result.error or "")
    assert len(fake.requests) == 1


def test_error_text_and_logs_carry_no_phone_number_or_body(
    tmp_path: Path, fake: FakeTwilio, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = "Secret body text"
    sender = TwilioSender(make_settings(tmp_path, fake.url))

    results = sender.send_many([sms(1, INVALID, body), sms(2, OK, body)])

    assert [r.outcome for r in results] == [SendOutcome.permanent_error, SendOutcome.sent]
    assert "21211" in (results[0].error or "")
    assert "[number]" in (results[0].error or "")  # Twilio's text quoted the number
    logged = caplog.text + (results[0].error or "")
    for secret in (INVALID, INVALID.lstrip("+"), OK, OK.lstrip("+"), body):
        assert secret not in logged


@pytest.mark.parametrize(("to", "status"), [(THROTTLED, 429), (BROKEN, 500)])
def test_throttling_and_server_errors_are_transient(
    tmp_path: Path, fake: FakeTwilio, to: str, status: int
) -> None:
    [result] = TwilioSender(make_settings(tmp_path, fake.url)).send_many([sms(3, to)])

    assert result.outcome is SendOutcome.transient_error
    assert f"HTTP {status}" in (result.error or "")


def test_wrong_credentials_are_transient_not_the_recipients_fault(
    tmp_path: Path, fake: FakeTwilio
) -> None:
    settings = make_settings(tmp_path, fake.url, twilio_auth_token="wrong")

    [result] = TwilioSender(settings).send_many([sms(4, OK)])

    assert result.outcome is SendOutcome.transient_error
    assert "20003" in (result.error or "")
    assert fake.unauthorised == 1


def test_nothing_listening_is_transient(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago and is now closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sender = TwilioSender(make_settings(tmp_path, f"http://127.0.0.1:{port}"))

    results = sender.send_many([sms(1, OK), sms(2, OK_2)])

    assert [r.outcome for r in results] == [SendOutcome.transient_error] * 2
    assert all("connection error" in (r.error or "") for r in results)


def test_timeout_is_transient(tmp_path: Path, fake: FakeTwilio) -> None:
    fake.hang(SLOW, 2.0)
    sender = TwilioSender(make_settings(tmp_path, fake.url), timeout=0.3)

    [result] = sender.send_many([sms(1, SLOW)])

    assert result.outcome is SendOutcome.transient_error
    assert "timeout" in (result.error or "")


def test_mixed_batch_returns_results_in_order(tmp_path: Path, fake: FakeTwilio) -> None:
    batch = [
        sms(10, OK),
        sms(11, INVALID),
        sms(12, THROTTLED),
        sms(13, OK_2),
        sms(14, STOPPED),
        sms(15, BROKEN),
        sms(16, OK),
    ]

    results = TwilioSender(make_settings(tmp_path, fake.url)).send_many(batch)

    assert [r.outcome for r in results] == [
        SendOutcome.sent,
        SendOutcome.permanent_error,
        SendOutcome.transient_error,
        SendOutcome.sent,
        SendOutcome.permanent_error,
        SendOutcome.transient_error,
        SendOutcome.sent,
    ]
    assert [r.to for r in fake.requests] == [m.to for m in batch]
    sids = [r.provider_id for r in results if r.outcome is SendOutcome.sent]
    assert sids == [r.sid for r in fake.requests if r.sid]
    assert len(set(sids)) == 3


def test_empty_batch_sends_nothing(tmp_path: Path, fake: FakeTwilio) -> None:
    assert TwilioSender(make_settings(tmp_path, fake.url)).send_many([]) == []
    assert fake.requests == []


class CountingLimiter:
    def __init__(self) -> None:
        self.calls = 0

    def acquire(self) -> None:
        self.calls += 1


def test_each_message_waits_for_a_token_and_the_gate(tmp_path: Path, fake: FakeTwilio) -> None:
    limiter = CountingLimiter()
    sender = TwilioSender(make_settings(tmp_path, fake.url), limiter=limiter)
    batch = [sms(1, OK), sms(2, OK_2), sms(3, OK)]

    # The gate may refuse a message (its row was taken back): it is skipped, no result.
    results = list(sender.send_each(batch, gate=lambda m: m.delivery_id != 2))

    assert [m.delivery_id for m, _ in results] == [1, 3]
    assert [r.outcome for _, r in results] == [SendOutcome.sent] * 2
    assert limiter.calls == 3
    assert [r.to for r in fake.requests] == [OK, OK]


def test_throttling_carries_twilios_retry_after(tmp_path: Path, fake: FakeTwilio) -> None:
    fake.flaky(throttled=1.0, retry_after=7)
    [result] = TwilioSender(make_settings(tmp_path, fake.url)).send_many([sms(1, OK)])
    assert result.outcome is SendOutcome.transient_error
    assert isinstance(result, RetryLater) and result.retry_after == 7.0
