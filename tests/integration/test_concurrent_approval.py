"""Two panel members clicking approve at the same moment cannot both be 'the last one'."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from ldis.bootstrap import Container
from ldis.domain.errors import Conflict
from ldis.domain.principal import Principal
from ldis.domain.roles import Role
from ldis.services import alerts, areas, recipients
from ldis.services.accounts import create_user
from tests.integration.cases import decided_report
from tests.integration.thin_path import ALERT, AREA

pytestmark = pytest.mark.integration


class RecordingQueue:
    def __init__(self) -> None:
        self.fan_outs: list[tuple[int, int]] = []

    def enqueue_fan_out(self, alert_id: int, version: int, *, urgent: bool) -> None:
        self.fan_outs.append((alert_id, version))

    def enqueue_deliveries(
        self, delivery_ids: list[int], *, urgent: bool, countdown: float = 0
    ) -> None:
        raise AssertionError("approval never enqueues deliveries itself")

    def enqueue_cluster_detection(self, report_ids: list[int]) -> None:
        raise AssertionError("approval never detects clusters")

    def enqueue_notices(self, notice_ids: list[int], *, countdown: float = 0) -> None:
        raise AssertionError("approval sends no notices")

    def ping(self) -> None:
        return None


def person(container: Container, name: str, *roles: Role) -> Principal:
    user_id = create_user(
        container.db, email=f"{name}@example.org", name=name, roles=frozenset(roles)
    )
    return Principal(user_id=user_id, email=f"{name}@example.org", roles=frozenset(roles))


@pytest.mark.parametrize("required", [1, 2])
def test_simultaneous_approvals_write_deliveries_once(container: Container, required: int) -> None:
    admin = person(container, "admin", Role.admin)
    areas.create_area(container.db, admin, {"code": AREA, "name": "Selby"})
    service = recipients.create_service(
        container.db, admin, {"name": "S", "type": "pharmacy", "areas": [AREA]}
    )
    for n in range(5):
        recipients.add_contact(
            container.db,
            admin,
            service["id"],
            {
                "name": f"C{n}",
                "email": f"c{n}@example.org",
                "channels": ["email"],
                "verified": True,
            },
            sending=container.sending(),
        )
    drafter = person(container, "drafter", Role.panel)
    approvers = [person(container, f"approver{n}", Role.panel) for n in range(required + 1)]
    body = {**ALERT, "report_id": decided_report(container, drafter, AREA)}
    alert = alerts.draft_alert(container.db, drafter, body, templates=container.templates())
    alerts.submit_alert(container.db, drafter, alert["id"])
    for approver in approvers[: required - 1]:
        alerts.approve_alert(
            container.db, approver, alert["id"], required=required, queue=RecordingQueue()
        )

    racers = approvers[required - 1 :]
    queue = RecordingQueue()
    barrier = threading.Barrier(len(racers))
    outcomes: list[str] = []

    def approve(who: Principal) -> None:
        barrier.wait()
        try:
            view = alerts.approve_alert(
                container.db, who, alert["id"], required=required, queue=queue
            )
            outcomes.append(view["status"])
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=approve, args=(who,)) for who in racers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["approved", "conflict"]
    assert queue.fan_outs == [(alert["id"], 1)]
    from ldis.store.models import Delivery

    with container.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Delivery)) == 5
