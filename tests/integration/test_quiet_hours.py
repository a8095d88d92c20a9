"""Quiet hours at send time, with a real worker: a standard alert approved inside a contact's
quiet hours waits (`not_before`), is neither offered nor claimed early, and is sent by the
sweeper once due; an urgent alert ignores quiet hours."""

from __future__ import annotations

import subprocess
import time as clock
from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, update

from ldis.bootstrap import Container
from ldis.domain.audience import LONDON, quiet_until
from ldis.domain.principal import Principal
from ldis.domain.roles import Role
from ldis.services import alerts, delivery
from ldis.store.models import Area, Contact, ContactChannel, Delivery, Service, ServiceArea
from tests.integration.cases import decided_report_via
from tests.integration.conftest import People, wait_for

pytestmark = pytest.mark.integration

STUCK_AFTER = timedelta(seconds=120)


def _quiet_now() -> tuple[datetime, datetime]:
    """Quiet hours (UK wall-clock) from an hour ago to two hours ahead, whole minutes."""
    local = datetime.now(LONDON).replace(second=0, microsecond=0)
    return local - timedelta(hours=1), local + timedelta(hours=2)


@pytest.fixture
def contacts(container: Container) -> dict[str, int]:
    """One service in SELBY: Quinn is in quiet hours now, Rae has none."""
    start, end = _quiet_now()
    verified = datetime.now(UTC)
    with container.db.transaction() as session:
        area = Area(code="SELBY", name="Selby")
        service = Service(name="Selby NSP", type="needle_syringe_programme")
        session.add_all([area, service])
        session.flush()
        session.add(ServiceArea(service_id=service.id, area_id=area.id))
        quinn = Contact(
            service_id=service.id,
            name="Quinn",
            email="quinn@example.org",
            quiet_start=start.time(),
            quiet_end=end.time(),
            channels=[ContactChannel(channel="email", verified_at=verified)],
        )
        rae = Contact(
            service_id=service.id,
            name="Rae",
            email="rae@example.org",
            channels=[ContactChannel(channel="email", verified_at=verified)],
        )
        session.add_all([quinn, rae])
        session.flush()
        return {"Quinn": quinn.id, "Rae": rae.id}


class LostQueue:
    """A broker that loses every task: only the sweeper can find the deliveries."""

    def enqueue_fan_out(self, alert_id: int, version: int, *, urgent: bool) -> None:
        return None

    def enqueue_deliveries(
        self, delivery_ids: list[int], *, urgent: bool, countdown: float = 0
    ) -> None:
        return None

    def enqueue_cluster_detection(self, report_ids: list[int]) -> None:
        return None

    def enqueue_notices(self, notice_ids: list[int], *, countdown: float = 0) -> None:
        return None

    def ping(self) -> None:
        return None


def _draft(client: FlaskClient, people: People, priority: str) -> int:
    drafter = people.headers("drafter", Role.panel)
    body = {
        "title": "Xylazine in heroin",
        "priority": priority,
        "areas": ["SELBY"],
        "report_id": decided_report_via(client, drafter, "SELBY"),
        "fields": {"summary": "Wounds reported.", "advice": "Seek wound care early."},
    }
    alert = client.post("/api/v1/alerts", json=body, headers=drafter).get_json()
    assert client.post(f"/api/v1/alerts/{alert['id']}/submit", headers=drafter).status_code == 200
    return int(alert["id"])


def _approve(client: FlaskClient, people: People, priority: str) -> int:
    alert_id = _draft(client, people, priority)
    for name in ("approver1", "approver2"):
        response = client.post(
            f"/api/v1/alerts/{alert_id}/approve",
            headers=people.headers(name, Role.panel),
            json={"otp": people.otp(name)},
        )
        assert response.status_code == 200, response.get_json()
    return alert_id


def _deliveries(container: Container) -> dict[str, Delivery]:
    with container.db.transaction() as session:
        rows = session.execute(select(Delivery, Contact.name).join(Contact)).all()
        session.expunge_all()
        return {name: d for d, name in rows}


def test_a_standard_alert_waits_out_quiet_hours_and_the_sweeper_sends_it(
    client: FlaskClient,
    people: People,
    container: Container,
    contacts: dict[str, int],
    worker: subprocess.Popen[str],
) -> None:
    alert_id = _approve(client, people, "standard")
    found = _deliveries(container)
    quinn, rae = found["Quinn"], found["Rae"]
    with container.db.transaction() as session:
        contact = session.get(Contact, contacts["Quinn"])
        assert contact is not None
        expected = quiet_until(contact.quiet_start, contact.quiet_end, quinn.queued_at)
    assert expected is not None and quinn.not_before == expected
    assert rae.not_before is None

    # Only the due delivery is offered; Rae's is sent, Quinn's waits.
    assert delivery.queued_ids(container.db, alert_id, 1) == [rae.id]
    wait_for(lambda: _deliveries(container)["Rae"].status == "sent")
    clock.sleep(0.5)
    assert _deliveries(container)["Quinn"].status == "queued"
    # A batch that names it anyway (a stale task, a second worker) cannot claim it early,
    # and the sweeper does not offer it before it is due.
    assert delivery.claim(container.db, [quinn.id]) == []
    assert quinn.id not in delivery.sweep(container.db, STUCK_AFTER).get("standard", [])

    # Quiet hours end: the sweeper offers it, and the worker sends it.
    with container.db.transaction() as session:
        session.execute(
            update(Delivery)
            .where(Delivery.id == quinn.id)
            .values(not_before=datetime.now(UTC) - timedelta(seconds=1))
        )
    offered = delivery.sweep(container.db, STUCK_AFTER)
    assert offered == {"standard": [quinn.id]}
    container.queue.enqueue_deliveries(offered["standard"], urgent=False)
    wait_for(lambda: _deliveries(container)["Quinn"].status == "sent")


def test_an_urgent_alert_ignores_quiet_hours(
    client: FlaskClient,
    people: People,
    container: Container,
    contacts: dict[str, int],
    worker: subprocess.Popen[str],
) -> None:
    _approve(client, people, "urgent")
    found = _deliveries(container)
    assert {name: d.not_before for name, d in found.items()} == {"Quinn": None, "Rae": None}
    wait_for(lambda: {d.status for d in _deliveries(container).values()} == {"sent"})


def test_the_sweeper_still_offers_a_due_delivery_left_behind(
    container: Container, client: FlaskClient, people: People, contacts: dict[str, int]
) -> None:
    """Tasks lost: deliveries are offered again after `stuck_after`, counted from when they
    fell due, not from when they were written."""
    alert_id = _draft(client, people, "standard")
    for name in ("approver1", "approver2"):
        people.headers(name, Role.panel)
        approver = Principal(people.ids[name], f"{name}@example.org", frozenset({Role.panel}))
        alerts.approve_alert(container.db, approver, alert_id, required=2, queue=LostQueue())
    found = _deliveries(container)
    long_ago = datetime.now(UTC) - timedelta(hours=3)
    with container.db.transaction() as session:
        session.execute(update(Delivery).values(queued_at=long_ago))
        session.execute(
            update(Delivery)
            .where(Delivery.id == found["Quinn"].id)
            .values(not_before=datetime.now(UTC) - STUCK_AFTER / 2)
        )
    # Rae's was written long ago and never claimed: stuck. Quinn's fell due a minute ago:
    # offered at once, since nothing else would send it.
    assert delivery.sweep(container.db, STUCK_AFTER) == {
        "standard": sorted([found["Rae"].id, found["Quinn"].id])
    }
