"""Escalation of urgent alerts nobody at a service acknowledged: to the service's backup
contacts after LDIS_ESCALATE_AFTER_MINUTES, then to the panel with a phone list after as
long again. Time is passed by giving the use case `now`, never by sleeping. Each stage
happens once per (alert, version, service), even with two runs at once."""

from __future__ import annotations

import secrets
import subprocess
import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from ldis.bootstrap import Container
from ldis.domain.roles import Role
from ldis.services import alerts, delivery, escalation
from ldis.store.models import (
    Alert,
    AlertVersion,
    Contact,
    ContactChannel,
    Delivery,
    Escalation,
    Notice,
    OutboxMessage,
    User,
    UserRole,
)
from tests.integration import selfservice as s
from tests.integration.conftest import wait_for
from workers.celery_factory import URGENT_QUEUE, make_celery
from workers.channels import build_senders

pytestmark = pytest.mark.integration
AFTER = timedelta(minutes=30)
YORK_PRIMARY = "+447700900101"
YORK_BACKUP = "+447700900102"
SELBY_PRIMARY = "+447700900201"


class Queue(s.RecordingQueue):
    """Also remembers the deliveries it was asked to send."""

    def __init__(self) -> None:
        super().__init__()
        self.deliveries: list[int] = []

    def enqueue_deliveries(
        self, delivery_ids: list[int], *, urgent: bool, countdown: float = 0
    ) -> None:
        assert urgent, "escalation is for urgent alerts: the urgent queue"
        self.deliveries.extend(delivery_ids)


def _contact(
    container: Container,
    service_id: int,
    name: str,
    phone: str | None,
    email: str | None,
    role: str = "primary",
) -> int:
    contact_id = s.contact(container, service_id, name=name, phone=phone, email=email)
    with container.db.transaction() as session:
        session.execute(update(Contact).where(Contact.id == contact_id).values(role=role))
    return contact_id


@pytest.fixture
def world(container: Container) -> dict[str, int]:
    """York NSP: a primary and a backup (text only); Selby pharmacy: a primary only."""
    s.area(container)
    york = s.service(container, "York NSP")
    selby = s.service(container, "Selby pharmacy")
    return {
        "york": york,
        "selby": selby,
        "york_primary": _contact(container, york, "Ann", YORK_PRIMARY, "ann@example.org"),
        "york_backup": _contact(container, york, "Bob", YORK_BACKUP, None, role="backup"),
        "selby_primary": _contact(container, selby, "Cat", SELBY_PRIMARY, "cat@example.org"),
    }


def _approved_at(container: Container, alert_id: int, version: int = 1) -> datetime:
    with container.db.transaction() as session:
        moment = session.scalar(
            select(AlertVersion.approved_at).where(
                AlertVersion.alert_id == alert_id, AlertVersion.version == version
            )
        )
    assert moment is not None
    return moment


def _run(container: Container, now: datetime) -> escalation.Escalated:
    return escalation.escalate(container.db, after=AFTER, links=container.links, now=now)


def _stages(container: Container, alert_id: int) -> set[tuple[int, str, int]]:
    """{(service, stage, messages)}"""
    with container.db.transaction() as session:
        rows = session.execute(
            select(Escalation.service_id, Escalation.stage, Escalation.messages).where(
                Escalation.alert_id == alert_id
            )
        ).all()
    return {(r[0], r[1], r[2]) for r in rows}


def _escalation_notices(container: Container) -> list[Notice]:
    return s.notices_for(container, "alert_escalation")


def _panel_emails(container: Container) -> list[str]:
    with container.db.transaction() as session:
        return list(
            session.scalars(
                select(User.email)
                .join(UserRole, UserRole.user_id == User.id)
                .where(UserRole.role == "panel")
                .order_by(User.email)
            )
        )


def test_nothing_happens_before_the_time_is_up(container: Container, world: dict[str, int]) -> None:
    alert_id = s.send_alert(container)
    t0 = _approved_at(container, alert_id)
    result = _run(container, t0 + AFTER - timedelta(seconds=1))
    assert result.stages == [] and result.notice_ids == [] and result.delivery_ids == []
    assert _stages(container, alert_id) == set()


def test_backups_then_the_panel_with_a_phone_list(
    container: Container, world: dict[str, int]
) -> None:
    alert_id = s.send_alert(container)
    t0 = _approved_at(container, alert_id)
    york, selby = world["york"], world["selby"]
    panel = _panel_emails(container)
    assert len(panel) == 3  # the drafter and two approvers

    # Stage 1: York's backup already had the alert, so it is reminded on the same channel,
    # with the link that acknowledges its own message. Selby has no backup to try: it goes
    # to the panel at once.
    first = _run(container, t0 + AFTER + timedelta(minutes=1))
    assert sorted(first.stages) == sorted(
        [
            (alert_id, 1, york, "backup"),
            (alert_id, 1, selby, "backup"),
            (alert_id, 1, selby, "panel"),
        ]
    )
    assert first.delivery_ids == [], "the backup got this version in the first wave"
    assert _stages(container, alert_id) == {
        (york, "backup", 1),
        (selby, "backup", 0),
        (selby, "panel", 3),
    }
    notices = _escalation_notices(container)
    [reminder] = [n for n in notices if n.channel == "sms"]
    assert reminder.recipient == YORK_BACKUP
    backup_text = next(
        d
        for d in s.deliveries(container, alert_id)
        if d.contact_id == world["york_backup"] and d.channel == "sms"
    )
    assert container.links.ack_url(backup_text.id) in reminder.text_body
    assert "York NSP" in reminder.text_body and f"LDIS-{alert_id}-v1" in reminder.text_body
    panel_notices = [n for n in notices if n.channel == "email"]
    assert sorted(n.recipient for n in panel_notices) == panel
    body = panel_notices[0].text_body
    assert "Selby pharmacy" in body and "07700 900201" in body and "Cat (primary)" in body
    assert "Backup contacts: none to try" in body
    assert "York NSP" not in body, "York's backups still have their time"
    assert f"http://ldis.test/alerts/{alert_id}/deliveries" in body
    assert panel_notices[0].subject == (
        f"URGENT: 1 service has not acknowledged LDIS-{alert_id}-v1: Nitazenes in fake oxycodone"
    )
    assert sorted(first.notice_ids) == sorted(n.id for n in notices)

    # Not yet York's turn for the panel: its backups get as long again.
    assert _run(container, t0 + AFTER * 2).stages == []

    second = _run(container, t0 + AFTER * 2 + timedelta(minutes=2))
    assert second.stages == [(alert_id, 1, york, "panel")]
    york_notices = [n for n in _escalation_notices(container) if n.id in second.notice_ids]
    assert sorted(n.recipient for n in york_notices) == panel
    york_body = york_notices[0].text_body
    assert "York NSP" in york_body and "Selby pharmacy" not in york_body
    assert "Ann (primary): 07700 900101" in york_body
    assert "Bob (backup): 07700 900102" in york_body
    assert york_body.index("Ann (primary)") < york_body.index("Bob (backup)")
    assert "Backup contacts: 1 message sent" in york_body

    events = s.audit_events(container, "alert.escalated")
    assert sorted((e.detail["service_id"], e.detail["stage"]) for e in events) == sorted(
        [(york, "backup"), (selby, "backup"), (selby, "panel"), (york, "panel")]
    )
    assert all(e.entity_id == alert_id and e.actor_id is None for e in events)
    assert all("7700" not in str(e.detail) for e in events), "no phone numbers in the audit"

    # Done: every stage happened once; later runs change nothing.
    for later in (AFTER * 3, AFTER * 10):
        assert _run(container, t0 + later).stages == []
    assert len(_escalation_notices(container)) == len(notices) + 3
    assert len(s.audit_events(container, "alert.escalated")) == 4


def test_a_service_that_acknowledged_is_left_alone(
    container: Container, client: FlaskClient, world: dict[str, int]
) -> None:
    alert_id = s.send_alert(container)
    t0 = _approved_at(container, alert_id)
    [ann] = [
        d
        for d in s.deliveries(container, alert_id)
        if d.contact_id == world["york_primary"] and d.channel == "email"
    ]
    assert client.get("/ack/" + container.links.ack_token(ann.id)).status_code == 200
    result = _run(container, t0 + AFTER * 3)
    assert {stage[2] for stage in result.stages} == {world["selby"]}
    assert not any(n.recipient == YORK_BACKUP for n in _escalation_notices(container))


def test_a_backup_acknowledging_the_reminder_stops_the_panel_stage(
    container: Container, world: dict[str, int]
) -> None:
    twilio = s.twilio_app(container, s.RecordingQueue()).test_client()
    alert_id = s.send_alert(container)
    t0 = _approved_at(container, alert_id)
    _run(container, t0 + AFTER)
    # The backup replies ACK to the reminder text.
    response = s.text_in(twilio, "ACK", sender=YORK_BACKUP)
    assert f"LDIS-{alert_id}-v1" in response.get_data(as_text=True)
    result = _run(container, t0 + AFTER * 3)
    assert (alert_id, 1, world["york"], "panel") not in result.stages
    assert (world["york"], "panel") not in {
        (sid, stage) for sid, stage, _ in _stages(container, alert_id)
    }


def test_a_backup_who_missed_the_first_wave_gets_the_alert_itself(
    container: Container, world: dict[str, int]
) -> None:
    alert_id = s.send_alert(container)
    t0 = _approved_at(container, alert_id)
    # Added after the alert went: the first wave did not include them.
    late = _contact(
        container, world["selby"], "Dee", "+447700900202", "dee@example.org", role="backup"
    )
    queue = Queue()
    result = _run(container, t0 + AFTER + timedelta(minutes=1))
    escalation.enqueue(queue, result)
    new = [d for d in s.deliveries(container, alert_id) if d.contact_id == late]
    assert sorted(d.channel for d in new) == ["email", "sms"]
    assert all(d.version == 1 and d.status == "queued" and d.priority == "urgent" for d in new)
    assert sorted(queue.deliveries) == sorted(d.id for d in new) == sorted(result.delivery_ids)
    assert (world["selby"], "backup", 2) in _stages(container, alert_id)
    assert not any(
        s_[0] == world["selby"] and s_[1] == "panel" for s_ in _stages(container, alert_id)
    )

    # Sent as the alert itself (same version, same words), with its own ack link.
    delivery.deliver(
        container.db,
        queue.deliveries,
        build_senders(container.settings, container.db),
        container.renderer,
        container.links,
    )
    texts = [m for m in s.outbox(container, alert_id) if m.recipient == "+447700900202"]
    assert len(texts) == 1 and "metonitazene" in texts[0].text_body
    assert f"LDIS-{alert_id}-v1" in texts[0].text_body

    # A repeat writes nothing more: the stage is taken and the unique key holds.
    assert _run(container, t0 + AFTER + timedelta(minutes=2)).delivery_ids == []


def test_an_unwilling_backup_is_not_tried(container: Container, world: dict[str, int]) -> None:
    """The audience rules apply: an opted-out or unconfirmed channel gets nothing."""
    alert_id = s.send_alert(container)
    t0 = _approved_at(container, alert_id)
    late = _contact(
        container, world["selby"], "Eve", "+447700900203", "eve@example.org", role="backup"
    )
    with container.db.transaction() as session:
        session.execute(
            update(ContactChannel)
            .where(ContactChannel.contact_id == late, ContactChannel.channel == "sms")
            .values(opted_out_at=t0)
        )
        session.execute(
            update(ContactChannel)
            .where(ContactChannel.contact_id == late, ContactChannel.channel == "email")
            .values(verified_at=None)
        )
    result = _run(container, t0 + AFTER)
    assert result.delivery_ids == []
    assert (world["selby"], "backup", 0) in _stages(container, alert_id)


def _version_priority(container: Container, alert_id: int, priority: str) -> None:
    with container.db.transaction() as session:
        session.execute(
            update(AlertVersion).where(AlertVersion.alert_id == alert_id).values(priority=priority)
        )


def test_standard_expired_withdrawn_and_old_alerts_do_not_escalate(
    container: Container, world: dict[str, int]
) -> None:
    standard = s.send_alert(container, title="Standard")
    _version_priority(container, standard, "standard")
    expiring = s.send_alert(container, title="Expiring")
    withdrawn = s.send_alert(container, title="Withdrawn")
    t0 = max(_approved_at(container, a) for a in (standard, expiring, withdrawn))
    with container.db.transaction() as session:
        session.execute(update(Alert).where(Alert.id == expiring).values(expires_at=t0 + AFTER))
        session.execute(update(Alert).where(Alert.id == withdrawn).values(status="withdrawn"))
    assert _run(container, t0 + AFTER + timedelta(minutes=1)).stages == []

    old = s.send_alert(container, title="Old")
    t_old = _approved_at(container, old)
    assert _run(container, t_old + escalation.WINDOW + timedelta(minutes=1)).stages == []
    assert _stages(container, old) == set()


def test_two_runs_at_once_do_each_stage_once(container: Container, world: dict[str, int]) -> None:
    alert_id = s.send_alert(container)
    t0 = _approved_at(container, alert_id)
    results: list[escalation.Escalated] = []
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def run() -> None:
        try:
            start.wait()
            results.append(_run(container, t0 + AFTER + timedelta(minutes=1)))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    stages = [stage for result in results for stage in result.stages]
    assert sorted(stages) == sorted(
        [
            (alert_id, 1, world["york"], "backup"),
            (alert_id, 1, world["selby"], "backup"),
            (alert_id, 1, world["selby"], "panel"),
        ]
    )
    notice_ids = [n for result in results for n in result.notice_ids]
    assert len(notice_ids) == len(set(notice_ids)) == len(_escalation_notices(container)) == 4
    with container.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Escalation)) == 3


def _send_exercise(container: Container, participants: list[int]) -> int:
    tag = secrets.token_hex(3)
    drafter = s.user(container, f"ex-drafter-{tag}", Role.panel)
    body: dict[str, Any] = {
        "title": "Exercise Nightingale",
        "template": "professional",
        "priority": "urgent",
        "areas": [s.AREA],
        "exercise": True,
        "participants": participants,
        "fields": {"summary": "A rehearsal of a nitazene alert.", "advice": "Carry naloxone."},
    }
    alert_id = int(
        alerts.draft_alert(container.db, drafter, body, templates=container.templates())["id"]
    )
    alerts.submit_alert(container.db, drafter, alert_id)
    for n in (1, 2):
        approver = s.user(container, f"ex-approver{n}-{tag}", Role.panel)
        alerts.approve_alert(container.db, approver, alert_id, required=2, queue=Queue())
    s.deliver_alert(container, alert_id)
    return alert_id


def test_an_exercise_rehearses_escalation_and_says_so(
    container: Container, world: dict[str, int]
) -> None:
    alert_id = _send_exercise(container, [world["york"]])
    t0 = _approved_at(container, alert_id)
    result = _run(container, t0 + AFTER)
    assert result.stages == [(alert_id, 1, world["york"], "backup")], "participants only"
    [reminder] = _escalation_notices(container)
    assert reminder.text_body.startswith("EXERCISE EXERCISE EXERCISE")
    assert reminder.text_body.rstrip().endswith("EXERCISE ENDS")

    _run(container, t0 + AFTER * 2)
    panel = [n for n in _escalation_notices(container) if n.channel == "email"]
    assert panel and all(
        n.subject and n.subject.startswith("EXERCISE EXERCISE EXERCISE: URGENT") for n in panel
    )
    assert all(n.text_body.startswith("EXERCISE EXERCISE EXERCISE") for n in panel)


def test_the_scheduled_task_escalates_and_the_worker_sends_the_reminder(
    container: Container, world: dict[str, int], worker: subprocess.Popen[str]
) -> None:
    """The real task in the real worker, with the alert's approval moved back in time."""
    alert_id = s.send_alert(container)
    with container.db.transaction() as session:
        moved = _approved_at(container, alert_id) - AFTER - timedelta(minutes=1)
        session.execute(
            update(AlertVersion).where(AlertVersion.alert_id == alert_id).values(approved_at=moved)
        )
    celery = make_celery(container.settings)
    celery.send_task("ldis.escalate_alerts", queue=URGENT_QUEUE)

    def reminded() -> list[OutboxMessage]:
        with container.db.transaction() as session:
            rows = list(
                session.scalars(
                    select(OutboxMessage)
                    .where(OutboxMessage.recipient == YORK_BACKUP)
                    .where(OutboxMessage.notice_id.is_not(None))
                )
            )
            session.expunge_all()
            return rows

    [message] = wait_for(reminded, timeout=30)
    assert f"LDIS-{alert_id}-v1" in message.text_body and "/ack/" in message.text_body
    assert {(sid, stage) for sid, stage, _ in _stages(container, alert_id)} >= {
        (world["york"], "backup"),
        (world["selby"], "panel"),
    }
    # The scheduler's next minute finds nothing left to do at this time.
    assert _run(container, moved + AFTER + timedelta(minutes=2)).stages == []
    with container.db.transaction() as session:
        assert (
            session.scalar(
                select(func.count()).select_from(Delivery).where(Delivery.alert_id == alert_id)
            )
            == 5
        )
