"""A worker reads an alert version once, not per batch, and never serves a stale one."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, text

from ldis.bootstrap import Container
from ldis.services import delivery
from ldis.services.delivery_claims import Claimed, claim
from tests.integration import selfservice as s

pytestmark = pytest.mark.integration


def _claim_counting_version_reads(
    container: Container, ids: list[int]
) -> tuple[list[Claimed], int]:
    reads = 0

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        nonlocal reads
        reads += statement.lstrip().startswith("SELECT alert_versions.")

    event.listen(container.db.engine, "before_cursor_execute", note)
    try:
        return claim(container.db, ids), reads
    finally:
        event.remove(container.db.engine, "before_cursor_execute", note)


def _queued(container: Container, contacts: int) -> tuple[int, list[int]]:
    s.area(container)
    service = s.service(container, "Selby NSP")
    for i in range(contacts):
        s.contact(
            container, service, name=f"V{i}", phone=f"+4477008{i:05d}", email=f"v{i}@example.org"
        )
    alert_id = s.send_alert(container, title="Versions alert", deliver=False)
    return alert_id, delivery.queued_ids(container.db, alert_id, 1)


def test_each_version_is_read_once_per_process(container: Container) -> None:
    _, queued = _queued(container, 6)
    first, reads_first = _claim_counting_version_reads(container, queued[:4])
    second, reads_second = _claim_counting_version_reads(container, queued[4:])
    assert len(first) == 4 and len(second) == len(queued) - 4
    assert (reads_first, reads_second) == (1, 0)
    assert second[0].content == first[0].content
    assert {c.template for c in first + second} == {first[0].template}


def test_a_version_row_written_again_is_read_again(container: Container) -> None:
    # A database restored or rebuilt under a running worker: same numbers, another row.
    alert_id, queued = _queued(container, 3)
    before, _ = _claim_counting_version_reads(container, queued[:2])
    with container.db.engine.begin() as connection:
        connection.execute(
            text(
                'UPDATE alert_versions SET content = content || \'{"headline": "Rewritten"}\''
                " WHERE alert_id = :alert_id AND version = 1"
            ),
            {"alert_id": alert_id},
        )
    after, reads = _claim_counting_version_reads(container, queued[2:])
    assert reads == 1
    assert before[0].content.get("headline") != "Rewritten"
    assert {c.content.get("headline") for c in after} == {"Rewritten"}
