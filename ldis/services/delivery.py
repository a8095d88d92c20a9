"""Worker-side send loop: claim deliveries, render, send through a channel, record the outcome.

The session is closed before any provider is called: a slow provider holds no database
lock. Results are recorded (with their rows in `delivery_attempts`) as they come back:
failures at once, messages sent in small groups (`RECORD_GROUP` results or
`RECORD_GROUP_SECONDS`, one statement each), so a worker killed mid-batch leaves unknown
at most the messages of the group not yet written, and the one then in flight; their rows
are still `sending`, so the sweeper takes them back and a delivery whose earlier try may have
reached the provider is reconciled with it (`find_sent`) before it is sent again. Claims and state moves are in `delivery_claims`, the heartbeat's stamps and
the sweeper in `delivery_sweeper`, the channel protocols in `ports`. docs/delivery.md.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import random
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from ldis.domain.deliveries import AttemptOutcome, RetryLater, retry_delay
from ldis.domain.messages import OutgoingMessage, SendOutcome, SendResult
from ldis.messages.context import (
    is_exercise,
    message_context,
    previous_version_of,
    template_for,
)
from ldis.messages.personal import PersonalRenderer
from ldis.messages.render import Renderer, TemplateError
from ldis.services.delivery_claims import (
    DEFAULT_MAX_ATTEMPTS,
    Claimed,
    Sent,
    claim,
    queued_ids,
    record,
    record_connection,
    record_sent,
    release_record_connection,
    unclaim,
)
from ldis.services.delivery_sweeper import stamp, sweep
from ldis.services.links import Links
from ldis.services.ports import Reconciler, Sender, StreamingSender
from ldis.store.db import Database

# The worker tasks and the tests call these as `delivery.<name>`.
__all__ = ["claim", "compose", "deliver", "queued_ids", "record", "sweep"]

log = logging.getLogger(__name__)
# Twilio's clock and ours may differ a little: reconciliation looks back this much further.
RECONCILE_MARGIN = timedelta(minutes=10)
# Messages sent are written down in groups: one statement per group instead of three round
# trips and a commit per message. The price is the in-doubt window of a worker killed
# mid-batch: up to this many results (or this many seconds' worth) sent but still `sending`
# in the database. Texts among them are reconciled with Twilio before any new try (not sent
# twice); e-mails may go twice, with the same Message-ID. docs/delivery.md.
RECORD_GROUP = 10
RECORD_GROUP_SECONDS = 0.05
T = TypeVar("T")
# One per renderer (per worker process): each version is rendered once, not per message.
_personal: WeakKeyDictionary[Renderer, PersonalRenderer] = WeakKeyDictionary()
# id() of a version's content (as decoded by a claim) -> (the content, its fingerprint): a
# batch's messages share one content object, so it is serialised once per batch.
_fingerprints: dict[int, tuple[Any, str]] = {}


def _fingerprint(content: Any) -> str:
    """Identifies a version's content across batches (each claim decodes it anew)."""
    known = _fingerprints.get(id(content))
    if known is not None and known[0] is content:
        return known[1]
    if len(_fingerprints) >= 64:
        _fingerprints.clear()
    digest = json.dumps(content, sort_keys=True, default=str).encode()
    fingerprint = hashlib.blake2b(digest, digest_size=16).hexdigest()
    _fingerprints[id(content)] = (content, fingerprint)
    return fingerprint


def personal_renderer(renderer: Renderer) -> PersonalRenderer:
    found = _personal.get(renderer)
    if found is None:
        found = _personal[renderer] = PersonalRenderer(renderer)
    return found


def compose(
    item: Claimed,
    renderer: Renderer,
    links: Links,
    *,
    purpose: str | None = None,
    exercise: bool | None = None,
    personal: PersonalRenderer | None = None,
) -> OutgoingMessage:
    """Render one delivery through the same context builder as the approvers' preview.

    `purpose` (alert, update, withdrawal) defaults to the version's and `exercise` to
    the content's; a withdrawal is always rendered with the withdrawal template. With
    `personal`, the version is rendered once and each recipient's values filled in
    (`ldis.messages.personal`: proven equal to rendering, else rendered whole)."""
    preferences = links.preferences_url(item.contact_id, item.link_version)
    purpose = purpose or item.purpose
    exercise = is_exercise(item.content) if exercise is None else exercise
    template = template_for(purpose, item.template)
    context = message_context(
        item.content,
        alert_id=item.alert_id,
        version=item.version,
        purpose=purpose,
        exercise=exercise,
        ack_url=links.ack_url(item.delivery_id),
        previous_version=previous_version_of(item.content, item.version),
        contact_name=item.contact_name,
        preferences_url=preferences,
    )
    if personal is None:
        rendered = renderer.render(item.channel, template, context)
    else:
        version = (item.alert_id, item.version, purpose, exercise, _fingerprint(item.content))
        rendered = personal.render(version, item.channel, template, context)
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
        self.unwritten: list[Sent] = []  # sent, not yet in the database (`flush`)
        self.unwritten_since = 0.0
        self.records: Connection | None = None  # held for the batch's groups (`_record`)

    def finish(
        self, delivery_id: int, result: SendResult, outcome: AttemptOutcome | None = None
    ) -> None:
        attempt = self.attempt[delivery_id]
        self.pending.discard(delivery_id)
        if result.outcome is SendOutcome.sent:
            label = (outcome or AttemptOutcome.sent).value
            if not self.unwritten:
                self.unwritten_since = time.monotonic()
            self.unwritten.append(
                Sent(delivery_id, attempt, result.provider_id, datetime.now(UTC), label)
            )
            if len(self.unwritten) >= RECORD_GROUP:
                self.flush()
            return
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

    def flush(self) -> None:
        """Write down the messages sent so far (one statement)."""
        if self.unwritten:
            group, self.unwritten = self.unwritten, []
            _db_retrying(lambda: self._record(group))

    def _record(self, group: list[Sent]) -> set[int]:
        # One connection for all the batch's groups (PostgreSQL); one lost (a database
        # restart) is let go, and the next try takes a fresh one from the pool.
        if self.db.is_sqlite:
            return record_sent(self.db, group)
        if self.records is None:
            self.records = record_connection(self.db)
        try:
            return record_sent(self.db, group, self.records)
        except DBAPIError:
            self.close()
            raise

    def close(self) -> None:
        """Give back the connection the groups were written on."""
        if self.records is not None:
            with contextlib.suppress(Exception):
                release_record_connection(self.records)
            self.records = None

    def gate(self, message: OutgoingMessage) -> bool:
        now = time.monotonic()
        if self.unwritten and now - self.unwritten_since >= RECORD_GROUP_SECONDS:
            self.flush()  # a slow provider must not hold results unwritten for long
        if now - self.beat_at >= self.heartbeat_every:
            self.heartbeat()
        return message.delivery_id in self.pending

    def heartbeat(self) -> None:
        self.flush()
        self.beat_at = time.monotonic()
        if not self.pending:
            return
        held = [(i, self.attempt[i]) for i in self.pending]
        still = stamp(self.db, held)
        if len(still) < len(self.pending):
            log.warning("%s deliveries were taken back by the sweeper", len(self.pending - still))
        self.pending &= still

    def release(self) -> None:
        """Hand back rows held but never tried (a channel that stopped early)."""
        for delivery_id in sorted(self.pending):
            unclaim(self.db, delivery_id, self.attempt[delivery_id])
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
    if not claimed:
        return {}
    batch = _Batch(
        db,
        links,
        claimed,
        max_attempts=max_attempts,
        heartbeat_every=heartbeat_every,
        jitter=jitter,
    )
    try:
        _deliver_claimed(batch, claimed, senders, renderer, links)
    except BaseException:
        # Whatever went out must still be written down if the database lets us: otherwise
        # it is reconciled (texts) or sent again (e-mails) after the sweeper takes it back.
        with contextlib.suppress(Exception):
            batch.flush()
        raise
    else:
        batch.flush()
    finally:
        batch.close()
    batch.release()
    return batch.retry


def _deliver_claimed(
    batch: _Batch,
    claimed: list[Claimed],
    senders: Mapping[str, Sender],
    renderer: Renderer,
    links: Links,
) -> None:
    by_channel: dict[str, list[tuple[Claimed, OutgoingMessage]]] = defaultdict(list)
    personal = personal_renderer(renderer)
    for item in claimed:
        if not item.address:
            batch.finish(
                item.delivery_id, SendResult(SendOutcome.permanent_error, error="no address")
            )
            continue
        try:
            message = compose(item, renderer, links, personal=personal)
            by_channel[item.channel].append((item, message))
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
