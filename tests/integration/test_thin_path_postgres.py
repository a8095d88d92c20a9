"""The thin path against PostgreSQL + Redis + a real Celery worker process."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from ldis.bootstrap import Container
from ldis.domain.roles import Role
from ldis.store.models import AuditEvent, Delivery, OutboxMessage
from tests.integration.conftest import People, wait_for
from tests.integration.thin_path import run_thin_path

pytestmark = pytest.mark.integration


def call_with(client: FlaskClient) -> Any:
    def call(method: str, path: str, headers: dict[str, str], body: Any = None) -> tuple[int, Any]:
        response = client.open(path, method=method, headers=headers, json=body)
        return response.status_code, response.get_json()

    return call


def thin_path_with(client: FlaskClient, people: People) -> dict[str, Any]:
    return run_thin_path(
        call_with(client),
        admin=people.headers("admin", Role.admin),
        reporter=people.headers("reporter", Role.reporter),
        drafter=people.headers("drafter", Role.panel),
        approvers=[
            people.headers("approver1", Role.panel),
            people.headers("approver2", Role.panel),
        ],
        wait_for=wait_for,
        otp=people.otp_for,
    )


def test_thin_path_sends_each_message_once_through_the_outbox(
    client: FlaskClient, people: People, container: Container, worker: subprocess.Popen[str]
) -> None:
    view = thin_path_with(client, people)
    assert view["status"] == "approved" and view["approvals"] == 2

    with container.db.transaction() as session:
        messages = session.scalars(select(OutboxMessage).order_by(OutboxMessage.channel)).all()
        assert [m.channel for m in messages] == ["email", "sms"]
        email, sms = messages
        assert email.recipient == "duty@example.org" and sms.recipient == "+447700900123"
        assert "Nitazenes in fake oxycodone" in (email.subject or "")
        assert "metonitazene" in sms.text_body and "http://ldis.test/ack/" in sms.text_body
        assert email.html_body and "<h1" in email.html_body
        deliveries = session.scalars(select(Delivery)).all()
        assert {d.provider_id for d in deliveries} == {f"outbox-{m.id}" for m in messages}
        actions = set(session.scalars(select(AuditEvent.action)))
        assert {"reports.filed", "alert.drafted", "alert.submitted", "alert.approved"} <= actions

    # The outbox page shows them to a person on this machine.
    page = client.get("/outbox", environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert page.status_code == 200 and b"duty@example.org" in page.data
    remote = client.get("/outbox", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert remote.status_code == 403

    # Acknowledging by the link in the message counts once, however often it is clicked.
    ack_path = sms.text_body.split("http://ldis.test", 1)[1].split()[0]
    assert client.get(ack_path).status_code == 200
    assert client.get(ack_path).status_code == 200
    alert_id = view["id"]
    counts = client.get(f"/api/v1/alerts/{alert_id}", headers=people.headers("drafter")).get_json()
    assert counts["deliveries"]["acknowledged"] == 1


def test_a_repeated_batch_task_sends_nothing_twice(
    client: FlaskClient, people: People, container: Container, worker: subprocess.Popen[str]
) -> None:
    view = thin_path_with(client, people)
    with container.db.transaction() as session:
        ids = list(session.scalars(select(Delivery.id)))
    # A broker redelivery or a sweeper race hands the same work to a worker again.
    log = container.settings.instance_path / "worker.log"
    done_before = log.read_text().count("ldis.deliver_batch")
    container.queue.enqueue_fan_out(view["id"], 1, urgent=True)
    container.queue.enqueue_deliveries(ids, urgent=False)
    # fan-out finds nothing queued (0 batches); the repeated batch is received and finishes.
    wait_for(lambda: log.read_text().count("ldis.deliver_batch") >= done_before + 2, timeout=20)
    wait_for(lambda: f"fan-out alert={view['id']} v1 deliveries=0" in log.read_text(), timeout=20)
    with container.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 2
        assert list(session.scalars(select(Delivery.attempts))) == [1, 1]
