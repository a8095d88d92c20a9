"""Worker-side use cases: claim deliveries, render, send through a channel, record the outcome.

States move only by conditional updates fenced by the claim (`WHERE status = 'sending' AND
attempts = n`), so a batch sent twice, a retry racing the sweeper, or two workers holding the
same ids cannot send one twice. The session is closed before any provider is called: a slow
provider holds no database lock. Each result is recorded (with its row in
`delivery_attempts`) as soon as it comes back, so a worker killed mid-batch leaves at most
the message then in flight unknown; a delivery whose earlier try may have reached the
provider is reconciled with it (`find_sent`) before it is sent again. docs/delivery.md.
"""

from __future__ import annotations

import logging
import random
import time
from collections import defaultdict
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar, runtime_checkable

from sqlalchemy import ColumnElement, and_, func, insert, or_, select, tuple_, update
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from ldis.domain.alerts import AlertKind
from ldis.domain.deliveries import AttemptOutcome, DeliveryStatus, RetryLater, retry_delay
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
    DeliveryAttempt,
)

log = logging.getLogger(__name__)
DEFAULT_MAX_ATTEMPTS = 8
# Twilio's clock and ours may differ a little: reconciliation looks back this much further.
RECONCILE_MARGIN = timedelta(minutes=10)
T = TypeVar("T")

# Asked before each message of a batch (after its rate-limit token): may it go? False when
# the sweeper has taken the row back (this worker was presumed dead).
Gate = Callable[[OutgoingMessage], bool]


@runtime_checkable
class StreamingSender(Protocol):
    """A channel that hands back each result as it comes (provider channels)."""

    def send_each(
        self, messages: list[OutgoingMessage], gate: Gate | None = None
    ) -> Generator[tuple[OutgoingMessage, SendResult], None, None]: ...


@runtime_checkable
class Reconciler(Protocol):
    """A channel that can say which messages the provider already has (Twilio)."""

    def find_sent(
        self, messages: list[OutgoingMessage], since: datetime
    ) -> dict[str, str | None]: ...


def _due(now: datetime) -> ColumnElement[bool]:
    """Not held back: quiet hours, or a retry's backoff, not yet over."""
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
    attempt: int = 1  # this claim's number: the fence every later move checks
    queued_at: datetime | None = None


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
        won = dict(
            session.execute(
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
                .returning(Delivery.id, Delivery.attempts)
            ).all()
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
                attempt=won[d.id],
                queued_at=d.queued_at,
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


def _ours(delivery_id: int, attempt: int) -> ColumnElement[bool]:
    """Still held by the claim numbered `attempt`: nobody took it back in between."""
    return and_(
        Delivery.id == delivery_id,
        Delivery.status == DeliveryStatus.sending.value,
        Delivery.attempts == attempt,
    )


def _attempt_row(
    session: Session, delivery_id: int, attempt: int, outcome: str, result: SendResult
) -> None:
    session.execute(
        insert(DeliveryAttempt).values(
            delivery_id=delivery_id,
            attempt=attempt,
            at=datetime.now(UTC),
            outcome=outcome,
            error=result.error[:500] if result.error else None,
            provider_id=result.provider_id,
        )
    )


def record(
    db: Database,
    delivery_id: int,
    result: SendResult,
    attempts: int,
    *,
    links: Links | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    retry_in: float | None = None,
    outcome: AttemptOutcome | None = None,
) -> bool:
    """Store the result of try number `attempts` (and its `delivery_attempts` row); return
    True when the delivery is queued to be tried again in `retry_in` seconds.

    Only the claim that made this try may move the row (`_ours`): if the sweeper took it
    back meanwhile, nothing moves, and a message that did go out is still written down as
    an attempt (a possible repeat, visible). A permanent error that is the recipient's
    (invalid number, STOP at the carrier, mailbox refused) also flags the contact and its
    channel, in the same transaction, and queues a notice to the service's managers (sent
    by the notice sweeper; `links` gives those notices a link to the page)."""
    now = datetime.now(UTC)
    label = (outcome or AttemptOutcome(result.outcome.value)).value
    retry = result.outcome is SendOutcome.transient_error and attempts < max_attempts
    with db.transaction() as session:
        if result.outcome is SendOutcome.sent:
            moved = session.execute(
                update(Delivery)
                .where(_ours(delivery_id, attempts))
                .values(
                    status=DeliveryStatus.sent.value,
                    provider_id=result.provider_id,
                    sent_at=now,
                    last_error=None,
                )
            ).rowcount  # type: ignore[attr-defined]
            if not moved:
                log.warning("delivery %s went out after it was taken back", delivery_id)
            _attempt_row(session, delivery_id, attempts, label, result)
            return False
        error = (result.error or result.outcome.value)[:500]
        if retry:
            not_before = now + timedelta(seconds=retry_in or 0)
            moved = session.execute(
                update(Delivery)
                .where(_ours(delivery_id, attempts))
                .values(status=DeliveryStatus.queued.value, last_error=error, not_before=not_before)
            ).rowcount  # type: ignore[attr-defined]
            if moved:
                _attempt_row(session, delivery_id, attempts, label, result)
            return bool(moved)
        failed = session.execute(
            update(Delivery)
            .where(_ours(delivery_id, attempts))
            .values(status=DeliveryStatus.failed.value, last_error=error)
            .returning(Delivery.contact_id, Delivery.channel)
        ).first()
        if failed is None:
            return False
        _attempt_row(session, delivery_id, attempts, label, result)
        failure = (
            recipient_failure(failed.channel, error)
            if result.outcome is SendOutcome.permanent_error
            else None
        )
        if failure is not None:
            hygiene.flag_failure(
                session,
                failed.contact_id,
                failed.channel,
                failure,
                public_url=links.public_url if links else "",
            )
    return False


def _db_retrying(action: Callable[[], T], *, tries: int = 6) -> T:
    """Run a database write, riding out a database restart (a few seconds): the message is
    already out, and losing its record would mean sending it again."""
    for n in range(tries):
        try:
            return action()
        except DBAPIError as exc:
            gone = exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)
            if not gone or n == tries - 1:
                raise
            log.warning("database connection lost; trying again")
            time.sleep(min(0.5 * 2**n, 8.0))
    raise AssertionError("unreachable")


class _Batch:
    """One batch's claimed rows on their way out: records each result as it comes, keeps
    the rows still held stamped (heartbeat) and lets go of any the sweeper took back."""

    def __init__(
        self,
        db: Database,
        links: Links,
        claimed: list[Claimed],
        *,
        max_attempts: int,
        heartbeat_every: float,
        jitter: Callable[[], float],
    ) -> None:
        self.db, self.links = db, links
        self.attempt = {c.delivery_id: c.attempt for c in claimed}
        self.pending = set(self.attempt)  # held by us, no result yet
        self.max_attempts = max_attempts
        self.heartbeat_every = heartbeat_every
        self.jitter = jitter
        self.beat_at = time.monotonic()
        self.retry: dict[int, float] = {}

    def finish(
        self, delivery_id: int, result: SendResult, outcome: AttemptOutcome | None = None
    ) -> None:
        attempt = self.attempt[delivery_id]
        delay = None
        if result.outcome is SendOutcome.transient_error and attempt < self.max_attempts:
            hint = result.retry_after if isinstance(result, RetryLater) else None
            delay = retry_delay(attempt, self.jitter(), retry_after=hint)
        again = _db_retrying(
            lambda: record(
                self.db,
                delivery_id,
                result,
                attempt,
                links=self.links,
                max_attempts=self.max_attempts,
                retry_in=delay,
                outcome=outcome,
            )
        )
        if again and delay is not None:
            self.retry[delivery_id] = delay
        self.pending.discard(delivery_id)

    def gate(self, message: OutgoingMessage) -> bool:
        if time.monotonic() - self.beat_at >= self.heartbeat_every:
            self.heartbeat()
        return message.delivery_id in self.pending

    def heartbeat(self) -> None:
        self.beat_at = time.monotonic()
        if not self.pending:
            return
        held = [(i, self.attempt[i]) for i in self.pending]
        with self.db.transaction() as session:
            still = set(
                session.scalars(
                    update(Delivery)
                    .where(
                        tuple_(Delivery.id, Delivery.attempts).in_(held),
                        Delivery.status == DeliveryStatus.sending.value,
                    )
                    .values(claimed_at=datetime.now(UTC))
                    .returning(Delivery.id)
                )
            )
        if len(still) < len(self.pending):
            log.warning("%s deliveries were taken back by the sweeper", len(self.pending - still))
        self.pending &= still

    def release(self) -> None:
        """Hand back rows held but never tried (a channel that stopped early)."""
        for delivery_id in sorted(self.pending):
            with self.db.transaction() as session:
                session.execute(
                    update(Delivery)
                    .where(_ours(delivery_id, self.attempt[delivery_id]))
                    .values(status=DeliveryStatus.queued.value)
                )
            self.retry[delivery_id] = 0.0
        self.pending.clear()


def deliver(
    db: Database,
    delivery_ids: list[int],
    senders: Mapping[str, Sender],
    renderer: Renderer,
    links: Links,
    *,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    heartbeat_every: float = 10.0,
    jitter: Callable[[], float] = random.random,
) -> dict[int, float]:
    """Send what can be claimed of `delivery_ids`; return {id: seconds} to try again after."""
    claimed = claim(db, delivery_ids)
    batch = _Batch(
        db,
        links,
        claimed,
        max_attempts=max_attempts,
        heartbeat_every=heartbeat_every,
        jitter=jitter,
    )
    by_channel: dict[str, list[tuple[Claimed, OutgoingMessage]]] = defaultdict(list)
    for item in claimed:
        if not item.address:
            batch.finish(
                item.delivery_id, SendResult(SendOutcome.permanent_error, error="no address")
            )
            continue
        try:
            by_channel[item.channel].append((item, compose(item, renderer, links)))
        except TemplateError as exc:
            # Drafts are rendered before approval, so this is a template changed since:
            # fail loudly rather than send a blank or half-filled message.
            log.error("delivery %s not rendered: %s", item.delivery_id, exc)
            broken = SendResult(SendOutcome.permanent_error, error=f"template error: {exc}")
            batch.finish(item.delivery_id, broken)
        except Exception as exc:
            # A bug would otherwise strand the row in `sending` and loop via the sweeper.
            log.exception("delivery %s not composed", item.delivery_id)
            broken = SendResult(
                SendOutcome.permanent_error, error=f"could not compose: {type(exc).__name__}"
            )
            batch.finish(item.delivery_id, broken)
    for channel, pairs in by_channel.items():
        sender = senders.get(channel)
        if sender is None:
            for item, _ in pairs:
                error = f"no {channel} channel"
                batch.finish(item.delivery_id, SendResult(SendOutcome.permanent_error, error=error))
            continue
        to_send = _reconcile(batch, sender, pairs)
        _send(batch, sender, to_send)
    batch.release()
    return batch.retry


def _reconcile(
    batch: _Batch, sender: Sender, pairs: list[tuple[Claimed, OutgoingMessage]]
) -> list[OutgoingMessage]:
    """Before a delivery is tried again, ask the provider whether an earlier try reached it
    (a worker killed mid-send, a timeout): found, it is recorded as sent, never re-sent.
    A delivery out of tries is not sent again. Returns what may be sent."""
    again = [(item, message) for item, message in pairs if item.attempt > 1]
    if not again:
        return [message for _, message in pairs]
    found: dict[str, str | None] = {}
    if isinstance(sender, Reconciler):
        since = min(item.queued_at or datetime.now(UTC) for item, _ in again) - RECONCILE_MARGIN
        try:
            found = sender.find_sent([message for _, message in again], since)
        except Exception:
            log.exception("reconciliation failed for %s messages", len(again))
            found = {}
        batch.heartbeat()  # asking may have taken a while: still ours?
    to_send = []
    for item, message in pairs:
        if item.attempt > 1 and isinstance(sender, Reconciler):
            if message.ref not in found:
                unknown = "could not ask the provider whether an earlier try arrived"
                batch.finish(
                    item.delivery_id, SendResult(SendOutcome.transient_error, error=unknown)
                )
                continue
            sid = found[message.ref]
            if sid is not None:
                sent = SendResult(SendOutcome.sent, provider_id=sid)
                batch.finish(item.delivery_id, sent, AttemptOutcome.reconciled)
                continue
        if item.attempt > batch.max_attempts:
            gave_up = f"gave up after {batch.max_attempts} tries (worker lost mid-send)"
            batch.finish(item.delivery_id, SendResult(SendOutcome.permanent_error, error=gave_up))
            continue
        to_send.append(message)
    return to_send


def _send(batch: _Batch, sender: Sender, messages: list[OutgoingMessage]) -> None:
    """Send and record one by one (streaming channels) or all at once (the outbox). A
    channel that raises must not strand claimed deliveries: what has no result yet is
    retried later (a text is reconciled with the provider first)."""
    if not messages:
        return
    try:
        if isinstance(sender, StreamingSender):
            stream = sender.send_each(messages, batch.gate)
            try:
                for message, result in stream:
                    batch.finish(_delivery_id(message), result)
            finally:
                stream.close()
        else:
            for message, result in zip(messages, sender.send_many(messages), strict=True):
                batch.finish(_delivery_id(message), result)
    except DBAPIError:
        raise  # the database is gone: the sweeper takes the rows back once it returns
    except Exception as exc:
        log.exception("channel failed on a batch of %s; will retry", len(messages))
        error = f"channel error: {type(exc).__name__}"
        for message in messages:
            if message.delivery_id in batch.pending:
                batch.finish(
                    _delivery_id(message), SendResult(SendOutcome.transient_error, error=error)
                )


def _delivery_id(message: OutgoingMessage) -> int:
    if message.delivery_id is None:  # compose() always sets it; a notice never comes here
        raise ValueError(f"{message.ref} is not an alert delivery")
    return message.delivery_id


def sweep(db: Database, stuck_after: timedelta) -> dict[str, list[int]]:
    """Deliveries a lost task left behind, by priority, ready to enqueue again.

    Rows `sending` whose worker has not stamped them for `stuck_after` (it died, or the
    broker lost its task mid-batch) go back to queued with a `lost` attempt: their next try
    asks the provider first (reconciliation), so a text that did go out is not sent again.
    Queued rows older than `stuck_after` are re-offered (claims make that harmless), and so
    are rows deferred by quiet hours or a retry's backoff once they fall due.
    """
    now = datetime.now(UTC)
    cutoff = now - stuck_after
    with db.transaction() as session:
        lost = session.execute(
            update(Delivery)
            .where(Delivery.status == DeliveryStatus.sending.value, Delivery.claimed_at < cutoff)
            .values(
                status=DeliveryStatus.queued.value,
                last_error="worker lost mid-send: outcome unknown",
                not_before=None,
            )
            .returning(Delivery.id, Delivery.attempts)
        ).all()
        if lost:
            session.execute(
                insert(DeliveryAttempt),
                [
                    {
                        "delivery_id": delivery_id,
                        "attempt": attempt,
                        "at": now,
                        "outcome": AttemptOutcome.lost.value,
                        "error": "worker lost mid-send: outcome unknown",
                    }
                    for delivery_id, attempt in lost
                ],
            )
            log.warning("%s deliveries were left sending by a lost worker", len(lost))
        # Deferred rows (quiet hours, backoff) are offered as soon as they fall due; any
        # queued row still waiting `stuck_after` after it was queued or fell due is offered
        # again.
        waiting_since = func.coalesce(Delivery.not_before, Delivery.queued_at)
        rows = session.execute(
            select(Delivery.id, Delivery.priority)
            .where(
                Delivery.status == DeliveryStatus.queued.value,
                _due(now),
                or_(
                    Delivery.id.in_([delivery_id for delivery_id, _ in lost] or [-1]),
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
