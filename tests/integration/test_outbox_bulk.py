"""The outbox writer's PostgreSQL path (one INSERT ... SELECT FROM unnest) writes exactly the
rows the ORM path (SQLite's) writes, in the same order, in the caller's transaction: all or
nothing, the unique key enforced, a repeat skipped and counted exactly."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ldis.bootstrap import Container
from ldis.domain.audience import LONDON
from ldis.domain.roles import Role
from ldis.services import alerts, outbox_bulk, outbox_writer
from ldis.store.models import (
    AlertVersion,
    Area,
    Contact,
    ContactChannel,
    Delivery,
    Service,
    ServiceArea,
)
from tests.integration.test_concurrent_approval import person

pytestmark = pytest.mark.integration

# 23:00 in York: inside 22:00-07:00 quiet hours, outside 06:00-08:00 ones.
NOW = datetime(2026, 11, 21, 23, 0, tzinfo=LONDON).astimezone(UTC)
QUIET = [(None, None), (time(22, 0), time(7, 0)), (time(6, 0), time(8, 0)), (time(21), time(9))]
COLUMNS = (
    Delivery.alert_id,
    Delivery.version,
    Delivery.contact_id,
    Delivery.channel,
    Delivery.priority,
    Delivery.status,
    Delivery.attempts,
    Delivery.queued_at,
    Delivery.not_before,
    Delivery.claimed_at,
    Delivery.sent_at,
    Delivery.provider_id,
    Delivery.last_error,
)


@pytest.fixture
def alert_id(container: Container) -> int:
    """An alert to YORK-B, whose one service has 12 contacts (SMS and e-mail, or one of
    them) with four kinds of quiet hours, drafted but never approved (no deliveries)."""
    verified = datetime.now(UTC)
    with container.db.transaction() as session:
        area = Area(code="YORK-B", name="York B")
        service = Service(name="York NSP", type="needle_syringe_programme")
        session.add_all([area, service])
        session.flush()
        session.add(ServiceArea(service_id=service.id, area_id=area.id))
        for n in range(12):
            start, end = QUIET[n % len(QUIET)]
            kinds = ("sms", "email") if n % 3 else (("sms",) if n % 2 else ("email",))
            session.add(
                Contact(
                    service_id=service.id,
                    name=f"Contact {n:02d}",
                    email=f"c{n}@example.org",
                    phone=f"+447700900{n:03d}",
                    quiet_start=start,
                    quiet_end=end,
                    channels=[ContactChannel(channel=k, verified_at=verified) for k in kinds],
                )
            )
    drafter = person(container, "drafter", Role.panel)
    body = {
        "title": "Bulk path",
        "template": "professional",
        "priority": "standard",
        "areas": ["YORK-B"],
        "fields": {"summary": "Strong opioid.", "advice": "Carry naloxone."},
    }
    view = alerts.draft_alert(container.db, drafter, body, templates=container.templates())
    return int(view["id"])


def _version(session: Session, alert_id: int, priority: str = "standard") -> AlertVersion:
    version = session.scalars(select(AlertVersion).where(AlertVersion.alert_id == alert_id)).one()
    version.priority = priority
    return version


def _rows(session: Session, alert_id: int) -> list[tuple[Any, ...]]:
    """Every stored column but the id, in id order (the order the fan-out sends in)."""
    return [
        tuple(row)
        for row in session.execute(
            select(*COLUMNS).where(Delivery.alert_id == alert_id).order_by(Delivery.id)
        )
    ]


def _write_and_discard(
    container: Container, alert_id: int, priority: str, bulk: bool, monkeypatch: Any
) -> tuple[int, list[tuple[Any, ...]]]:
    """Write the deliveries on one path inside a transaction, read them, roll it back."""
    with monkeypatch.context() as patch:
        if not bulk:
            patch.setattr(outbox_writer, "on_postgresql", lambda session: False)
        with container.db.engine.connect() as connection, Session(connection) as session:
            version = _version(session, alert_id, priority)
            count = outbox_writer.write_deliveries(session, alert_id, version, now=NOW)
            rows = _rows(session, alert_id)
            session.rollback()
    return count, rows


@pytest.mark.parametrize("priority", ["standard", "urgent"])
def test_the_bulk_path_writes_exactly_the_orm_paths_rows(
    container: Container, alert_id: int, priority: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bulk_count, bulk = _write_and_discard(container, alert_id, priority, True, monkeypatch)
    orm_count, orm = _write_and_discard(container, alert_id, priority, False, monkeypatch)

    assert bulk == orm  # every column, and the order of the ids
    assert bulk_count == orm_count == len(bulk) == 20  # 8 contacts x 2 + 4 x 1
    holds = {row[8] for row in bulk}
    if priority == "urgent":
        assert holds == {None}  # urgent alerts never wait out quiet hours
    else:
        # 22:00-07:00 and 21:00-09:00 end the next morning; the others do not hold back.
        assert holds == {
            None,
            datetime(2026, 11, 22, 7, 0, tzinfo=LONDON).astimezone(UTC),
            datetime(2026, 11, 22, 9, 0, tzinfo=LONDON).astimezone(UTC),
        }
    assert {row[4:7] for row in bulk} == {(priority, "queued", 0)}


def test_a_rolled_back_approval_leaves_no_delivery(container: Container, alert_id: int) -> None:
    with (
        pytest.raises(RuntimeError, match="after the rows"),
        container.db.transaction() as session,
    ):
        version = _version(session, alert_id)
        assert outbox_writer.write_deliveries(session, alert_id, version, now=NOW) == 20
        raise RuntimeError("something failed after the rows were written")
    with container.db.transaction() as session:
        assert _rows(session, alert_id) == []


def test_a_second_plain_write_fails_whole_on_the_unique_key(
    container: Container, alert_id: int
) -> None:
    with pytest.raises(IntegrityError), container.db.transaction() as session:
        version = _version(session, alert_id)
        outbox_writer.write_deliveries(session, alert_id, version, now=NOW)
        outbox_writer.write_deliveries(session, alert_id, version, now=NOW)
    with container.db.transaction() as session:
        assert _rows(session, alert_id) == []


@pytest.mark.parametrize("bulk", [True, False])
def test_written_again_a_row_already_there_is_skipped_and_not_counted(
    container: Container, alert_id: int, bulk: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not bulk:
        monkeypatch.setattr(outbox_writer, "on_postgresql", lambda session: False)
    with container.db.transaction() as session:
        version = _version(session, alert_id)
        targets = outbox_writer.version_targets(session, alert_id, version)
        first = dict(list(targets.items())[:5])
        assert outbox_writer.write_deliveries(
            session, alert_id, version, now=NOW, targets=first
        ) == len(first)
        again = outbox_writer.write_deliveries
        assert again(session, alert_id, version, now=NOW, targets=first) == 0
        assert again(session, alert_id, version, now=NOW, targets=targets) == len(targets) - 5
        assert again(session, alert_id, version, now=NOW, targets={}) == 0
        assert len(_rows(session, alert_id)) == len(targets)


def test_naive_times_are_refused_as_the_orm_path_refuses_them(
    container: Container, alert_id: int
) -> None:
    with container.db.transaction() as session, pytest.raises(ValueError, match="naive"):
        outbox_bulk.insert_queued(
            session,
            alert_id=alert_id,
            version=1,
            priority="standard",
            queued_at=NOW,
            rows=[(1, "sms", datetime(2026, 11, 22, 7, 0))],
        )
