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
            delivery_ids = [m.delivery_id for m in messages if m.delivery_id is not None]
            notice_ids = [m.notice_id for m in messages if m.notice_id is not None]
            # One row per delivery or notice whatever happens: a repeat finds the first one.
            existing: dict[str, int] = {}
            for delivery_id, row_id in session.execute(
                select(OutboxMessage.delivery_id, OutboxMessage.id).where(
                    OutboxMessage.delivery_id.in_(delivery_ids)
                )
            ):
                existing[f"delivery-{delivery_id}"] = row_id
            for notice_id, row_id in session.execute(
                select(OutboxMessage.notice_id, OutboxMessage.id).where(
                    OutboxMessage.notice_id.in_(notice_ids)
                )
            ):
                existing[f"notice-{notice_id}"] = row_id
            rows = {}
            for message in messages:
                if message.ref in existing or message.ref in rows:
                    continue
                row = OutboxMessage(
                    delivery_id=message.delivery_id,
                    notice_id=message.notice_id,
                    channel=message.channel,
                    recipient=message.to,
                    subject=message.subject,
                    text_body=message.text,
                    html_body=message.html,
                )
                session.add(row)
                rows[message.ref] = row
            session.flush()
            stored = existing | {ref: row.id for ref, row in rows.items()}
        return [
            SendResult(SendOutcome.sent, provider_id=f"outbox-{stored[m.ref]}") for m in messages
        ]
