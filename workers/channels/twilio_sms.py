"""The `twilio` SMS channel: one Messages API call per message through the official client.

Outcomes follow the delivery guarantees in DESIGN.md: a 4xx about the message or the
recipient (invalid number, STOP, landline) is permanent; 429, 5xx, connection errors and
timeouts are transient and retried by the caller. Phone numbers and bodies are never logged,
and they are scrubbed from the error text we hand back (Twilio quotes the number in some).
"""

from __future__ import annotations

import logging
import re

import requests
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from ldis.domain.messages import OutgoingMessage, SendOutcome, SendResult
from ldis.settings import Settings

log = logging.getLogger(__name__)

# Twilio answers in well under a second; a hung connection must not hold a worker for long.
DEFAULT_TIMEOUT_SECONDS = 15.0

# 4xx statuses that say "our account or set-up is wrong", not "this recipient is wrong":
# failing them permanently would flag every contact in the batch for our own mistake.
_TRANSIENT_4XX = frozenset({401, 403, 404, 408, 429})

_PHONE_LIKE = re.compile(r"\+?\d[\d\s().-]{5,}\d")


class TwilioSender:
    def __init__(self, settings: Settings, *, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        self._from = settings.twilio_from
        self._status_callback = f"{settings.public_url}/webhooks/twilio/status"
        client = Client(
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            http_client=TwilioHttpClient(timeout=timeout),
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
        results = [self._send_one(message) for message in messages]
        if messages:
            counts = {outcome: 0 for outcome in SendOutcome}
            for result in results:
                counts[result.outcome] += 1
            log.info(
                "twilio batch: %d sent, %d transient, %d permanent",
                counts[SendOutcome.sent],
                counts[SendOutcome.transient_error],
                counts[SendOutcome.permanent_error],
            )
        return results

    def _send_one(self, message: OutgoingMessage) -> SendResult:
        try:
            created = self._messages.create(
                to=message.to,
                from_=self._from,
                body=message.text,
                status_callback=self._status_callback,
            )
        except TwilioRestException as exc:
            return _api_error(int(exc.status), exc.code, str(exc.msg), message.ref)
        except TwilioServiceException as exc:
            return _api_error(int(exc.status), exc.code, exc.title, message.ref)
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


def _api_error(status: int, code: int | None, text: str, ref: str) -> SendResult:
    permanent = 400 <= status < 500 and status not in _TRANSIENT_4XX
    outcome = SendOutcome.permanent_error if permanent else SendOutcome.transient_error
    detail = _PHONE_LIKE.sub("[number]", text.removeprefix("Unable to create record: "))
    log.warning("twilio refused %s: HTTP %d, code %s (%s)", ref, status, code, outcome)
    return SendResult(outcome, error=f"twilio {code or status} (HTTP {status}): {detail}")
