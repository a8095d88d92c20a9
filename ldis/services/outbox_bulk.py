"""The outbox writer's PostgreSQL path: every delivery row of an approval in one statement.

A county-wide alert writes ~20,000 rows in the approval's transaction. As a list of row
dicts (SQLAlchemy's executemany, sent as multi-row VALUES) that took ~0.7 s, most of it in
Python and in parsing 20 statements of 9,000 parameters each. Here it is one
`INSERT ... SELECT FROM unnest(...)` of two integer arrays: each row's contact and its
"slot", the index of its (channel, not_before) pair in two short arrays (a handful of
distinct pairs). psycopg encodes a list item by item in Python: 20,000 timestamps take
~80 ms, texts or integers 10-15 ms, so the two long arrays go as comma-joined text that
the server splits (~1 ms each). What is left is nearly all the server's own work: the
index entries and the two foreign-key checks of each row. Not COPY: it is refused on a
table with row-level security for the roles it applies to (a partnership's own approval is one).

Rows get their ids in the given order, as the executemany gave them, so the fan-out (which
sends by id) still goes in the audience's order. SQLite (embedded runs) keeps the ORM path
in `ldis.services.outbox_writer`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.orm import Session

from ldis.domain.deliveries import DeliveryStatus

# Arrays are 1-based: slot n is channels[n] with not_before[n] (NULL: not held back).
_INSERT = """
    INSERT INTO deliveries (
        alert_id, version, contact_id, channel, priority, status, attempts, queued_at,
        not_before
    )
    SELECT %(alert_id)s, %(version)s, t.contact_id,
           (CAST(%(channels)s AS varchar[]))[t.slot], %(priority)s, %(status)s, 0,
           %(queued_at)s, (CAST(%(not_before)s AS timestamptz[]))[t.slot]
    FROM unnest(
        CAST(string_to_array(%(contact_ids)s, ',') AS integer[]),
        CAST(string_to_array(%(slots)s, ',') AS integer[])
    ) WITH ORDINALITY AS t(contact_id, slot, n)
    ORDER BY t.n
"""
# A neighbour's rows written again on sharing: a row already there is skipped, not doubled.
_SKIP_EXISTING = " ON CONFLICT (alert_id, version, contact_id, channel) DO NOTHING"


def insert_queued(
    session: Session,
    *,
    alert_id: int,
    version: int,
    priority: str,
    queued_at: datetime,
    rows: Iterable[tuple[int, str, datetime | None]],
    skip_existing: bool = False,
) -> int:
    """Insert a queued delivery per (contact, channel, not_before) of `rows`, in the
    session's own transaction (and partnership); return how many were written. Without
    `skip_existing` a row already there fails the whole statement (the unique key)."""
    slot_of: dict[tuple[str, datetime | None], int] = {}
    contact_ids: list[int] = []
    slots: list[int] = []
    for contact_id, channel, not_before in rows:
        slot = slot_of.get((channel, not_before))
        if slot is None:
            slot = slot_of[(channel, not_before)] = len(slot_of) + 1
        contact_ids.append(contact_id)
        slots.append(slot)
    if not contact_ids:
        return 0
    if any(t is not None and t.tzinfo is None for t in (queued_at, *(t for _, t in slot_of))):
        raise ValueError("naive datetime refused: store times in UTC")  # as UTCDateTime does
    # Pending ORM changes first, as the ORM insert's autoflush did: the same statement order.
    session.flush()
    result = session.connection().exec_driver_sql(
        _INSERT + (_SKIP_EXISTING if skip_existing else ""),
        {
            "alert_id": alert_id,
            "version": version,
            "priority": priority,
            "status": DeliveryStatus.queued.value,
            "queued_at": queued_at,
            "channels": [channel for channel, _ in slot_of],
            "not_before": [not_before for _, not_before in slot_of],
            "contact_ids": ",".join(map(str, contact_ids)),
            "slots": ",".join(map(str, slots)),
        },
    )
    return int(result.rowcount)
