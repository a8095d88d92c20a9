"""Sent messages are written down in small groups: the in-doubt window of a killed worker
(messages out but still `sending` in the database) never exceeds a group, nor what came back
in the last `RECORD_GROUP_SECONDS`. Watched from the database at the moment each text goes
to the fake Twilio, through the real channel and the real send loop."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select, text

from ldis.bootstrap import Container
from ldis.domain.messages import OutgoingMessage, SendResult
from ldis.services import delivery
from ldis.services.delivery_claims import Sent, claim, record_sent
from ldis.services.ports import Gate
from ldis.settings import SmsChannel
from ldis.store.models import Delivery, DeliveryAttempt
from tests.fakes.twilio_api import FakeTwilio
from tests.integration import selfservice as s
from workers.channels import build_senders

pytestmark = pytest.mark.integration

SID = "AC" + "5" * 32
TOKEN = "groups-token"


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio(SID, TOKEN) as server:
        yield server


class Watched:
    """The real Twilio channel; just before each text goes, notes how many texts already
    sent are not yet written down as sent."""

    def __init__(self, container: Container, fake: FakeTwilio, alert_id: int) -> None:
        settings = container.settings.model_copy(
            update={
                "sms_channel": SmsChannel.twilio,
                "twilio_account_sid": SID,
                "twilio_auth_token": TOKEN,
                "twilio_from": "+447700900000",
                "twilio_base_url": fake.url,
            }
        )
        self.real: Any = build_senders(settings, container.db)["sms"]
        self.container, self.alert_id = container, alert_id
        self.results = 0
        self.unwritten: list[int] = []  # at each send

    def send_many(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        return [result for _, result in self.send_each(messages)]

    def send_each(
        self, messages: list[OutgoingMessage], gate: Gate | None = None
    ) -> Generator[tuple[OutgoingMessage, SendResult], None, None]:
        def watching(message: OutgoingMessage) -> bool:
            go = gate(message) if gate is not None else True
            self.unwritten.append(self.results - self._written())
            return go

        for message, result in self.real.send_each(messages, watching):
            self.results += 1
            yield message, result

    def _written(self) -> int:
        with self.container.db.transaction() as session:
            return int(
                session.scalar(
                    select(func.count()).where(
                        Delivery.alert_id == self.alert_id, Delivery.status == "sent"
                    )
                )
                or 0
            )


def _texts(container: Container, n: int) -> tuple[int, list[int]]:
    s.area(container)
    service = s.service(container, "Goole NSP")
    for i in range(n):
        s.contact(container, service, name=f"G{i}", phone=f"+447700900{400 + i}", email=None)
    alert_id = s.send_alert(container, deliver=False)
    return alert_id, [d.id for d in s.deliveries(container, alert_id)]


def _attempts(container: Container, ids: list[int]) -> list[str]:
    with container.db.transaction() as session:
        return list(
            session.scalars(
                select(DeliveryAttempt.outcome).where(DeliveryAttempt.delivery_id.in_(ids))
            )
        )


def test_never_more_than_a_group_is_out_and_unwritten(
    container: Container, fake: FakeTwilio
) -> None:
    alert_id, ids = _texts(container, 3 * delivery.RECORD_GROUP + 5)
    watched = Watched(container, fake, alert_id)

    delivery.deliver(container.db, ids, {"sms": watched}, container.renderer, container.links)

    assert len(watched.unwritten) == len(ids) == len(fake.created())
    assert max(watched.unwritten) <= delivery.RECORD_GROUP - 1, watched.unwritten
    assert max(watched.unwritten) >= 1, "results were written in groups, not one by one"
    assert {d.status for d in s.deliveries(container, alert_id)} == {"sent"}
    assert sorted(_attempts(container, ids)) == ["sent"] * len(ids)


def test_a_slow_provider_leaves_at_most_the_last_result_unwritten(
    container: Container, fake: FakeTwilio
) -> None:
    alert_id, ids = _texts(container, 6)
    for i in range(6):  # each call takes longer than a group may wait
        fake.hang(f"+447700900{400 + i}", 2 * delivery.RECORD_GROUP_SECONDS)
    watched = Watched(container, fake, alert_id)

    delivery.deliver(container.db, ids, {"sms": watched}, container.renderer, container.links)

    # When a text goes, the one before it may still be unwritten (it came back just now),
    # never two: the earlier one was over RECORD_GROUP_SECONDS old and has been written.
    assert watched.unwritten[0] == 0 and max(watched.unwritten) == 1, watched.unwritten
    assert {d.status for d in s.deliveries(container, alert_id)} == {"sent"}


def test_a_batch_writes_its_groups_on_one_connection(
    container: Container, fake: FakeTwilio
) -> None:
    """A pool checkout (and its liveness ping) per group cost more than the group's
    statement: the batch holds one connection for all its groups, and gives it back."""
    alert_id, ids = _texts(container, 4 * delivery.RECORD_GROUP)
    watched = Watched(container, fake, alert_id)
    checkouts: list[int] = []
    pool = container.db.engine.pool

    def note(*_: Any) -> None:
        checkouts.append(pool.checkedout())

    event.listen(container.db.engine, "checkout", note)
    try:
        delivery.deliver(container.db, ids, {"sms": watched}, container.renderer, container.links)
    finally:
        event.remove(container.db.engine, "checkout", note)

    assert sorted(_attempts(container, ids)) == ["sent"] * len(ids)
    # The claim, the records' one connection, and the watcher's reads (one per text).
    assert len(checkouts) == 1 + 1 + len(ids), len(checkouts)
    assert pool.checkedout() == 0  # nothing kept after the batch


def test_a_connection_lost_between_groups_is_replaced_and_nothing_is_lost(
    container: Container, fake: FakeTwilio
) -> None:
    """The batch's held connection dies (the database restarted, a proxy cut it): the next
    group is written on a fresh one, and every text is recorded once."""
    alert_id, ids = _texts(container, 3 * delivery.RECORD_GROUP)
    watched = Watched(container, fake, alert_id)
    real_gate_count = {"n": 0}
    original = watched.send_each

    def cutting(messages: list[OutgoingMessage], gate: Gate | None = None) -> Any:
        def gate_then_cut(message: OutgoingMessage) -> bool:
            real_gate_count["n"] += 1
            if real_gate_count["n"] == delivery.RECORD_GROUP + 5:  # after the first group
                with container.db.engine.connect() as connection:
                    connection.execute(
                        text(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                        )
                    )
            return gate(message) if gate is not None else True

        return original(messages, gate_then_cut)

    watched.send_each = cutting  # type: ignore[method-assign]

    delivery.deliver(container.db, ids, {"sms": watched}, container.renderer, container.links)

    assert len(fake.created()) == len(ids)
    assert {d.status for d in s.deliveries(container, alert_id)} == {"sent"}
    assert sorted(_attempts(container, ids)) == ["sent"] * len(ids)


def test_a_group_is_written_exactly_as_given(container: Container) -> None:
    # Provider ids are the provider's to choose: quotes, backslashes, commas, braces and
    # non-ASCII must arrive as sent, and each time to the microsecond.
    _, ids = _texts(container, 3)
    claimed = {c.delivery_id: c.attempt for c in claim(container.db, ids)}
    at = datetime(2026, 12, 1, 0, 17, 32, 123456, tzinfo=UTC)
    odd = ['SM"quoted\\back', "<a,b}{c>@mail.example", "nämlich-∂"]
    group = [
        Sent(i, claimed[i], provider, at + timedelta(microseconds=n), "sent")
        for n, (i, provider) in enumerate(zip(ids, odd, strict=True))
    ]
    assert record_sent(container.db, group) == set(ids)
    with container.db.transaction() as session:
        rows = session.execute(
            select(Delivery.id, Delivery.status, Delivery.provider_id, Delivery.sent_at).where(
                Delivery.id.in_(ids)
            )
        ).all()
        attempts = session.execute(
            select(
                DeliveryAttempt.delivery_id, DeliveryAttempt.provider_id, DeliveryAttempt.at
            ).where(DeliveryAttempt.delivery_id.in_(ids))
        ).all()
    expected = {s.delivery_id: (s.provider_id, s.at) for s in group}
    assert {r.id: (r.status, r.provider_id, r.sent_at) for r in rows} == {
        i: ("sent", *expected[i]) for i in ids
    }
    assert {a.delivery_id: (a.provider_id, a.at) for a in attempts} == expected
    # Written twice (a retried statement): fenced, nothing moves again.
    assert record_sent(container.db, group) == set()
