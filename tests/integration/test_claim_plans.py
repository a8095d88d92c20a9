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
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, text

from ldis.bootstrap import Container
from ldis.services import delivery
from ldis.services.delivery_claims import (
    Sent,
    _record_sent_pg,
    claim,
    record_connection,
    release_record_connection,
)
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


@pytest.mark.parametrize("plans", ["force_generic_plan", "force_custom_plan"])
def test_a_record_group_finds_its_rows_by_key_when_statistics_are_stale(
    container: Container, plans: str
) -> None:
    # The record statement runs on a held connection, prepared by the driver after a few
    # runs: PostgreSQL may then keep one generic plan for all its groups. One made while
    # the table was small hashed a sequential scan of the whole table for every group of
    # ten, for as long as the connection lived (the fan-out benchmark: PostgreSQL's CPU
    # 4x, and growing). Custom plans from stale statistics did the same.
    s.area(container)
    service = s.service(container, "Selby NSP")
    for i in range(CONTACTS):
        s.contact(
            container, service, name=f"R{i}", phone=f"+4477007{i:05d}", email=f"r{i}@example.org"
        )
    with container.db.engine.connect() as connection:
        connection.execute(text("ANALYZE deliveries"))  # before the fan-out: a small table
        connection.commit()
    s.send_alert(container)  # every delivery sent
    alert_id = s.send_alert(container, title="Second alert", deliver=False)
    queued = delivery.queued_ids(container.db, alert_id, 1)
    claimed = claim(container.db, queued[:10])
    now = datetime.now(UTC)
    group = [Sent(c.delivery_id, c.attempt, f"SM{c.delivery_id:032x}", now) for c in claimed]
    held = record_connection(container.db)
    try:
        # One transaction around it, only so that the counters below are this statement's.
        held.commit()  # autocommit: ends only SQLAlchemy's own bookkeeping
        counted = held.execution_options(isolation_level="READ COMMITTED")
        counted.execute(text(f"SET LOCAL plan_cache_mode = {plans}"))
        before = {name: seq for name, seq, _ in counted.execute(text(_COUNTS))}
        assert _record_sent_pg(counted, group) == {c.delivery_id for c in claimed}
        after = {name: seq for name, seq, _ in counted.execute(text(_COUNTS))}
        counted.rollback()
        held.execution_options(isolation_level="AUTOCOMMIT")  # as record_connection made it
    finally:
        release_record_connection(held)
    seq_read = after["deliveries"] - before["deliveries"]
    assert seq_read == 0, f"{seq_read} delivery rows read by a sequential scan for 10 results"
    # The connection went back to the pool as it was taken.
    with container.db.engine.connect() as connection:
        assert connection.exec_driver_sql("SHOW enable_seqscan").scalar() == "on"
