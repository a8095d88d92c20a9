"""Claiming deliveries and moving their state: who holds a row, and what became of each try.

A claim (`queued -> sending`) is a conditional update that also counts the try in
`attempts`; every later move out of `sending` is fenced by that number (`WHERE status =
'sending' AND attempts = n`), so a batch sent twice, a retry racing the sweeper, or two
workers holding the same ids cannot send one twice, and a worker whose rows were taken back
cannot move them any more. Each result is recorded with its row in `delivery_attempts`:
messages sent (the common case) in groups, one statement per group (`record_sent`), the rest
one by one with whatever else they move (a contact flagged). docs/delivery.md.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    func,
    insert,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from ldis.domain.alerts import AlertKind
from ldis.domain.deliveries import AttemptOutcome, DeliveryStatus
from ldis.domain.hygiene import recipient_failure, send_blocked
from ldis.domain.messages import SendOutcome, SendResult
from ldis.services import hygiene
from ldis.services.links import Links
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


def held_as(status: DeliveryStatus) -> ColumnElement[bool]:
    """`status = x`, written so PostgreSQL can only check it on rows found by id, never use
    the status index to find them. Statistics lag a fan-out (20,000 rows turn `queued` in
    one approval, in a table the last ANALYZE saw as all `sent`), so the planner would take
    `status = 'queued'` for a handful of rows and read every queued row of the index for each
    batch of 100: quadratic in the fan-out (docs/performance.md). `IS TRUE` is the same test
    for a column that is never null, and no index can answer it."""
    return (Delivery.status == status.value).is_(True)


def due(now: datetime) -> ColumnElement[bool]:
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
                    due(now),
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
    """SQLite: fail, before anything is claimed, the queued deliveries the recipient no
    longer wants (unsubscribed from everything or from the alert's kind, channel opted out)
    or that cannot arrive (channel failed for good): an opt-out is honoured at send time.
    PostgreSQL does the same within its one claim statement (`_CLAIM_PG`)."""
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
        .where(Delivery.id.in_(delivery_ids), held_as(DeliveryStatus.queued))
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
            .where(Delivery.id.in_(ids), held_as(DeliveryStatus.queued))
            .values(status=DeliveryStatus.failed.value, last_error=reason)
        )


# PostgreSQL: the claim and everything it reads, in one statement. The rows won come back
# with their contact and whether the recipient still wants them (opted out, channel failed,
# unsubscribed from the version's kind); those that must not go are failed at once, in the
# same transaction, with their try uncounted, so nobody ever sees them `sending`.
_CLAIM_PG = text(
    """
    WITH won AS (
        UPDATE deliveries AS d
        SET status = :sending, claimed_at = :now, attempts = d.attempts + 1
        WHERE d.id = ANY(CAST(:ids AS bigint[])) AND (d.status = :queued) IS TRUE
          AND (d.not_before IS NULL OR d.not_before <= :now)
        RETURNING d.id, d.attempts, d.channel, d.alert_id, d.version, d.queued_at, d.contact_id
    )
    SELECT won.id, won.attempts, won.channel, won.alert_id, won.version, won.queued_at,
           c.id AS contact_id, c.phone, c.email, c.name, c.link_version,
           c.opted_out_at IS NOT NULL AS contact_out,
           cc.opted_out_at IS NOT NULL AS channel_out,
           cc.failed_at IS NOT NULL AS channel_failed,
           EXISTS (
               SELECT 1 FROM contact_unsubscriptions AS u
               WHERE u.contact_id = won.contact_id
                 AND u.alert_kind = coalesce(av.content ->> 'kind', :default_kind)
           ) AS kind_out,
           av.xmin::text AS version_tag
    FROM won
    JOIN contacts AS c ON c.id = won.contact_id
    LEFT JOIN contact_channels AS cc ON cc.contact_id = won.contact_id AND cc.channel = won.channel
    LEFT JOIN alert_versions AS av ON av.alert_id = won.alert_id AND av.version = won.version
    ORDER BY won.id
    """
)
_REFUSE_CLAIMED_PG = text(
    """
    UPDATE deliveries SET status = :failed, last_error = :reason, attempts = attempts - 1
    WHERE id = ANY(CAST(:ids AS bigint[])) AND (status = :sending) IS TRUE
    """
)
# A claim reads a batch of rows, each by its primary key, and their contacts by theirs: a
# sequential scan is never the right plan, but the planner picks one from statistics that
# lag a fan-out (deliveries just written, contacts just imported), reading the whole table
# for every batch (docs/performance.md). For the claim's transaction only.
_NO_SEQSCAN = text("SET LOCAL enable_seqscan = off")


def _claim_pg(db: Database, delivery_ids: list[int], now: datetime) -> list[Any]:
    """The rows won, with their contacts; the refused ones already failed."""
    with db.engine.begin() as connection:
        connection.execute(_NO_SEQSCAN)
        rows = connection.execute(
            _CLAIM_PG,
            {
                "ids": delivery_ids,
                "now": now,
                "queued": DeliveryStatus.queued.value,
                "sending": DeliveryStatus.sending.value,
                "default_kind": AlertKind.drug_alert.value,
            },
        ).all()
        refused: dict[str, list[int]] = defaultdict(list)
        for row in rows:
            reason = send_blocked(
                contact_opted_out=row.contact_out,
                channel_opted_out=row.channel_out,
                channel_failed=row.channel_failed,
                kind_unsubscribed=row.kind_out,
            )
            if reason:
                refused[reason].append(row.id)
        for reason, ids in refused.items():
            connection.execute(
                _REFUSE_CLAIMED_PG,
                {
                    "ids": ids,
                    "reason": reason,
                    "failed": DeliveryStatus.failed.value,
                    "sending": DeliveryStatus.sending.value,
                },
            )
        if refused:
            gone = {i for ids in refused.values() for i in ids}
            rows = [row for row in rows if row.id not in gone]
        versions = _known_versions(connection, rows)
    return [(row, versions.get((row.alert_id, row.version))) for row in rows]


# (alert id, version, the row's xmin) -> its template, content and purpose. An approved
# version is never changed, but a database restored or rebuilt under a running worker
# may hold another row under the same numbers: xmin tells the two apart.
_version_cache: dict[tuple[int, int, str], Any] = {}
_VERSION_CACHE_SIZE = 64


def _known_versions(connection: Connection, rows: Sequence[Any]) -> dict[Any, Any]:
    """`_versions` for a claim's rows, read from the database once per worker process, not
    per batch (each batch decoded the version's content again: a fiftieth of a worker's CPU
    in the fan-out benchmark). Rows with no version row (no tag) get none, as before."""
    tags = {(r.alert_id, r.version): r.version_tag for r in rows if r.version_tag is not None}
    found = {key: _version_cache.get((*key, tag)) for key, tag in tags.items()}
    missing = {key for key, version in found.items() if version is None}
    if missing:
        fetched = _versions(connection, missing)
        if len(_version_cache) + len(fetched) > _VERSION_CACHE_SIZE:
            _version_cache.clear()
        for key, version in fetched.items():
            found[key] = version
            _version_cache[(*key, tags[key])] = version
    return {key: version for key, version in found.items() if version is not None}


def _versions(connection: Connection | Session, keys: set[tuple[int, int]]) -> dict[Any, Any]:
    """Each alert version's template, content and purpose, once per batch (not per row)."""
    if not keys:
        return {}
    return {
        (v.alert_id, v.version): v
        for v in connection.execute(
            select(
                AlertVersion.alert_id,
                AlertVersion.version,
                AlertVersion.template,
                AlertVersion.content,
                AlertVersion.purpose,
            ).where(tuple_(AlertVersion.alert_id, AlertVersion.version).in_(keys))
        )
    }


def claim(db: Database, delivery_ids: list[int]) -> list[Claimed]:
    """Move queued deliveries to sending; return only those this call won."""
    if not delivery_ids:
        return []
    now = datetime.now(UTC)
    if db.is_sqlite:
        pairs = _claim_sqlite(db, delivery_ids, now)
    else:
        pairs = _claim_pg(db, delivery_ids, now)
    claimed = []
    for row, v in pairs:
        if v is None:  # no such version: never sent
            continue
        claimed.append(
            Claimed(
                delivery_id=row.id,
                channel=row.channel,
                address=row.phone if row.channel == "sms" else row.email,
                contact_name=row.name,
                alert_id=row.alert_id,
                version=row.version,
                template=v.template,
                content=v.content,
                contact_id=row.contact_id,
                link_version=row.link_version,
                purpose=v.purpose,
                attempt=row.attempts,
                queued_at=row.queued_at,
            )
        )
    return claimed


def _claim_sqlite(db: Database, delivery_ids: list[int], now: datetime) -> list[Any]:
    """The same on SQLite (embedded runs): refusals first, then the claim, then its rows."""
    with db.transaction() as session:
        _refuse_opted_out(session, delivery_ids)
        won = dict(
            session.execute(
                update(Delivery)
                .where(
                    Delivery.id.in_(delivery_ids),
                    held_as(DeliveryStatus.queued),
                    due(now),
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
            select(
                Delivery.id,
                Delivery.attempts,  # as the claim just counted it: the fence
                Delivery.channel,
                Delivery.alert_id,
                Delivery.version,
                Delivery.queued_at,
                Contact.id.label("contact_id"),
                Contact.phone,
                Contact.email,
                Contact.name,
                Contact.link_version,
            )
            .join(Contact, Contact.id == Delivery.contact_id)
            .where(Delivery.id.in_(won))
            .order_by(Delivery.id)
        ).all()
        versions = _versions(session, {(row.alert_id, row.version) for row in rows})
        return [(row, versions.get((row.alert_id, row.version))) for row in rows]


def _ours(delivery_id: int, attempt: int) -> ColumnElement[bool]:
    """Still held by the claim numbered `attempt`: nobody took it back in between."""
    return and_(
        Delivery.id == delivery_id,
        held_as(DeliveryStatus.sending),
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


@dataclass(frozen=True)
class Sent:
    """A message the provider took: try number `attempt` of `delivery_id`, taken at `at`."""

    delivery_id: int
    attempt: int
    provider_id: str | None
    at: datetime
    outcome: str = AttemptOutcome.sent.value  # or reconciled: found at the provider


# PostgreSQL: a whole group in one statement, so one round trip and one commit (autocommit)
# however many results: the fenced move and every attempt row, atomically. The attempt row
# is written even when the move is refused (the sweeper took the row back meanwhile): the
# message did go out, and a possible repeat must stay visible.
_RECORD_SENT_PG = """
    WITH r AS (
        SELECT * FROM jsonb_to_recordset(CAST(%(group)s AS jsonb))
            AS r(id bigint, attempt integer, provider_id varchar, at timestamptz, outcome varchar)
    ), moved AS (
        UPDATE deliveries AS d
        SET status = %(sent)s, provider_id = r.provider_id, sent_at = r.at, last_error = NULL
        FROM r
        WHERE d.id = r.id AND (d.status = %(sending)s) IS TRUE AND d.attempts = r.attempt
        RETURNING d.id
    ), logged AS (
        INSERT INTO delivery_attempts (delivery_id, attempt, at, outcome, provider_id)
        SELECT id, attempt, at, outcome, provider_id FROM r
    )
    SELECT id FROM moved
"""


def record_connection(db: Database) -> Connection:
    """A connection for `record_sent` on PostgreSQL: autocommit, each group its own
    statement and its own commit. A batch holds one for all its groups: a pool checkout
    (with its liveness ping) per group cost more than the statement did. Give it back with
    `release_record_connection`.

    No sequential scans on it, as in a claim (`_NO_SEQSCAN`): the driver prepares the
    record statement after a few runs, and a generic plan made while the table was small
    (or from statistics that predate the fan-out) hashed a scan of the whole table for
    every group of ten, on and on for the life of the connection
    (tests/integration/test_claim_plans.py)."""
    connection = db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        connection.exec_driver_sql("SET enable_seqscan = off")
    except BaseException:
        connection.close()
        raise
    return connection


def release_record_connection(connection: Connection) -> None:
    """Back to the pool as it was taken: other work on it may need a sequential scan."""
    try:
        connection.exec_driver_sql("RESET enable_seqscan")
    except BaseException:
        connection.invalidate()  # never back to the pool with the setting still on
        raise
    finally:
        connection.close()


def record_sent(
    db: Database, group: Sequence[Sent], connection: Connection | None = None
) -> set[int]:
    """Record messages the provider took, each fenced by its claim (`_ours`), with their
    `delivery_attempts` rows, all or none; return the ids that moved to sent. On
    PostgreSQL, through `connection` (from `record_connection`) when given."""
    if not group:
        return set()
    if db.is_sqlite:
        moved = _record_sent_each(db, group)
    elif connection is None:
        own = record_connection(db)
        try:
            moved = _record_sent_pg(own, group)
        finally:
            release_record_connection(own)
    else:
        moved = _record_sent_pg(connection, group)
    late = len({s.delivery_id for s in group} - moved)
    if late:
        log.warning("%s deliveries went out after they were taken back", late)
    return moved


def _record_sent_pg(connection: Connection, group: Sequence[Sent]) -> set[int]:
    # The driver's own statement (no SQLAlchemy compilation): it runs once per ten messages.
    result = connection.exec_driver_sql(
        _RECORD_SENT_PG,
        {
            # One JSON text, not five arrays: the driver's array dumping cost more than the
            # rest of the statement's client side (140 -> 80 us a group of ten).
            "group": json.dumps(
                [
                    {
                        "id": s.delivery_id,
                        "attempt": s.attempt,
                        "provider_id": s.provider_id,
                        "at": s.at.isoformat(),
                        "outcome": s.outcome,
                    }
                    for s in group
                ]
            ),
            "sent": DeliveryStatus.sent.value,
            "sending": DeliveryStatus.sending.value,
        },
    )
    return {row[0] for row in result}


def _record_sent_each(db: Database, group: Sequence[Sent]) -> set[int]:
    """The same on SQLite (embedded runs), which has no data-modifying CTE: one
    transaction, a statement per row."""
    moved: set[int] = set()
    with db.engine.begin() as connection:
        for s in group:
            if connection.execute(
                update(Delivery)
                .where(_ours(s.delivery_id, s.attempt))
                .values(
                    status=DeliveryStatus.sent.value,
                    provider_id=s.provider_id,
                    sent_at=s.at,
                    last_error=None,
                )
            ).rowcount:
                moved.add(s.delivery_id)
        connection.execute(
            insert(DeliveryAttempt),
            [
                {
                    "delivery_id": s.delivery_id,
                    "attempt": s.attempt,
                    "at": s.at,
                    "outcome": s.outcome,
                    "provider_id": s.provider_id,
                }
                for s in group
            ],
        )
    return moved


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
    if result.outcome is SendOutcome.sent:
        record_sent(db, [Sent(delivery_id, attempts, result.provider_id, now, label)])
        return False
    retry = result.outcome is SendOutcome.transient_error and attempts < max_attempts
    with db.transaction() as session:
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


def unclaim(db: Database, delivery_id: int, attempt: int) -> None:
    """Hand back a row held by the claim numbered `attempt` but never tried."""
    with db.transaction() as session:
        session.execute(
            update(Delivery)
            .where(_ours(delivery_id, attempt))
            .values(status=DeliveryStatus.queued.value)
        )
