"""A local stand-in for Twilio's Messages API (POST /2010-04-01/Accounts/{sid}/Messages.json).

It checks HTTP Basic auth, parses the form body like Twilio, answers 201 with a message
resource, and can be told to answer a given destination number with a Twilio error (400 with
a Twilio code, 429, 500) or to hang past the client's timeout. Every request is recorded.

    with FakeTwilio(account_sid, auth_token) as fake:
        fake.fail("+447700900999", 21211)
        ... point the client at fake.url ...
        fake.requests[0].to
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qs

# What Twilio says for the errors the tests use (messages as documented; 21211 quotes the
# number, as the real API does, so tests can check it is scrubbed).
TWILIO_ERRORS: dict[int, tuple[int, str]] = {
    21211: (400, "The 'To' number {to} is not a valid phone number."),
    21408: (
        400,
        "Permission to send an SMS has not been enabled for the region indicated by "
        "the 'To' number: {to}.",
    ),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21614: (400, "'To' number is not a valid mobile number"),
    20003: (401, "Authenticate"),
    20429: (429, "Too Many Requests"),
    20500: (500, "An internal server error has occurred"),
}


@dataclass(frozen=True)
class ReceivedMessage:
    account_sid: str
    to: str
    from_: str
    body: str
    status_callback: str | None
    sid: str | None  # None when the fake answered with an error


class FakeTwilio:
    def __init__(self, account_sid: str, auth_token: str) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.requests: list[ReceivedMessage] = []
        self.unauthorised = 0
        self._failures: dict[str, int] = {}  # destination number -> Twilio error code
        self._hangs: dict[str, float] = {}  # destination number -> seconds to sleep
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        # A short poll interval so stop() (shutdown) returns at once rather than after ~0.5 s.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def fail(self, to: str, code: int) -> None:
        """Answer messages to `to` with the Twilio error `code` (see TWILIO_ERRORS)."""
        if code not in TWILIO_ERRORS:
            raise ValueError(f"unknown fake error code {code}")
        self._failures[to] = code

    def hang(self, to: str, seconds: float) -> None:
        """Sleep before answering messages to `to`, to drive the client into its timeout."""
        self._hangs[to] = seconds

    def start(self) -> FakeTwilio:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeTwilio:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- called from the handler threads ---------------------------------------------------

    def _authorised(self, header: str | None) -> bool:
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return secrets.compare_digest(
            user.encode(), self.account_sid.encode()
        ) and secrets.compare_digest(password.encode(), self.auth_token.encode())

    def _record(self, message: ReceivedMessage) -> None:
        with self._lock:
            self.requests.append(message)


def _handler_for(fake: FakeTwilio) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # Without this each small response waits on Nagle + delayed ACK (~40 ms a request).
        disable_nagle_algorithm = True
        protocol_version = "HTTP/1.1"  # keep-alive, as the real API and requests use

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep test output clean

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode()
            parts = self.path.strip("/").split("/")
            # 2010-04-01 / Accounts / {sid} / Messages.json
            if (
                len(parts) != 4
                or parts[:2] != ["2010-04-01", "Accounts"]
                or (parts[3] != "Messages.json")
            ):
                self._error(404, 20404, "The requested resource was not found")
                return
            if not fake._authorised(self.headers.get("Authorization")) or (
                parts[2] != fake.account_sid
            ):
                with fake._lock:
                    fake.unauthorised += 1
                self._error(401, 20003, TWILIO_ERRORS[20003][1])
                return
            form = {key: values[0] for key, values in parse_qs(raw).items()}
            to, from_, body = form.get("To", ""), form.get("From", ""), form.get("Body", "")
            if not to or not from_ or not body:
                self._error(400, 21604, "A 'To' phone number, 'From' and 'Body' are required.")
                return
            if to in fake._hangs:
                time.sleep(fake._hangs[to])
            code = fake._failures.get(to)
            sid = None if code else "SM" + secrets.token_hex(16)
            fake._record(
                ReceivedMessage(parts[2], to, from_, body, form.get("StatusCallback"), sid)
            )
            if code:
                status, text = TWILIO_ERRORS[code]
                self._error(status, code, text.format(to=to))
                return
            assert sid is not None
            self._json(201, _message_resource(parts[2], sid, to, from_, body, form))

        def _error(self, status: int, code: int, message: str) -> None:
            self._json(
                status,
                {
                    "code": code,
                    "message": message,
                    "more_info": f"https://www.twilio.com/docs/errors/{code}",
                    "status": status,
                },
            )

        def _json(self, status: int, payload: dict[str, object]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            # The client may have given up (its timeout); as with Twilio, the work is done.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(data)

    return Handler


def _message_resource(
    account_sid: str, sid: str, to: str, from_: str, body: str, form: dict[str, str]
) -> dict[str, object]:
    now = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
    return {
        "account_sid": account_sid,
        "api_version": "2010-04-01",
        "body": body,
        "date_created": now,
        "date_sent": None,
        "date_updated": now,
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": from_,
        "messaging_service_sid": form.get("MessagingServiceSid"),
        "num_media": "0",
        "num_segments": "1",
        "price": None,
        "price_unit": "USD",
        "sid": sid,
        "status": "queued",
        "subresource_uris": {
            "media": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}/Media.json"
        },
        "to": to,
        "uri": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json",
    }
