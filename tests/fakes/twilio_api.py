"""A local stand-in for Twilio's Messages API (/2010-04-01/Accounts/{sid}/Messages.json).

POST creates a message: it checks HTTP Basic auth, parses the form body like Twilio, answers
201 with a message resource, and can be told to answer a given destination number with a
Twilio error (400 with a Twilio code, 429, 500), to hang past the client's timeout, or to
fail a share of all requests at random (5xx, and 429 with `Retry-After`). Every request is
recorded. GET lists the messages created, newest first, filtered by `To`, `From` and
`DateSent>=` as Twilio does (what reconciliation reads). `status_callback()` builds a
receipt for a message, signed with the auth token as Twilio signs it.

    with FakeTwilio(account_sid, auth_token) as fake:
        fake.fail("+447700900999", 21211)
        fake.flaky(server_errors=0.2, throttled=0.1)
        ... point the client at fake.url ...
        fake.requests[0].to
"""

from __future__ import annotations

import base64
import contextlib
import json
import random
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qs, urlencode, urlsplit

from twilio.request_validator import RequestValidator

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
    at: datetime | None = None  # when the message was created (None for errors)


class FakeTwilio:
    def __init__(self, account_sid: str, auth_token: str) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.requests: list[ReceivedMessage] = []
        self.unauthorised = 0
        self._failures: dict[str, int] = {}  # destination number -> Twilio error code
        self._hangs: dict[str, float] = {}  # destination number -> seconds to sleep
        self._server_errors = 0.0  # share of POSTs answered 500
        self._throttled = 0.0  # share of POSTs answered 429 with Retry-After
        self._retry_after = 1
        self._random = random.Random(0)
        self.list_requests = 0
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

    def flaky(
        self,
        *,
        server_errors: float = 0.0,
        throttled: float = 0.0,
        retry_after: int = 1,
        seed: int = 0,
    ) -> None:
        """Answer this share of all message POSTs with a 500, and this share with a 429
        carrying `Retry-After: retry_after` (drawn at random, reproducibly from `seed`)."""
        with self._lock:
            self._server_errors, self._throttled = server_errors, throttled
            self._retry_after = retry_after
            self._random = random.Random(seed)

    def created(self) -> list[ReceivedMessage]:
        """The messages the fake accepted (and so would have sent), oldest first."""
        with self._lock:
            return [m for m in self.requests if m.sid is not None]

    def count_by(self, key: Callable[[ReceivedMessage], object]) -> Counter[object]:
        """How many accepted messages share each `key(message)` (e.g. a delivery ref)."""
        return Counter(key(m) for m in self.created())

    def status_callback(
        self, sid: str, status: str, *, url: str, error_code: int | None = None
    ) -> tuple[dict[str, str], str]:
        """A receipt as Twilio would post it to `url`: the form and its signature."""
        message = next(m for m in self.created() if m.sid == sid)
        form = {
            "AccountSid": self.account_sid,
            "MessageSid": sid,
            "SmsSid": sid,
            "MessageStatus": status,
            "SmsStatus": status,
            "To": message.to,
            "From": message.from_,
            "ApiVersion": "2010-04-01",
        }
        if error_code is not None:
            form["ErrorCode"] = str(error_code)
        signature = RequestValidator(self.auth_token).compute_signature(url, form)
        return form, signature

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

    def _injected_failure(self) -> int | None:
        """20500, 20429 or None, at the shares set by `flaky`."""
        with self._lock:
            draw = self._random.random()
        if draw < self._server_errors:
            return 20500
        if draw < self._server_errors + self._throttled:
            return 20429
        return None

    def _listed(self, query: dict[str, str]) -> list[ReceivedMessage]:
        since = _parse_date(query.get("DateSent>") or query.get("DateSent>=") or "")
        with self._lock:
            self.list_requests += 1
            found = [
                m
                for m in self.requests
                if m.sid is not None
                and m.at is not None
                and (not query.get("To") or m.to == query["To"])
                and (not query.get("From") or m.from_ == query["From"])
                and (since is None or m.at >= since)
            ]
        return found[::-1]  # newest first, as Twilio lists them


def _handler_for(fake: FakeTwilio) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # Without this each small response waits on Nagle + delayed ACK (~40 ms a request).
        disable_nagle_algorithm = True
        protocol_version = "HTTP/1.1"  # keep-alive, as the real API and requests use

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep test output clean

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            parts = url.path.strip("/").split("/")
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
                self._error(401, 20003, TWILIO_ERRORS[20003][1])
                return
            query = {key: values[0] for key, values in parse_qs(url.query).items()}
            found = fake._listed(query)
            size = max(1, min(int(query.get("PageSize") or 50), 1000))
            page = int(query.get("Page") or 0)
            chunk = found[page * size : (page + 1) * size]
            base = url.path
            following = {**query, "Page": str(page + 1), "PageSize": str(size)}
            self._json(
                200,
                {
                    "messages": [
                        _message_resource(
                            m.account_sid, m.sid or "", m.to, m.from_, m.body, {}, at=m.at
                        )
                        for m in chunk
                    ],
                    "page": page,
                    "page_size": size,
                    "first_page_uri": f"{base}?{urlencode({**query, 'Page': '0'})}",
                    "previous_page_uri": None,
                    "next_page_uri": (
                        f"{base}?{urlencode(following)}" if (page + 1) * size < len(found) else None
                    ),
                    "start": page * size,
                    "end": page * size + len(chunk) - 1,
                    "uri": self.path,
                },
            )

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw_bytes = self.rfile.read(length)
            if len(raw_bytes) < length:
                return  # the client went away mid-request: Twilio would create nothing
            raw = raw_bytes.decode()
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
            code = fake._failures.get(to) or fake._injected_failure()
            sid = None if code else "SM" + secrets.token_hex(16)
            at = None if code else datetime.now(UTC)
            fake._record(
                ReceivedMessage(parts[2], to, from_, body, form.get("StatusCallback"), sid, at)
            )
            if code:
                status, text = TWILIO_ERRORS[code]
                headers = {"Retry-After": str(fake._retry_after)} if status == 429 else {}
                self._error(status, code, text.format(to=to), headers)
                return
            assert sid is not None
            self._json(201, _message_resource(parts[2], sid, to, from_, body, form, at=at))

        def _error(
            self, status: int, code: int, message: str, headers: dict[str, str] | None = None
        ) -> None:
            self._json(
                status,
                {
                    "code": code,
                    "message": message,
                    "more_info": f"https://www.twilio.com/docs/errors/{code}",
                    "status": status,
                },
                headers,
            )

        def _json(
            self, status: int, payload: dict[str, object], headers: dict[str, str] | None = None
        ) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            # The client may have given up (its timeout); as with Twilio, the work is done.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(data)

    return Handler


def _parse_date(value: str) -> datetime | None:
    """`YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SSZ`, as Twilio's DateSent filters accept."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _message_resource(
    account_sid: str,
    sid: str,
    to: str,
    from_: str,
    body: str,
    form: dict[str, str],
    *,
    at: datetime | None = None,
) -> dict[str, object]:
    now = format_datetime(at or datetime.now(UTC), usegmt=True)
    return {
        "account_sid": account_sid,
        "api_version": "2010-04-01",
        "body": body,
        "date_created": now,
        "date_sent": now,
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
