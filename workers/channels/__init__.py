"""Delivery channels behind one interface (`Sender.send_many`), chosen by settings.

Adding a channel (WhatsApp, a pager gateway) is one module here and one entry in `SENDERS`.
Provider channels also stream (`send_each`: one result at a time, so each is recorded before
the next message goes) and take a token from their account's rate limit before each message
(`workers.ratelimit`); Twilio can also say which messages it already has (`find_sent`).
The local outbox needs neither: it stores each delivery once, whatever happens.
"""

from __future__ import annotations

from collections.abc import Callable

from ldis.domain.deliveries import Channel
from ldis.services.ports import Sender
from ldis.settings import Settings
from ldis.store.db import Database
from workers.channels.outbox import OutboxSender

SenderFactory = Callable[[Settings, Database], Sender]


def _outbox(settings: Settings, db: Database) -> Sender:
    return OutboxSender(db)


def _twilio(settings: Settings, db: Database) -> Sender:
    from workers.channels.twilio_sms import TwilioSender
    from workers.ratelimit import limiter_for

    limiter = limiter_for(
        settings, "sms", f"twilio:{settings.twilio_account_sid}", settings.sms_rate_per_second
    )
    return TwilioSender(settings, limiter=limiter)


def _smtp(settings: Settings, db: Database) -> Sender:
    from workers.channels.smtp_email import SmtpSender
    from workers.ratelimit import limiter_for

    account = f"smtp:{settings.smtp_host}:{settings.smtp_port}:{settings.smtp_username}"
    limiter = limiter_for(settings, "email", account, settings.email_rate_per_second)
    return SmtpSender(settings, limiter=limiter)


# setting value -> factory; the settings module already refuses any other value.
SENDERS: dict[str, SenderFactory] = {"outbox": _outbox, "twilio": _twilio, "smtp": _smtp}


def build_senders(settings: Settings, db: Database) -> dict[str, Sender]:
    return {
        Channel.sms.value: SENDERS[settings.sms_channel.value](settings, db),
        Channel.email.value: SENDERS[settings.email_channel.value](settings, db),
    }
