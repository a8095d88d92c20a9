"""Keeping distribution lists true: which send failures are the recipient's (so the contact
is flagged to the service's manager), and when a service is due its yearly review.

A permanent error is not always the recipient's fault: "no sms channel" or Twilio's 21408
(our account may not text that region) are ours to fix, and flagging every contact in a batch
for them would bury the real problems. Only errors that say "this address is wrong or
refuses us" flag a contact.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

# Twilio error codes about the recipient: https://www.twilio.com/docs/api/errors
TWILIO_UNSUBSCRIBED = 21610
TWILIO_RECIPIENT_CODES: dict[int, str] = {
    21211: "the mobile number is not valid",
    21214: "the mobile number cannot be reached",
    21612: "the mobile network cannot deliver to this number",
    21614: "the number is not a mobile (a landline cannot receive texts)",
    TWILIO_UNSUBSCRIBED: "the phone has opted out at the network (it replied STOP)",
}
_TWILIO_CODE = re.compile(r"^twilio (\d+) ")
# workers.channels.smtp_email: "recipient refused: 550 ..." is a 5xx answer to RCPT TO.
_SMTP_REFUSED = re.compile(r"^recipient refused: (5\d\d)\b")

# A reminder is not repeated within this time, however often the daily job runs.
REMIND_AGAIN_AFTER = timedelta(days=30)


@dataclass(frozen=True)
class RecipientFailure:
    """Why messages to one contact's channel cannot arrive; `reason` names no address."""

    reason: str
    opted_out: bool = False  # the carrier refuses because the phone opted out (STOP)


def recipient_failure(channel: str, error: str | None) -> RecipientFailure | None:
    """The recipient's fault in a permanent send error, or None when it is not theirs."""
    text = (error or "").strip()
    if text == "no address":
        where = "mobile number" if channel == "sms" else "e-mail address"
        return RecipientFailure(f"the contact has no {where} for this channel")
    if channel == "sms" and (match := _TWILIO_CODE.match(text)):
        code = int(match.group(1))
        if code in TWILIO_RECIPIENT_CODES:
            return RecipientFailure(
                f"{TWILIO_RECIPIENT_CODES[code]} (Twilio {code})",
                opted_out=code == TWILIO_UNSUBSCRIBED,
            )
    if channel == "email" and (match := _SMTP_REFUSED.match(text)):
        return RecipientFailure(f"the mail server refused the address (SMTP {match.group(1)})")
    return None


def review_due(
    *,
    confirmed_at: datetime | None,
    created_at: datetime,
    reminded_at: datetime | None,
    now: datetime,
    interval: timedelta,
) -> bool:
    """A service's details are due a check `interval` after they were last confirmed (or
    created), unless a reminder already went out within REMIND_AGAIN_AFTER."""
    if (confirmed_at or created_at) > now - interval:
        return False
    return reminded_at is None or reminded_at <= now - REMIND_AGAIN_AFTER


def review_overdue(
    *, confirmed_at: datetime | None, created_at: datetime, now: datetime, interval: timedelta
) -> bool:
    """Whether the details are older than the interval, reminded or not (for the page)."""
    return (confirmed_at or created_at) <= now - interval


OPTED_OUT = "recipient opted out"
ADDRESS_FAILED = "recipient address failed permanently earlier"


def send_blocked(
    *,
    contact_opted_out: bool,
    channel_opted_out: bool,
    channel_failed: bool,
    kind_unsubscribed: bool,
) -> str | None:
    """Why a queued delivery must not be sent now (its `last_error`), or None to send it."""
    if contact_opted_out or channel_opted_out or kind_unsubscribed:
        return OPTED_OUT
    if channel_failed:
        return ADDRESS_FAILED
    return None
