"""Reconciliation, deterministically and in-process: a text whose worker died after Twilio
took it is found at Twilio and recorded, not sent again; one whose worker died before is
sent. And a worker whose rows were taken back (it stalled) sends none of them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from ldis.bootstrap import Container
from ldis.domain.messages import OutgoingMessage, SendResult
from ldis.services import delivery
from ldis.settings import SmsChannel
from ldis.store.models import Delivery, DeliveryAttempt
from tests.fakes.twilio_api import FakeTwilio
from tests.integration import selfservice as s
from workers.channels import build_senders

pytestmark = pytest.mark.integration

SID = "AC" + "3" * 32
TOKEN = "reconcile-token"
STUCK = timedelta(seconds=30)


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio(SID, TOKEN) as server:
        yield server


@pytest.fixture
def senders(container: Container, fake: FakeTwilio) -> dict[str, Any]:
    settings = container.settings.model_copy(
        update={
            "sms_channel": SmsChannel.twilio,
            "twilio_account_sid": SID,
            "twilio_auth_token": TOKEN,
            "twilio_from": "+447700900000",
            "twilio_base_url": fake.url,
        }
    )
    return dict(build_senders(settings, container.db))


def _texts(container: Container, senders: dict[str, Any]) -> tuple[int, list[Delivery]]:
    s.area(container)
    service = s.service(container, "Selby NSP")
    for n in range(3):
        s.contact(container, service, name=f"C{n}", phone=f"+44770090030{n}", email=None)
    alert_id = s.send_alert(container, deliver=False)
    return alert_id, s.deliveries(container, alert_id)


def _deliver(container: Container, senders: dict[str, Any], ids: list[int]) -> None:
    delivery.deliver(container.db, ids, senders, container.renderer, container.links)


def _attempts(container: Container, delivery_id: int) -> list[str]:
    with container.db.transaction() as session:
        return list(
            session.scalars(
                select(DeliveryAttempt.outcome)
                .where(DeliveryAttempt.delivery_id == delivery_id)
                .order_by(DeliveryAttempt.id)
            )
        )


def test_a_text_twilio_already_has_is_recorded_not_sent_again(
    container: Container, fake: FakeTwilio, senders: dict[str, Any]
) -> None:
    alert_id, (got_it, never_got_it, fine) = _texts(container, senders)
    _deliver(container, senders, [got_it.id, fine.id])
    sid = s.deliveries(container, alert_id)[0].provider_id
    # Both workers "died": one after Twilio took its text (the record never happened), one
    # before its request left. Their rows are still `sending`, long unstamped.
    long_ago = datetime.now(UTC) - 2 * STUCK
    with container.db.transaction() as session:
        session.execute(
            update(Delivery)
            .where(Delivery.id == got_it.id)
            .values(status="sending", provider_id=None, sent_at=None, claimed_at=long_ago)
        )
        session.execute(
            update(Delivery)
            .where(Delivery.id == never_got_it.id)
            .values(status="sending", attempts=1, claimed_at=long_ago)
        )
    posts = len(fake.requests)

    offered = delivery.sweep(container.db, STUCK)
    assert sorted(offered["urgent"]) == [got_it.id, never_got_it.id]
    _deliver(container, senders, offered["urgent"])

    rows = {d.id: d for d in s.deliveries(container, alert_id)}
    assert rows[got_it.id].status == rows[never_got_it.id].status == "sent"
    assert rows[got_it.id].provider_id == sid  # Twilio's own sid, found in its list
    assert len(fake.requests) == posts + 1  # only the one Twilio never had
    assert _attempts(container, got_it.id) == ["sent", "lost", "reconciled"]
    assert _attempts(container, never_got_it.id) == ["lost", "sent"]
    assert fake.list_requests == 2
    assert max(s_count for s_count in fake.count_by(lambda m: m.to).values()) == 1


class Stalling:
    """Twilio, reached only after a stall long enough for the sweeper to take the batch back
    and another worker to send it."""

    def __init__(self, container: Container, real: Any) -> None:
        self.container, self.real = container, real

    def send_each(
        self, messages: list[OutgoingMessage], gate: Any = None
    ) -> Iterator[tuple[OutgoingMessage, SendResult]]:
        with self.container.db.transaction() as session:
            session.execute(update(Delivery).values(claimed_at=datetime.now(UTC) - 2 * STUCK))
        offered = delivery.sweep(self.container.db, STUCK)["urgent"]
        _deliver(self.container, {"sms": self.real}, offered)  # the other worker
        yield from self.real.send_each(messages, gate)


def test_a_stalled_worker_sends_nothing_the_sweeper_took_back(
    container: Container, fake: FakeTwilio, senders: dict[str, Any]
) -> None:
    alert_id, texts = _texts(container, senders)
    stalling = {"sms": Stalling(container, senders["sms"])}

    delivery.deliver(
        container.db,
        [d.id for d in texts],
        stalling,
        container.renderer,
        container.links,
        heartbeat_every=0,
    )

    assert len(fake.requests) == 3  # each once, by the other worker
    assert {d.status for d in s.deliveries(container, alert_id)} == {"sent"}
    for d in texts:
        assert _attempts(container, d.id) == ["lost", "sent"]
