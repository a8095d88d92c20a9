"""Service notices: messages that are not alerts (verification codes, notes to a service's
manager, review reminders, replies to inbound texts).

A notice is written by `queue_notice` inside the transaction of the change that causes it,
so it goes out if and only if that change committed; a worker sends it after the commit.
Its `dedupe_key` makes a repeat of the cause (a retried webhook, a reminder job run twice)
write nothing new. States move by conditional updates, as deliveries do, so a notice is
sent at most once by the local outbox and retried only on transient errors.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ldis.domain.deliveries import DeliveryStatus
from ldis.domain.messages import OutgoingMessage, SendOutcome, SendResult
from ldis.domain.public_phone import unseal_phone
from ldis.services.ports import Sender, TaskQueue
from ldis.store.db import Database, dialect_insert
from ldis.store.models import Notice

log = logging.getLogger(__name__)
MAX_NOTICE_ATTEMPTS = 6
# Notices whose recipient is a sealed number (public subscribers: ldis.services.public_subscriptions).
SEALED_PURPOSE = "public_alert"


def queue_notice(
    session: Session,
    *,
    dedupe_key: str,
    purpose: str,
    channel: str,
    recipient: str,
    text: str,
    subject: str | None = None,
    html: str | None = None,
) -> int | None:
    """Write a queued notice in the caller's transaction; return its id, or None when a
    notice with this `dedupe_key` already exists (nothing is written twice)."""
    values = {
        "dedupe_key": dedupe_key[:200],
        "purpose": purpose,
        "channel": channel,
        "recipient": recipient,
        "subject": subject,
        "text_body": text,
        "html_body": html,
        "status": DeliveryStatus.queued.value,
        "attempts": 0,
        "created_at": datetime.now(UTC),
    }
    insert = dialect_insert(session)
    statement = (
        insert(Notice)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(Notice.id)
    )
    return session.execute(statement).scalar_one_or_none()


def enqueue_quietly(queue: TaskQueue | None, notice_ids: list[int | None]) -> None:
    """Ring the doorbell after the commit; if the broker is down the sweeper sends them."""
    ids = [i for i in notice_ids if i is not None]
    if queue is None or not ids:
        return
    try:
        queue.enqueue_notices(ids)
    except Exception:
        log.warning("broker unavailable: %s notices left for the sweeper", len(ids))


def _claim(db: Database, notice_ids: list[int]) -> list[Notice]:
    now = datetime.now(UTC)
    with db.transaction() as session:
        won = list(
            session.scalars(
                update(Notice)
                .where(Notice.id.in_(notice_ids), Notice.status == DeliveryStatus.queued.value)
                .values(
                    status=DeliveryStatus.sending.value,
                    claimed_at=now,
                    attempts=Notice.attempts + 1,
                )
                .returning(Notice.id)
            )
        )
        if not won:
            return []
        notices = list(session.scalars(select(Notice).where(Notice.id.in_(won))))
        session.expunge_all()
        return notices


def _recipient(notice: Notice, secret: str | None) -> str:
    """The address to send to: public subscribers' numbers are kept sealed (ValueError when
    they cannot be unsealed)."""
    if notice.purpose != SEALED_PURPOSE:
        return notice.recipient
    if not secret:
        raise ValueError("no key to unseal the number with")
    return unseal_phone(notice.recipient, secret)


def _message(notice: Notice, secret: str | None = None) -> OutgoingMessage:
    headers = {}
    if notice.channel == "email":
        headers["Message-ID"] = f"<notice-{notice.id}@ldis>"
    return OutgoingMessage(
        delivery_id=None,
        notice_id=notice.id,
        channel=notice.channel,
        to=_recipient(notice, secret),
        text=notice.text_body,
        subject=notice.subject,
        html=notice.html_body,
        headers=headers,
    )


def _record(db: Database, notice: Notice, result: SendResult) -> bool:
    """Store the outcome; True when the notice should be tried again later."""
    now = datetime.now(UTC)
    retry = result.outcome is SendOutcome.transient_error and notice.attempts < MAX_NOTICE_ATTEMPTS
    if result.outcome is SendOutcome.sent:
        values = {
            "status": DeliveryStatus.sent.value,
            "provider_id": result.provider_id,
            "sent_at": now,
            "last_error": None,
        }
    else:
        error = (result.error or result.outcome.value)[:500]
        status = DeliveryStatus.queued if retry else DeliveryStatus.failed
        values = {"status": status.value, "last_error": error}
    with db.transaction() as session:
        session.execute(
            update(Notice)
            .where(Notice.id == notice.id, Notice.status == DeliveryStatus.sending.value)
            .values(**values)
        )
    return retry


def send_notices(
    db: Database,
    notice_ids: list[int],
    senders: Mapping[str, Sender],
    *,
    secret: str | None = None,
) -> list[int]:
    """Send what can be claimed of `notice_ids`; return the ids to try again later.
    `secret` (LDIS_SECRET_KEY) unseals public subscribers' numbers."""
    by_channel: dict[str, list[Notice]] = defaultdict(list)
    for notice in _claim(db, notice_ids):
        try:
            _recipient(notice, secret)
        except ValueError as exc:
            _record(db, notice, SendResult(SendOutcome.permanent_error, error=str(exc)))
            continue
        by_channel[notice.channel].append(notice)
    retry = []
    for channel, notices in by_channel.items():
        sender = senders.get(channel)
        messages = [_message(n, secret) for n in notices]
        if sender is None:
            results = [SendResult(SendOutcome.permanent_error, error=f"no {channel} channel")]
            results *= len(messages)
        else:
            try:
                results = sender.send_many(messages)
            except Exception as exc:
                log.exception("channel failed on %s notices; will retry", len(messages))
                error = f"channel error: {type(exc).__name__}"
                results = [SendResult(SendOutcome.transient_error, error=error)] * len(messages)
        for notice, result in zip(notices, results, strict=True):
            if _record(db, notice, result):
                retry.append(notice.id)
    return retry


def sweep_notices(db: Database, stuck_after: timedelta) -> list[int]:
    """Notices a lost task left behind (queued too long, or stuck mid-send), to enqueue again."""
    now = datetime.now(UTC)
    cutoff = now - stuck_after
    with db.transaction() as session:
        session.execute(
            update(Notice)
            .where(
                Notice.status == DeliveryStatus.sending.value,
                Notice.claimed_at < now - stuck_after * 5,
            )
            .values(status=DeliveryStatus.queued.value, last_error="worker lost mid-send")
        )
        return list(
            session.scalars(
                select(Notice.id)
                .where(
                    Notice.status == DeliveryStatus.queued.value,
                    Notice.created_at < cutoff,
                    (Notice.claimed_at.is_(None)) | (Notice.claimed_at < cutoff),
                )
                .order_by(Notice.id)
                .limit(10_000)
            )
        )
