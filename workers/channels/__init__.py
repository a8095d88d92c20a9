"""Delivery channels behind one interface (`Sender.send_many`), chosen by settings.

Adding a channel (WhatsApp, a pager gateway) is one module here and one entry in `SENDERS`.
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

    return TwilioSender(settings)


def _smtp(settings: Settings, db: Database) -> Sender:
    from workers.channels.smtp_email import SmtpSender

    return SmtpSender(settings)


# setting value -> factory; the settings module already refuses any other value.
SENDERS: dict[str, SenderFactory] = {"outbox": _outbox, "twilio": _twilio, "smtp": _smtp}


def build_senders(settings: Settings, db: Database) -> dict[str, Sender]:
    return {
        Channel.sms.value: SENDERS[settings.sms_channel.value](settings, db),
        Channel.email.value: SENDERS[settings.email_channel.value](settings, db),
    }
