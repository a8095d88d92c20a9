"""A claim reads its batch by primary key however stale the planner's statistics are.

Statistics lag a fan-out: the last ANALYZE saw every delivery `sent`, then one approval
queues hundreds of thousands. Planned from such statistics, `status = 'queued'` looks like a
handful of rows, and a claim that let the planner find its rows through the status index (or
start from the alert version, or scan the table) read every queued row for each batch of
100: quadratic in the fan-out, and most of PostgreSQL's CPU per message in the benchmark
(docs/performance.md). Here the claim's own statements are replayed for a fresh batch in a
transaction, and PostgreSQL's per-transaction counters say how many rows they read."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import event, text

from ldis.bootstrap import Container
from ldis.services import delivery
from ldis.services.delivery_claims import claim
from tests.integration import selfservice as s

pytestmark = pytest.mark.integration

CONTACTS = 300  # two channels each: 600 deliveries an alert
BATCH = 100
_EXPANDED_ID = re.compile(r"^id_\d+_(\d+)$")  # SQLAlchemy's names for `id IN (...)` values


def _claim_statements(container: Container, ids: list[int]) -> list[tuple[str, dict[str, Any]]]:
    """Run a claim of `ids`; the statements it sent, with their parameters."""
    seen: list[tuple[str, dict[str, Any]]] = []

    def note(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, dict(parameters or {})))

    event.listen(container.db.engine, "before_cursor_execute", note)
    try:
        assert len(claim(container.db, ids)) == len(ids)
    finally:
        event.remove(container.db.engine, "before_cursor_execute", note)
    return seen


_COUNTS = (
    "SELECT relname, seq_tup_read, coalesce(idx_tup_fetch, 0) "
    "FROM pg_stat_xact_user_tables WHERE relname IN ('deliveries', 'contacts')"
)


def _rows_read(
    container: Container, statements: list[tuple[str, dict[str, Any]]], ids: list[int]
) -> dict[str, tuple[int, int]]:
    """Replay `statements` for `ids` in one transaction (rolled back); per table, the rows
    read by sequential scans and fetched through indexes (the counters' change: they may
    still hold this backend's earlier, unflushed counts)."""
    raw = container.db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(_COUNTS)
        before = {name: (seq, fetched) for name, seq, fetched in cursor.fetchall()}
        for statement, parameters in statements:
            for name, value in parameters.items():
                found = _EXPANDED_ID.match(name)
                if found:  # one placeholder per id
                    parameters[name] = ids[int(found.group(1)) - 1]
                elif isinstance(value, list) and value and isinstance(value[0], int):
                    parameters[name] = ids[: len(value)]  # an array of ids
            cursor.execute(statement, parameters)
        cursor.execute(_COUNTS)
        after = {name: (seq, fetched) for name, seq, fetched in cursor.fetchall()}
        raw.rollback()
        return {
            name: (seq - before[name][0], fetched - before[name][1])
            for name, (seq, fetched) in after.items()
        }
    finally:
        raw.close()


def test_a_claim_reads_its_batch_by_key_when_statistics_are_stale(container: Container) -> None:
    s.area(container)
    service = s.service(container, "Selby NSP")
    for i in range(CONTACTS):
        s.contact(
            container, service, name=f"S{i}", phone=f"+4477009{i:05d}", email=f"s{i}@example.org"
        )
    s.send_alert(container)  # every delivery sent
    with container.db.engine.connect() as connection:
        connection.execute(text("ANALYZE deliveries"))
        connection.execute(text("ANALYZE contacts"))
        connection.commit()
    # Statistics now say: no delivery is queued. Then a fan-out queues 600.
    alert_id = s.send_alert(container, title="Second alert", deliver=False)
    queued = delivery.queued_ids(container.db, alert_id, 1)
    assert len(queued) == 2 * CONTACTS

    statements = _claim_statements(container, queued[:BATCH])
    counts = _rows_read(container, statements, queued[BATCH : 2 * BATCH])

    deliveries_seq, deliveries_fetched = counts["deliveries"]
    contacts_seq, _ = counts["contacts"]
    assert deliveries_seq == 0 and contacts_seq == 0, counts
    # Each statement reads the batch's rows, a few times over; never the other 500 queued.
    assert deliveries_fetched <= 4 * BATCH, counts
    assert deliveries_fetched >= BATCH, counts  # the counters did see the claim
