"""Twilio's webhooks: inbound texts and delivery receipts (status callbacks). Open to the
internet (`public`) but every request must carry Twilio's signature (`X-Twilio-Signature`: HMAC-SHA1 with our auth token over the URL Twilio called,
which is LDIS_PUBLIC_URL + path, and the posted fields); anything else gets 403 and changes
nothing. Without LDIS_TWILIO_AUTH_TOKEN no signature can be checked, so everything is
refused. CSRF does not apply (Twilio holds no session); the signature is the proof."""

from __future__ import annotations

import contextlib
import logging

from flask import Blueprint, Response, request
from flask.typing import ResponseReturnValue
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from ldis.api.errors import error_response
from ldis.domain.public_phone import phone_hash
from ldis.domain.public_reports import command
from ldis.domain.recipients import normalise_phone
from ldis.services import inbound_sms, notices, receipts
from ldis.settings import Settings
from ldis.web.access import public
from ldis.web.extensions import container
from ldis.web.ratelimits import allow, rate_limited

bp = Blueprint("webhooks", __name__)
log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Twilio-Signature"


def signed_by_twilio(settings: Settings) -> bool:
    signature = request.headers.get(SIGNATURE_HEADER, "")
    if not settings.twilio_auth_token or not signature:
        return False
    url = settings.public_url + request.path
    if request.query_string:
        url += "?" + request.query_string.decode("latin-1")
    return bool(RequestValidator(settings.twilio_auth_token).validate(url, request.form, signature))


def _refused() -> Response:
    return error_response(
        403, "forbidden", "This webhook accepts only requests signed by Twilio for this URL."
    )


def _twiml(reply: str | None) -> Response:
    answer = MessagingResponse()
    if reply:
        answer.message(reply)
    return Response(str(answer), status=200, mimetype="application/xml")


@bp.post("/webhooks/twilio/inbound")
@rate_limited("webhook")
@public
def inbound() -> ResponseReturnValue:
    """A text someone sent to our number: STOP, START, HELP or a verification code."""
    c = container()
    if not signed_by_twilio(c.settings):
        # Counted, not described: the body may hold a phone number.
        log.warning("refused an unsigned or wrongly signed inbound SMS webhook")
        return _refused()
    form = request.form
    if command(form.get("Body", "")) is not None and not _public_allowed(c.settings):
        # REPORT and JOIN from one phone beyond LDIS_PUBLIC_REPORT_RATE: no reply (a flood
        # must not cost a text each) and nothing stored.
        return _twiml(None)
    outcome = inbound_sms.handle(
        c.db,
        sender=form.get("From", ""),
        body=form.get("Body", ""),
        message_sid=form.get("MessageSid", "") or form.get("SmsSid", ""),
        help_reply=inbound_sms.help_text(c.settings.public_url, c.settings.mail_from),
        secret=c.settings.secret(),
        public_url=c.settings.public_url,
    )
    notices.enqueue_quietly(c.queue, list(outcome.notice_ids))
    return _twiml(outcome.reply)


def _public_allowed(settings: Settings) -> bool:
    """Counted per sender, by the keyed hash of the number (never the number itself)."""
    sender = request.form.get("From", "")
    with contextlib.suppress(ValueError):
        sender = normalise_phone(sender)
    hashed = phone_hash(sender, settings.secret())
    return allow("public:sms", hashed, settings.public_report_rate)


@bp.post("/webhooks/twilio/status")
@rate_limited("webhook")
@public
def status() -> ResponseReturnValue:
    """A receipt for a text we sent: delivered, undelivered or failed (docs/delivery.md)."""
    c = container()
    if not signed_by_twilio(c.settings):
        log.warning("refused an unsigned or wrongly signed status callback")
        return _refused()
    form = request.form
    receipt = receipts.record_sms_status(
        c.db,
        message_sid=form.get("MessageSid", "") or form.get("SmsSid", ""),
        status=form.get("MessageStatus", "") or form.get("SmsStatus", ""),
        error_code=form.get("ErrorCode"),
        public_url=c.settings.public_url,
    )
    notices.enqueue_quietly(c.queue, list(receipt.notice_ids))
    # 2xx whatever we made of it: Twilio has nothing better to send, and a message that is
    # not ours (or already final) needs nothing from it.
    return Response(status=204)
