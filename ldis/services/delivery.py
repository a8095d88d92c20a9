"""Worker-side use cases: claim deliveries, render, send through a channel, record the outcome.

States move only by conditional updates (`WHERE status = 'queued'`), so a batch sent twice,
a retry racing the sweeper, or two workers holding the same ids cannot send one twice.
The session is closed before any provider is called: a slow provider holds no database lock.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session

from ldis.domain.alerts import AlertKind
from ldis.domain.deliveries import DeliveryStatus, sources_of
from ldis.domain.hygiene import recipient_failure, send_blocked
from ldis.domain.messages import OutgoingMessage, SendOutcome, SendResult
from ldis.messages.context import (
    is_exercise,
    message_context,
    previous_version_of,
    template_for,
)
from ldis.messages.render import Renderer, TemplateError
from ldis.services import hygiene
from ldis.services.links import Links
from ldis.services.ports import Sender
from ldis.store.db import Database
from ldis.store.models import (
    AlertVersion,
    Contact,
    ContactChannel,
    ContactUnsubscription,
    Delivery,
)

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 8


def _due(now: datetime) -> ColumnElement[bool]:
    """Not held back: a standard alert waiting out a contact's quiet hours is not due yet."""
    return or_(Delivery.not_before.is_(None), Delivery.not_before <= now)


def queued_ids(db: Database, alert_id: int, version: int) -> list[int]:
    """Queued deliveries that are due now; deferred ones are left for the sweeper."""
    now = datetime.now(UTC)
    with db.transaction() as session:
        return list(
            session.scalars(
                select(Delivery.id)
                .where(
                    Delivery.alert_id == alert_id,
                    Delivery.version == version,
                    Delivery.status == DeliveryStatus.queued.value,
                    _due(now),
                )
                .order_by(Delivery.id)
            )
        )


@dataclass(frozen=True)
class Claimed:
    delivery_id: int
    channel: str
    address: str | None
    contact_name: str
    alert_id: int
    version: int
    template: str
    content: dict[str, Any]
    contact_id: int
    link_version: int  # for the contact's own preferences link
    purpose: str = "alert"  # the version's: alert, update or withdrawal


def _refuse_opted_out(session: Session, delivery_ids: list[int]) -> None:
    """Fail, before anything is claimed, the queued deliveries the recipient no longer
    wants (unsubscribed from everything or from the alert's kind, channel opted out) or
    that cannot arrive (channel failed for good): an opt-out is honoured at send time."""
    kind = func.coalesce(AlertVersion.content["kind"].as_string(), AlertKind.drug_alert.value)
    unsubscribed = (
        select(ContactUnsubscription.contact_id)
        .where(
            ContactUnsubscription.contact_id == Delivery.contact_id,
            ContactUnsubscription.alert_kind == kind,
        )
        .exists()
    )
    rows = session.execute(
        select(
            Delivery.id,
            Contact.opted_out_at.is_not(None),
            ContactChannel.opted_out_at.is_not(None),
            ContactChannel.failed_at.is_not(None),
            unsubscribed,
        )
        .join(Contact, Contact.id == Delivery.contact_id)
        .join(
            AlertVersion,
            (AlertVersion.alert_id == Delivery.alert_id)
            & (AlertVersion.version == Delivery.version),
        )
        .outerjoin(
            ContactChannel,
            (ContactChannel.contact_id == Delivery.contact_id)
            & (ContactChannel.channel == Delivery.channel),
        )
        .where(Delivery.id.in_(delivery_ids), Delivery.status == DeliveryStatus.queued.value)
    ).all()
    refused: dict[str, list[int]] = defaultdict(list)
    for delivery_id, contact_out, channel_out, channel_failed, kind_out in rows:
        reason = send_blocked(
            contact_opted_out=bool(contact_out),
            channel_opted_out=bool(channel_out),
            channel_failed=bool(channel_failed),
            kind_unsubscribed=bool(kind_out),
        )
        if reason:
            refused[reason].append(delivery_id)
    for reason, ids in refused.items():
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(ids), Delivery.status == DeliveryStatus.queued.value)
            .values(status=DeliveryStatus.failed.value, last_error=reason)
        )


def claim(db: Database, delivery_ids: list[int]) -> list[Claimed]:
    """Move queued deliveries to sending; return only those this call won."""
    if not delivery_ids:
        return []
    now = datetime.now(UTC)
    with db.transaction() as session:
        _refuse_opted_out(session, delivery_ids)
        won = list(
            session.scalars(
                update(Delivery)
                .where(
                    Delivery.id.in_(delivery_ids),
                    Delivery.status == DeliveryStatus.queued.value,
                    _due(now),
                )
                .values(
                    status=DeliveryStatus.sending.value,
                    claimed_at=now,
                    attempts=Delivery.attempts + 1,
                )
                .returning(Delivery.id)
            )
        )
        if not won:
            return []
        rows = session.execute(
            select(Delivery, Contact, AlertVersion)
            .join(Contact, Contact.id == Delivery.contact_id)
            .join(
                AlertVersion,
                (AlertVersion.alert_id == Delivery.alert_id)
                & (AlertVersion.version == Delivery.version),
            )
            .where(Delivery.id.in_(won))
            .order_by(Delivery.id)
        ).all()
        return [
            Claimed(
                delivery_id=d.id,
                channel=d.channel,
                address=c.phone if d.channel == "sms" else c.email,
                contact_name=c.name,
                alert_id=d.alert_id,
                version=d.version,
                template=v.template,
                content=v.content,
                contact_id=c.id,
                link_version=c.link_version,
                purpose=v.purpose,
            )
            for d, c, v in rows
        ]


def compose(
    item: Claimed,
    renderer: Renderer,
    links: Links,
    *,
    purpose: str | None = None,
    exercise: bool | None = None,
) -> OutgoingMessage:
    """Render one delivery through the same context builder as the approvers' preview.

    `purpose` (alert, update, withdrawal) defaults to the version's and `exercise` to
    the content's; a withdrawal is always rendered with the withdrawal template."""
    preferences = links.preferences_url(item.contact_id, item.link_version)
    purpose = purpose or item.purpose
    context = message_context(
        item.content,
        alert_id=item.alert_id,
        version=item.version,
        purpose=purpose,
        exercise=is_exercise(item.content) if exercise is None else exercise,
        ack_url=links.ack_url(item.delivery_id),
        previous_version=previous_version_of(item.content, item.version),
        contact_name=item.contact_name,
        preferences_url=preferences,
    )
    rendered = renderer.render(item.channel, template_for(purpose, item.template), context)
    headers = {}
    if item.channel == "email":
        headers["Message-ID"] = f"<delivery-{item.delivery_id}@ldis>"
        # RFC 2369 and RFC 8058: the mail client's own unsubscribe button, one click.
        headers["List-Unsubscribe"] = f"<{preferences}/unsubscribe>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return OutgoingMessage(
        delivery_id=item.delivery_id,
        channel=item.channel,
        to=item.address or "",
        text=rendered.text,
        subject=rendered.subject,
        html=rendered.html,
        headers=headers,
    )


def _move(db: Database, delivery_id: int, target: DeliveryStatus, **values: Any) -> bool:
    with db.transaction() as session:
        moved = session.execute(
            update(Delivery)
            .where(
                Delivery.id == delivery_id,
                Delivery.status.in_([s.value for s in sources_of(target)]),
            )
            .values(status=target.value, **values)
        ).rowcount  # type: ignore[attr-defined]
    return bool(moved)


def record(
    db: Database,
    delivery_id: int,
    result: SendResult,
    attempts: int,
    *,
    links: Links | None = None,
) -> bool:
    """Store a send result; return True when the delivery should be tried again later.

    A permanent error that is the recipient's (invalid number, STOP at the carrier, mailbox
    refused) also flags the contact and its channel, in the same transaction as the failure,
    and queues a notice to the service's managers (sent by the notice sweeper; `links`
    gives those notices a link to the page)."""
    now = datetime.now(UTC)
    if result.outcome is SendOutcome.sent:
        _move(
            db,
            delivery_id,
            DeliveryStatus.sent,
            provider_id=result.provider_id,
            sent_at=now,
            last_error=None,
        )
        return False
    error = (result.error or result.outcome.value)[:500]
    if result.outcome is SendOutcome.transient_error and attempts < MAX_ATTEMPTS:
        _move(db, delivery_id, DeliveryStatus.queued, last_error=error)
        return True
    with db.transaction() as session:
        failed = session.execute(
            update(Delivery)
            .where(
                Delivery.id == delivery_id,
                Delivery.status.in_([s.value for s in sources_of(DeliveryStatus.failed)]),
            )
            .values(status=DeliveryStatus.failed.value, last_error=error)
            .returning(Delivery.contact_id, Delivery.channel)
        ).first()
        failure = (
            recipient_failure(failed.channel, error)
            if failed is not None and result.outcome is SendOutcome.permanent_error
            else None
        )
        if failed is not None and failure is not None:
            hygiene.flag_failure(
                session,
                failed.contact_id,
                failed.channel,
                failure,
                public_url=links.public_url if links else "",
            )
    return False


def deliver(
    db: Database,
    delivery_ids: list[int],
    senders: Mapping[str, Sender],
    renderer: Renderer,
    links: Links,
) -> dict[int, int]:
    """Send what can be claimed of `delivery_ids`; return {id: attempts so far} to retry later."""
    claimed = claim(db, delivery_ids)
    by_channel: dict[str, list[OutgoingMessage]] = defaultdict(list)
    retry: dict[int, int] = {}
    for item in claimed:
        if not item.address:
            no_address = SendResult(SendOutcome.permanent_error, error="no address")
            record(db, item.delivery_id, no_address, 1, links=links)
            continue
        try:
            by_channel[item.channel].append(compose(item, renderer, links))
        except TemplateError as exc:
            # Drafts are rendered before approval, so this is a template changed since:
            # fail loudly rather than send a blank or half-filled message.
            log.error("delivery %s not rendered: %s", item.delivery_id, exc)
            broken = SendResult(SendOutcome.permanent_error, error=f"template error: {exc}")
            record(db, item.delivery_id, broken, 1, links=links)
    attempts = _attempts(db, [item.delivery_id for item in claimed])
    for channel, messages in by_channel.items():
        sender = senders.get(channel)
        if sender is None:
            results = [
                SendResult(SendOutcome.permanent_error, error=f"no {channel} channel")
            ] * len(messages)
        else:
            results = _send_safely(sender, messages)
        for message, result in zip(messages, results, strict=True):
            delivery_id = _delivery_id(message)
            tried = attempts.get(delivery_id, 1)
            if record(db, delivery_id, result, tried, links=links):
                retry[delivery_id] = tried
    return retry


def _delivery_id(message: OutgoingMessage) -> int:
    if message.delivery_id is None:  # compose() always sets it; a notice never comes here
        raise ValueError(f"{message.ref} is not an alert delivery")
    return message.delivery_id


def _send_safely(sender: Sender, messages: list[OutgoingMessage]) -> list[SendResult]:
    """A channel that raises (a bug, a dropped socket) must not strand claimed deliveries."""
    try:
        return sender.send_many(messages)
    except Exception as exc:
        log.exception("channel failed on a batch of %s; will retry", len(messages))
        error = f"channel error: {type(exc).__name__}"
        return [SendResult(SendOutcome.transient_error, error=error)] * len(messages)


def _attempts(db: Database, ids: list[int]) -> dict[int, int]:
    if not ids:
        return {}
    with db.transaction() as session:
        return dict(
            session.execute(
                select(Delivery.id, Delivery.attempts).where(Delivery.id.in_(ids))
            ).all()
        )


def sweep(db: Database, stuck_after: timedelta) -> dict[str, list[int]]:
    """Deliveries a lost task left behind, by priority, ready to enqueue again.

    Queued rows older than `stuck_after` are re-offered (claims make that harmless), and so
    are rows deferred by quiet hours once they fall due: nothing else sends those. Rows
    stuck in `sending` (a worker died mid-send) go back to queued: the local outbox stores
    each delivery once whatever happens, a provider may see a rare second attempt.
    """
    now = datetime.now(UTC)
    cutoff = now - stuck_after
    with db.transaction() as session:
        session.execute(
            update(Delivery)
            .where(
                Delivery.status == DeliveryStatus.sending.value,
                Delivery.claimed_at < now - stuck_after * 5,
            )
            .values(status=DeliveryStatus.queued.value, last_error="worker lost mid-send")
        )
        # Deferred rows (quiet hours) are offered as soon as they fall due; any queued row
        # still waiting `stuck_after` after it was queued or fell due is offered again.
        waiting_since = func.coalesce(Delivery.not_before, Delivery.queued_at)
        rows = session.execute(
            select(Delivery.id, Delivery.priority)
            .where(
                Delivery.status == DeliveryStatus.queued.value,
                _due(now),
                or_(
                    Delivery.not_before > cutoff,
                    and_(
                        waiting_since < cutoff,
                        (Delivery.claimed_at.is_(None)) | (Delivery.claimed_at < cutoff),
                    ),
                ),
            )
            .order_by(Delivery.id)
            .limit(10_000)
        ).all()
    found: dict[str, list[int]] = defaultdict(list)
    for delivery_id, priority in rows:
        found[priority].append(delivery_id)
    return dict(found)


def acknowledge(db: Database, delivery_id: int) -> bool:
    """Mark a delivery acknowledged (first click wins; later clicks change nothing)."""
    with db.transaction() as session:
        exists = session.get(Delivery, delivery_id) is not None
        session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id, Delivery.acknowledged_at.is_(None))
            .values(acknowledged_at=datetime.now(UTC))
        )
    return exists
