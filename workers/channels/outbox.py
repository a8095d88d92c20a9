"""The embedded `outbox` channel: messages are stored for a person to read at /outbox."""

from __future__ import annotations

from sqlalchemy import select

from ldis.domain.messages import OutgoingMessage, SendOutcome, SendResult
from ldis.store.db import Database
from ldis.store.models import OutboxMessage


class OutboxSender:
    def __init__(self, db: Database) -> None:
        self._db = db

    def send_many(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        with self._db.transaction() as session:
            ids = [m.delivery_id for m in messages]
            # One row per delivery whatever happens: a repeated send finds the first one.
            existing = dict(
                session.execute(
                    select(OutboxMessage.delivery_id, OutboxMessage.id).where(
                        OutboxMessage.delivery_id.in_(ids)
                    )
                ).all()
            )
            rows = {}
            for message in messages:
                if message.delivery_id in existing:
                    continue
                row = OutboxMessage(
                    delivery_id=message.delivery_id,
                    channel=message.channel,
                    recipient=message.to,
                    subject=message.subject,
                    text_body=message.text,
                    html_body=message.html,
                )
                session.add(row)
                rows[message.delivery_id] = row
            session.flush()
            stored = existing | {delivery_id: row.id for delivery_id, row in rows.items()}
        return [
            SendResult(SendOutcome.sent, provider_id=f"outbox-{stored[m.delivery_id]}")
            for m in messages
        ]
