"""The `twilio` SMS channel: one Messages API call per message through the official client.

Outcomes follow the delivery guarantees in DESIGN.md: a 4xx about the message or the
recipient (invalid number, STOP, landline) is permanent; 429, 5xx, connection errors and
timeouts are transient and retried by the caller (429 with Twilio's `Retry-After`). Phone
numbers and bodies are never logged, and they are scrubbed from the error text we hand back
(Twilio quotes the number in some).

Before a delivery whose earlier try may have reached Twilio is sent again, the caller asks
`find_sent`: Twilio's message list for that number (newest first, back to a given time) is
searched for our text, so a message Twilio already has is recorded, not sent twice.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Generator
from datetime import UTC, datetime
from typing import Any

import requests
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from ldis.domain.deliveries import RetryLater
from ldis.domain.messages import OutgoingMessage, SendOutcome, SendResult
from ldis.services.ports import Gate
from ldis.settings import Settings
from ldis.telemetry import record_outcomes
from workers.ratelimit import Limiter

log = logging.getLogger(__name__)
# The client logs every request at INFO (method, URL, headers: about ten lines a text);
# 100,000 lines per 10,000 texts would bury the worker log. Its warnings still show.
logging.getLogger("twilio.http_client").setLevel(logging.WARNING)

# Twilio answers in well under a second; a hung connection must not hold a worker for long.
# Keep it well under LDIS_STUCK_AFTER_SECONDS: a request still in flight when the sweeper
# takes its row back is the one way a text could be sent twice.
DEFAULT_TIMEOUT_SECONDS = 15.0

# 4xx statuses that say "our account or set-up is wrong", not "this recipient is wrong":
# failing them permanently would flag every contact in the batch for our own mistake.
_TRANSIENT_4XX = frozenset({401, 403, 404, 408, 429})

_PHONE_LIKE = re.compile(r"\+?\d[\d\s().-]{5,}\d")
# Our messages carry the signed acknowledgement link, unique to the delivery.
_ACK_LINK = re.compile(r"/ack/([A-Za-z0-9._-]+)")
# How far back through one number's messages reconciliation reads.
_RECONCILE_LIMIT = 200


class _HeaderKeepingClient(TwilioHttpClient):  # type: ignore[misc]
    """Remembers the last response's headers (Twilio's exceptions drop `Retry-After`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.last_headers: dict[str, str] = {}

    def request(self, *args: Any, **kwargs: Any) -> Any:
        self.last_headers = {}
        response = super().request(*args, **kwargs)
        self.last_headers = dict(response.headers or {})
        return response


def environment_once(http: TwilioHttpClient, base_url: str) -> None:
    """Read the proxy and CA-bundle settings of the environment (HTTPS_PROXY, NO_PROXY,
    REQUESTS_CA_BUNDLE...) once, for the Twilio host, instead of on every request:
    `requests` otherwise walks the whole process environment per message (a tenth of a
    worker's CPU per text in the fan-out benchmark, docs/performance.md)."""
    session = http.session
    if session is None:
        return
    session.proxies.update(requests.utils.get_environ_proxies(base_url))
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle
    session.trust_env = False


class TwilioSender:
    def __init__(
        self,
        settings: Settings,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        limiter: Limiter | None = None,
    ) -> None:
        self._from = settings.twilio_from
        self._status_callback = f"{settings.public_url}/webhooks/twilio/status"
        self._limiter = limiter
        self._http = _HeaderKeepingClient(timeout=timeout)
        environment_once(self._http, settings.twilio_base_url)
        client = Client(
            settings.twilio_account_sid, settings.twilio_auth_token, http_client=self._http
        )
        # Settings are the only configuration: TWILIO_EDGE / TWILIO_REGION from the process
        # environment would make the client rewrite the host of every request.
        client.edge = None
        client.region = None
        # The Api domain object is what builds the Messages URL (domain.base_url +
        # "/2010-04-01" + "/Accounts/{sid}/Messages.json"); its versions read it per request.
        client.api.base_url = settings.twilio_base_url.rstrip("/")
        self._messages = client.api.v2010.account.messages

    def send_many(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        return [result for _, result in self.send_each(messages)]

    def send_each(
        self, messages: list[OutgoingMessage], gate: Gate | None = None
    ) -> Generator[tuple[OutgoingMessage, SendResult], None, None]:
        """Send one by one, each after a token from the rate limit and a yes from `gate`
        (which may refuse: the message is then skipped, with no result)."""
        counts = dict.fromkeys(SendOutcome, 0)
        try:
            for message in messages:
                if self._limiter is not None:
                    self._limiter.acquire()
                if gate is not None and not gate(message):
                    continue
                result = self._send_one(message)
                counts[result.outcome] += 1
                yield message, result
        finally:
            if any(counts.values()):
                log.info(
                    "twilio batch: %d sent, %d transient, %d permanent",
                    counts[SendOutcome.sent],
                    counts[SendOutcome.transient_error],
                    counts[SendOutcome.permanent_error],
                )
                record_outcomes("sms", counts)  # provider outcomes for /metrics

    def find_sent(self, messages: list[OutgoingMessage], since: datetime) -> dict[str, str | None]:
        """For each message, the sid of a message Twilio already has with our text, sent
        to that number since `since` (or None when it has none). A message Twilio could not
        be asked about is left out: its fate is unknown."""
        found: dict[str, str | None] = {}
        for message in messages:
            try:
                found[message.ref] = self._find_one(message, since)
            except (TwilioRestException, TwilioServiceException, requests.RequestException) as exc:
                log.warning("twilio: could not reconcile %s (%s)", message.ref, type(exc).__name__)
            except ValueError as exc:
                log.warning("twilio: bad list answer for %s (%s)", message.ref, exc)
        return found

    def _find_one(self, message: OutgoingMessage, since: datetime) -> str | None:
        # Newest first and no DateSent filter: a message still in Twilio's queue has no
        # date_sent yet and a DateSent filter would miss it. Stop once past `since`.
        ours = _ACK_LINK.search(message.text)
        for record in self._messages.stream(
            to=message.to, from_=self._from, limit=_RECONCILE_LIMIT, page_size=50
        ):
            created = record.date_created
            if isinstance(created, datetime) and created.astimezone(UTC) < since:
                break
            body = record.body or ""
            if body == message.text or (ours is not None and ours.group(0) in body):
                return str(record.sid)
        return None

    def _send_one(self, message: OutgoingMessage) -> SendResult:
        try:
            created = self._messages.create(
                to=message.to,
                from_=self._from,
                body=message.text,
                status_callback=self._status_callback,
            )
        except TwilioRestException as exc:
            return self._api_error(int(exc.status), exc.code, str(exc.msg), message.ref)
        except TwilioServiceException as exc:
            return self._api_error(int(exc.status), exc.code, exc.title, message.ref)
        except requests.Timeout as exc:
            log.warning("twilio timeout for %s", message.ref)
            return SendResult(SendOutcome.transient_error, error=f"timeout: {type(exc).__name__}")
        except requests.RequestException as exc:
            # Connection refused/reset, DNS, TLS: nothing (or nothing known) reached Twilio.
            log.warning("twilio connection error for %s", message.ref)
            return SendResult(
                SendOutcome.transient_error, error=f"connection error: {type(exc).__name__}"
            )
        except ValueError as exc:
            # A 2xx whose body is not JSON: a proxy or a broken fake, not the recipient.
            return SendResult(
                SendOutcome.transient_error, error=f"bad response: {type(exc).__name__}"
            )
        return SendResult(SendOutcome.sent, provider_id=str(created.sid))

    def _api_error(self, status: int, code: int | None, text: str, ref: str) -> SendResult:
        result = _api_error(status, code, text, ref)
        if status == 429:
            return RetryLater(
                result.outcome,
                error=result.error,
                retry_after=_seconds(self._http.last_headers.get("Retry-After")),
            )
        return result


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: rare from Twilio; the backoff alone will do


def _api_error(status: int, code: int | None, text: str, ref: str) -> SendResult:
    permanent = 400 <= status < 500 and status not in _TRANSIENT_4XX
    outcome = SendOutcome.permanent_error if permanent else SendOutcome.transient_error
    detail = _PHONE_LIKE.sub("[number]", text.removeprefix("Unable to create record: "))
    log.warning("twilio refused %s: HTTP %d, code %s (%s)", ref, status, code, outcome)
    return SendResult(outcome, error=f"twilio {code or status} (HTTP {status}): {detail}")
