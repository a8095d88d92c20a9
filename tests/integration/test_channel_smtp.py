"""The SMTP email channel against a real aiosmtpd server on 127.0.0.1 (real smtplib, real TCP)."""

from __future__ import annotations

import email
import email.policy
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from ldis.domain.messages import OutgoingMessage, SendOutcome
from ldis.services.links import Links
from ldis.settings import Settings, load_settings
from workers.channels import smtp_email
from workers.channels.smtp_email import SmtpSender

pytestmark = pytest.mark.integration

MAIL_FROM = "LDIS Alerts <alerts@ldis.example.org>"
USER, PASSWORD = "ldis", "s3cret"


def free_port() -> int:
    # aiosmtpd's Controller probes its own port after start, so it cannot be given port 0.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    over_tls: bool
    login: str | None


class RecordingHandler:
    """Records connections, logins and mails; refuses or drops chosen recipients."""

    def __init__(self) -> None:
        self.connections: list[object] = []  # one SMTP protocol object per TCP connection
        self.received: list[Received] = []
        self.rcpt_replies: dict[str, str] = {}  # address -> reply instead of 250
        self.data_replies: dict[str, str] = {}  # address -> reply to the end of DATA
        self.drop_once: set[str] = set()  # close the connection at RCPT, first time only
        self.drop_always: set[str] = set()
        self.logins: list[str] = []

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        # EHLO is sent again after STARTTLS on the same connection: count servers, not EHLOs.
        if not any(seen is server for seen in self.connections):
            self.connections.append(server)
        session.host_name = hostname  # aiosmtpd leaves this to a handle_EHLO hook
        return responses

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.drop_always or address in self.drop_once:
            self.drop_once.discard(address)
            server.transport.close()
            return "421 4.4.2 going away"  # never seen: the connection is already closing
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        [address] = envelope.rcpt_tos
        if address in self.data_replies:
            return self.data_replies[address]
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        login = session.auth_data.login.decode() if session.auth_data else None
        self.received.append(
            Received(envelope.mail_from, list(envelope.rcpt_tos), parsed, bool(session.ssl), login)
        )
        return "250 2.0.0 queued"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login.decode(),
            auth_data.password.decode(),
        ) == (USER, PASSWORD)
        if not ok:
            # handled=False: let aiosmtpd answer 535 (True would leave the client waiting).
            return AuthResult(success=False, handled=False)
        self.logins.append(auth_data.login.decode())
        return AuthResult(success=True, auth_data=auth_data)


@dataclass
class SmtpServer:
    handler: RecordingHandler
    port: int


def start_server(*, auth: bool = False, **smtp_options: Any) -> tuple[Controller, SmtpServer]:
    handler = RecordingHandler()
    if auth:
        smtp_options["authenticator"] = handler.authenticate
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **smtp_options)
    controller.start()
    return controller, SmtpServer(handler, port)


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    controller, server = start_server()
    try:
        yield server
    finally:
        controller.stop()


def make_settings(tmp_path: Path, port: int, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "email_channel": "smtp",
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_starttls": False,
        "mail_from": MAIL_FROM,
        "public_url": "https://ldis.example.org",
    }
    values.update(extra)
    return load_settings({}, instance_path=tmp_path, **values)


def mail(
    delivery_id: int, to: str, *, html: bool = True, message_id: str | None = None
) -> OutgoingMessage:
    return OutgoingMessage(
        delivery_id=delivery_id,
        channel="email",
        to=to,
        subject=f"Alert {delivery_id}: nitazenes in Leeds — take care",
        text=f"Plain text for {delivery_id}.",
        html=f"<p>HTML for <b>{delivery_id}</b>.</p>" if html else None,
        headers={"Message-ID": message_id or f"<delivery-{delivery_id}@ldis.example.org>"},
    )


def test_batch_uses_one_connection_and_builds_full_messages(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    sender = SmtpSender(make_settings(tmp_path, smtp_server.port))
    batch = [mail(1, "a@example.org"), mail(2, "b@example.org"), mail(3, "c@example.org")]

    results = sender.send_many(batch)

    assert [r.outcome for r in results] == [SendOutcome.sent] * 3
    assert [r.provider_id for r in results] == [
        "<delivery-1@ldis.example.org>",
        "<delivery-2@ldis.example.org>",
        "<delivery-3@ldis.example.org>",
    ]
    assert len(smtp_server.handler.connections) == 1
    received = smtp_server.handler.received
    assert [r.rcpt_tos for r in received] == [
        ["a@example.org"],
        ["b@example.org"],
        ["c@example.org"],
    ]
    for delivery_id, got in enumerate(received, start=1):
        msg = got.message
        assert got.mail_from == "alerts@ldis.example.org"  # envelope: the bare address
        assert msg["From"] == MAIL_FROM
        assert msg["To"] == f"{'abc'[delivery_id - 1]}@example.org"
        assert msg["Subject"] == f"Alert {delivery_id}: nitazenes in Leeds — take care"
        assert msg["Message-ID"] == f"<delivery-{delivery_id}@ldis.example.org>"
        assert msg["Date"]
        assert msg["List-Unsubscribe"] == (
            "<mailto:alerts@ldis.example.org?subject=unsubscribe>, "
            "<https://ldis.example.org/preferences>"
        )
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert msg.get_content_type() == "multipart/alternative"
        parts = {part.get_content_type(): part.get_content() for part in msg.iter_parts()}
        assert parts["text/plain"].strip() == f"Plain text for {delivery_id}."
        assert parts["text/html"].strip() == f"<p>HTML for <b>{delivery_id}</b>.</p>"


def test_the_next_batch_reuses_the_session_the_last_one_left_open(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    sender = SmtpSender(make_settings(tmp_path, smtp_server.port))
    first = sender.send_many([mail(1, "a@example.org"), mail(2, "b@example.org")])
    second = sender.send_many([mail(3, "c@example.org")])

    assert [r.outcome for r in first + second] == [SendOutcome.sent] * 3
    assert len(smtp_server.handler.received) == 3
    assert len(smtp_server.handler.connections) == 1


def test_a_kept_session_the_server_dropped_is_replaced_without_loss(tmp_path: Path) -> None:
    controller, smtp_server = start_server(timeout=0.3)  # drops sessions idle for 0.3 s
    try:
        sender = SmtpSender(make_settings(tmp_path, smtp_server.port))
        sender.send_many([mail(1, "a@example.org")])
        time.sleep(0.8)  # the server has let the kept session go meanwhile
        # ...and the next batch's own reconnect is still there for a drop mid-batch.
        smtp_server.handler.drop_once.add("c@example.org")

        results = sender.send_many([mail(2, "b@example.org"), mail(3, "c@example.org")])
    finally:
        controller.stop()

    assert [r.outcome for r in results] == [SendOutcome.sent] * 2
    assert [r.rcpt_tos for r in smtp_server.handler.received] == [
        ["a@example.org"],
        ["b@example.org"],
        ["c@example.org"],
    ]
    assert len(smtp_server.handler.connections) == 3


def test_a_session_idle_too_long_is_closed_not_reused(
    tmp_path: Path, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(smtp_email, "_KEEP_IDLE_SECONDS", 0.0)
    sender = SmtpSender(make_settings(tmp_path, smtp_server.port))
    sender.send_many([mail(1, "a@example.org")])
    sender.send_many([mail(2, "b@example.org")])

    assert len(smtp_server.handler.received) == 2
    assert len(smtp_server.handler.connections) == 2


def test_a_batch_stopped_between_messages_keeps_its_session(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    sender = SmtpSender(make_settings(tmp_path, smtp_server.port))
    stream = sender.send_each([mail(1, "a@example.org"), mail(2, "b@example.org")])
    assert next(stream)[1].outcome is SendOutcome.sent
    stream.close()  # the caller stops early (a worker told to stop)
    sender.send_many([mail(3, "c@example.org")])

    assert [r.rcpt_tos for r in smtp_server.handler.received] == [
        ["a@example.org"],
        ["c@example.org"],
    ]
    assert len(smtp_server.handler.connections) == 1


def test_text_only_message_is_not_multipart(tmp_path: Path, smtp_server: SmtpServer) -> None:
    sender = SmtpSender(make_settings(tmp_path, smtp_server.port))

    [result] = sender.send_many([mail(1, "a@example.org", html=False)])

    assert result.outcome is SendOutcome.sent
    [got] = smtp_server.handler.received
    assert got.message.get_content_type() == "text/plain"


def test_caller_headers_override_defaults(tmp_path: Path, smtp_server: SmtpServer) -> None:
    one_click = "<https://ldis.example.org/unsubscribe/opaque-token>"
    message = OutgoingMessage(
        delivery_id=1,
        channel="email",
        to="a@example.org",
        subject="s",
        text="t",
        headers={"Message-ID": "<x@ldis.example.org>", "List-Unsubscribe": one_click},
    )

    [result] = SmtpSender(make_settings(tmp_path, smtp_server.port)).send_many([message])

    assert result.outcome is SendOutcome.sent
    [got] = smtp_server.handler.received
    assert got.message.get_all("List-Unsubscribe") == [one_click]
    assert got.message.get_all("Message-ID") == ["<x@ldis.example.org>"]


def test_one_click_unsubscribe_url_arrives_as_a_plain_url(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    # The URL the fan-out puts in each mail (compose: the contact's signed preferences link),
    # longer than a 78-character line: it must not be folded into RFC 2047 encoded words
    # (`=?utf-8?q?=3Chttps...?=`), which mail clients do not read as a URL.
    preferences = Links("k" * 32, "https://ldis.example.org").preferences_url(123456, 7)
    one_click = f"<{preferences}/unsubscribe>"
    assert len("List-Unsubscribe: " + one_click) > 78
    message = OutgoingMessage(
        delivery_id=9,
        channel="email",
        to="a@example.org",
        subject="Alert 9: nitazenes in Leeds — take care",
        text="t",
        html="<p>t</p>",
        headers={"Message-ID": "<delivery-9@ldis>", "List-Unsubscribe": one_click},
    )

    [result] = SmtpSender(make_settings(tmp_path, smtp_server.port)).send_many([message])

    assert result.outcome is SendOutcome.sent
    [got] = smtp_server.handler.received
    # As it was on the wire (the parser would decode encoded words and hide the bug).
    raw = {name: value for name, value in got.message.raw_items()}
    assert raw["List-Unsubscribe"] == one_click
    assert raw["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert got.message["List-Unsubscribe"] == one_click
    assert raw["Message-ID"] == "<delivery-9@ldis>"
    # Non-ASCII still goes as encoded words where it belongs, and reads back as it was.
    assert raw["Subject"].startswith("=?utf-8?")
    assert got.message["Subject"] == "Alert 9: nitazenes in Leeds — take care"


def test_refused_recipient_is_permanent_and_the_rest_are_sent(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    smtp_server.handler.rcpt_replies["gone@example.org"] = (
        "550 5.1.1 <gone@example.org>: Recipient address rejected"
    )
    sender = SmtpSender(make_settings(tmp_path, smtp_server.port))

    results = sender.send_many(
        [mail(1, "a@example.org"), mail(2, "gone@example.org"), mail(3, "c@example.org")]
    )

    assert [r.outcome for r in results] == [
        SendOutcome.sent,
        SendOutcome.permanent_error,
        SendOutcome.sent,
    ]
    assert "550" in (results[1].error or "")
    assert "gone@example.org" not in (results[1].error or "")  # scrubbed
    assert [r.rcpt_tos for r in smtp_server.handler.received] == [
        ["a@example.org"],
        ["c@example.org"],
    ]
    assert len(smtp_server.handler.connections) == 1


def test_temporary_refusal_is_transient(tmp_path: Path, smtp_server: SmtpServer) -> None:
    smtp_server.handler.rcpt_replies["busy@example.org"] = "451 4.3.0 Try again later"
    sender = SmtpSender(make_settings(tmp_path, smtp_server.port))

    results = sender.send_many([mail(1, "busy@example.org"), mail(2, "b@example.org")])

    assert [r.outcome for r in results] == [SendOutcome.transient_error, SendOutcome.sent]
    assert "451" in (results[0].error or "")


def test_content_refused_after_data_is_classed_by_code(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    smtp_server.handler.data_replies["spam@example.org"] = "554 5.7.1 Message rejected as spam"
    smtp_server.handler.data_replies["later@example.org"] = "452 4.3.1 Insufficient storage"
    sender = SmtpSender(make_settings(tmp_path, smtp_server.port))

    results = sender.send_many(
        [mail(1, "spam@example.org"), mail(2, "later@example.org"), mail(3, "c@example.org")]
    )

    assert [r.outcome for r in results] == [
        SendOutcome.permanent_error,
        SendOutcome.transient_error,
        SendOutcome.sent,
    ]
    assert "554" in (results[0].error or "")
    assert len(smtp_server.handler.connections) == 1


def test_421_at_rcpt_retries_on_a_new_connection(tmp_path: Path, smtp_server: SmtpServer) -> None:
    # smtplib closes the connection on 421; the sender must not count that as a refusal.
    smtp_server.handler.rcpt_replies["b@example.org"] = "421 4.7.0 Too many messages"
    sender = SmtpSender(make_settings(tmp_path, smtp_server.port))

    results = sender.send_many([mail(1, "a@example.org"), mail(2, "b@example.org")])

    assert [r.outcome for r in results] == [SendOutcome.sent, SendOutcome.transient_error]
    assert len(smtp_server.handler.connections) == 2  # reconnected once, then gave up


def test_dropped_connection_reconnects_once_and_continues(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    smtp_server.handler.drop_once.add("b@example.org")
    sender = SmtpSender(make_settings(tmp_path, smtp_server.port))

    results = sender.send_many(
        [mail(1, "a@example.org"), mail(2, "b@example.org"), mail(3, "c@example.org")]
    )

    assert [r.outcome for r in results] == [SendOutcome.sent] * 3
    assert [r.rcpt_tos for r in smtp_server.handler.received] == [
        ["a@example.org"],
        ["b@example.org"],
        ["c@example.org"],
    ]
    assert len(smtp_server.handler.connections) == 2


def test_connection_dropping_again_makes_the_rest_transient(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    smtp_server.handler.drop_always.add("b@example.org")
    sender = SmtpSender(make_settings(tmp_path, smtp_server.port))

    results = sender.send_many(
        [mail(1, "a@example.org"), mail(2, "b@example.org"), mail(3, "c@example.org")]
    )

    assert [r.outcome for r in results] == [
        SendOutcome.sent,
        SendOutcome.transient_error,
        SendOutcome.transient_error,  # never attempted: the server keeps dropping us
    ]
    assert len(smtp_server.handler.connections) == 2


def test_server_down_is_transient_for_the_whole_batch(tmp_path: Path) -> None:
    sender = SmtpSender(make_settings(tmp_path, free_port()))

    results = sender.send_many([mail(1, "a@example.org"), mail(2, "b@example.org")])

    assert [r.outcome for r in results] == [SendOutcome.transient_error] * 2
    assert all("connect failed" in (r.error or "") for r in results)


def test_silent_server_times_out_as_transient(tmp_path: Path) -> None:
    # The kernel completes the TCP handshake for a listening socket; no banner ever comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        sender = SmtpSender(make_settings(tmp_path, port), timeout=0.3)

        [result] = sender.send_many([mail(1, "a@example.org")])

    assert result.outcome is SendOutcome.transient_error
    assert "timed out" in (result.error or "")  # smtplib reports it as a disconnection


class CountingLimiter:
    def __init__(self) -> None:
        self.calls = 0

    def acquire(self) -> None:
        self.calls += 1


def test_each_mail_waits_for_a_token_and_the_gate_on_one_connection(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    limiter = CountingLimiter()
    sender = SmtpSender(make_settings(tmp_path, smtp_server.port), limiter=limiter)
    batch = [mail(1, "a@example.org"), mail(2, "b@example.org"), mail(3, "c@example.org")]

    # Results come one at a time; the gate may refuse a message (its row was taken back).
    stream = sender.send_each(batch, gate=lambda m: m.delivery_id != 2)
    first, _ = next(stream)
    assert first.delivery_id == 1 and len(smtp_server.handler.received) == 1
    rest = list(stream)

    assert [m.delivery_id for m, _ in rest] == [3]
    assert limiter.calls == 3
    assert [r.rcpt_tos for r in smtp_server.handler.received] == [
        ["a@example.org"],
        ["c@example.org"],
    ]
    assert len(smtp_server.handler.connections) == 1


def test_empty_batch_does_not_connect(tmp_path: Path, smtp_server: SmtpServer) -> None:
    assert SmtpSender(make_settings(tmp_path, smtp_server.port)).send_many([]) == []
    assert smtp_server.handler.connections == []


@pytest.fixture
def auth_server() -> Iterator[SmtpServer]:
    # Plain-text AUTH is only for these tests; production keeps STARTTLS on (see below).
    controller, server = start_server(auth=True, auth_require_tls=False)
    try:
        yield server
    finally:
        controller.stop()


def test_logs_in_when_a_username_is_set(tmp_path: Path, auth_server: SmtpServer) -> None:
    settings = make_settings(tmp_path, auth_server.port, smtp_username=USER, smtp_password=PASSWORD)

    results = SmtpSender(settings).send_many([mail(1, "a@example.org"), mail(2, "b@example.org")])

    assert [r.outcome for r in results] == [SendOutcome.sent] * 2
    assert auth_server.handler.logins == [USER]  # once per connection, not per message
    assert [r.login for r in auth_server.handler.received] == [USER, USER]


def test_wrong_password_is_transient_and_sends_nothing(
    tmp_path: Path, auth_server: SmtpServer
) -> None:
    settings = make_settings(tmp_path, auth_server.port, smtp_username=USER, smtp_password="no")

    results = SmtpSender(settings).send_many([mail(1, "a@example.org"), mail(2, "b@example.org")])

    assert [r.outcome for r in results] == [SendOutcome.transient_error] * 2
    assert "535" in (results[0].error or "")
    assert auth_server.handler.received == []


def test_no_password_in_clear_when_starttls_expected_but_missing(
    tmp_path: Path, auth_server: SmtpServer
) -> None:
    settings = make_settings(
        tmp_path, auth_server.port, smtp_username=USER, smtp_password=PASSWORD, smtp_starttls=True
    )

    [result] = SmtpSender(settings).send_many([mail(1, "a@example.org")])

    assert result.outcome is SendOutcome.transient_error
    assert "STARTTLS" in (result.error or "")
    assert auth_server.handler.logins == []


# --- STARTTLS with a throwaway self-signed certificate --------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    # Debian's openssl is on every machine of this kind; without it the test fails, never skips.
    assert shutil.which("openssl"), "openssl is needed to make a throwaway test certificate"
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"],
            *["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
            *["-keyout", str(key), "-out", str(cert)],
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def tls_server(certificate: tuple[Path, Path]) -> Iterator[SmtpServer]:
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    controller, server = start_server(auth=True, tls_context=context, require_starttls=True)
    try:
        yield server
    finally:
        controller.stop()


def test_starttls_then_login(
    tmp_path: Path, tls_server: SmtpServer, certificate: tuple[Path, Path]
) -> None:
    settings = make_settings(
        tmp_path, tls_server.port, smtp_username=USER, smtp_password=PASSWORD, smtp_starttls=True
    )
    trust_test_cert = ssl.create_default_context(cafile=str(certificate[0]))

    results = SmtpSender(settings, ssl_context=trust_test_cert).send_many(
        [mail(1, "a@example.org"), mail(2, "b@example.org")]
    )

    assert [r.outcome for r in results] == [SendOutcome.sent] * 2
    assert [(r.over_tls, r.login) for r in tls_server.handler.received] == [(True, USER)] * 2
    assert len(tls_server.handler.connections) == 1


def test_untrusted_certificate_is_refused(tmp_path: Path, tls_server: SmtpServer) -> None:
    settings = make_settings(tmp_path, tls_server.port, smtp_starttls=True)

    [result] = SmtpSender(settings).send_many([mail(1, "a@example.org")])  # system CAs only

    assert result.outcome is SendOutcome.transient_error
    assert "CERTIFICATE_VERIFY_FAILED" in (result.error or "")
    assert tls_server.handler.received == []
