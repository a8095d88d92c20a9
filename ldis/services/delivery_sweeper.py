"""The heartbeat's stamps and the sweeper that reads them: rows a lost task left behind.

A worker part-way through a batch re-stamps the rows it still holds (`claimed_at`); a row
`sending` and unstamped for `stuck_after` belongs to a worker that is gone, so the sweeper
moves it back to `queued` (a `lost` attempt, reconciled before its next try) and offers it
again, with queued rows no task picked up and rows whose quiet hours or backoff just ended.
docs/delivery.md.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, func, insert, literal, or_, select, tuple_, update

from ldis.domain.deliveries import AttemptOutcome, DeliveryStatus
from ldis.services.delivery_claims import due, held_as
from ldis.store.db import Database
from ldis.store.models import Delivery, DeliveryAttempt

log = logging.getLogger(__name__)
# Written into the SQL, not bound: the status index holds only queued and sending rows
# (migration 0010), and a prepared statement's generic plan (psycopg prepares a statement
# run five times on a connection) can use it only if its WHERE clause names the status. A
# bound LIMIT makes that plan guess a tenth of the rows and walk the whole table by id.
SENDING = literal(DeliveryStatus.sending.value, literal_execute=True)
QUEUED = literal(DeliveryStatus.queued.value, literal_execute=True)
SWEEP_LIMIT = literal(10_000, literal_execute=True)


def stamp(db: Database, held: list[tuple[int, int]]) -> set[int]:
    """Re-stamp the rows still held by these (id, attempt) claims; return the ids still
    held (the sweeper has taken back the rest)."""
    with db.transaction() as session:
        return set(
            session.scalars(
                update(Delivery)
                .where(
                    tuple_(Delivery.id, Delivery.attempts).in_(held),
                    held_as(DeliveryStatus.sending),
                )
                .values(claimed_at=datetime.now(UTC))
                .returning(Delivery.id)
            )
        )


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
            .where(Delivery.status == SENDING, Delivery.claimed_at < cutoff)
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
                Delivery.status == QUEUED,
                due(now),
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
            .limit(SWEEP_LIMIT)
        ).all()
    found: dict[str, list[int]] = defaultdict(list)
    for delivery_id, priority in rows:
        found[priority].append(delivery_id)
    return dict(found)
