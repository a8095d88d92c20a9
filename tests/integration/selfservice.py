"""Helpers for the inbound SMS, preferences and hygiene tests: recipients written straight to
the database, alerts approved and delivered in-process through the real use cases (no broker
round trip), Twilio-signed webhook posts, and an app whose settings carry a Twilio token."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from twilio.request_validator import RequestValidator
from werkzeug.test import TestResponse

from ldis.bootstrap import Container
from ldis.domain.principal import Principal
from ldis.domain.roles import Role
from ldis.services import alerts, delivery, notices
from ldis.services.accounts import create_user
from ldis.services.ports import Sender
from ldis.store.models import (
    Area,
    AuditEvent,
    Contact,
    ContactChannel,
    Delivery,
    Notice,
    OutboxMessage,
    Service,
    ServiceManager,
)
from ldis.web.app import create_app
from tests.integration.cases import decided_report
from workers.channels import build_senders

TWILIO_TOKEN = "twilio-auth-token-for-tests"
INBOUND_PATH = "/webhooks/twilio/inbound"
AREA = "SELBY"
PHONE = "+447700900123"


class RecordingQueue:
    """A TaskQueue that only remembers what it was asked to do."""

    def __init__(self) -> None:
        self.notices: list[int] = []
        self.fan_outs: list[tuple[int, int]] = []

    def enqueue_fan_out(self, alert_id: int, version: int, *, urgent: bool) -> None:
        self.fan_outs.append((alert_id, version))

    def enqueue_deliveries(
        self, delivery_ids: list[int], *, urgent: bool, countdown: float = 0
    ) -> None:
        pass

    def enqueue_cluster_detection(self, report_ids: list[int]) -> None:
        pass

    def enqueue_notices(self, notice_ids: list[int], *, countdown: float = 0) -> None:
        self.notices.extend(notice_ids)

    def ping(self) -> None:
        pass


def twilio_app(container: Container, queue: RecordingQueue) -> Flask:
    """The app as deployed with Twilio: an auth token to check signatures with."""
    settings = container.settings.model_copy(update={"twilio_auth_token": TWILIO_TOKEN})
    return create_app(dataclasses.replace(container, settings=settings, queue=queue))


def local_app(container: Container, queue: RecordingQueue) -> Flask:
    return create_app(dataclasses.replace(container, queue=queue))


def text_in(
    client: FlaskClient,
    body: str,
    *,
    sender: str = PHONE,
    sid: str | None = None,
    signature: str | None = None,
    sign_with: str = TWILIO_TOKEN,
    url: str = "http://ldis.test" + INBOUND_PATH,
) -> TestResponse:
    """Post an inbound text as Twilio does: form fields, signed over the public URL."""
    params = {
        "ToCountry": "GB",
        "SmsMessageSid": sid or "SM" + secrets.token_hex(16),
        "NumMedia": "0",
        "From": sender,
        "To": "+447700900000",
        "Body": body,
        "AccountSid": "AC" + "0" * 32,
        "ApiVersion": "2010-04-01",
    }
    params["MessageSid"] = params["SmsMessageSid"]
    headers = {}
    if signature is None:
        signature = RequestValidator(sign_with).compute_signature(url, params)
    if signature:
        headers["X-Twilio-Signature"] = signature
    return client.post(INBOUND_PATH, data=params, headers=headers)


def user(container: Container, name: str, *roles: Role, password: str | None = None) -> Principal:
    email = f"{name}@example.org"
    user_id = create_user(
        container.db, email=email, name=name, roles=frozenset(roles), password=password
    )
    return Principal(user_id=user_id, email=email, roles=frozenset(roles))


def area(container: Container, code: str = AREA) -> int:
    with container.db.transaction() as session:
        row = Area(code=code, name=code.title())
        session.add(row)
        session.flush()
        return row.id


def service(
    container: Container,
    name: str = "York NSP",
    *,
    area_code: str = AREA,
    managers: tuple[int, ...] = (),
    **values: Any,
) -> int:
    with container.db.transaction() as session:
        found = session.scalar(select(Area).where(Area.code == area_code))
        row = Service(
            name=name,
            type="needle_syringe_programme",
            areas=[found] if found else [],
            managers=[ServiceManager(user_id=uid) for uid in managers],
            **values,
        )
        session.add(row)
        session.flush()
        return row.id


def contact(
    container: Container,
    service_id: int,
    *,
    name: str = "Duty worker",
    phone: str | None = PHONE,
    email: str | None = "duty@example.org",
    verified: bool = True,
) -> int:
    now = datetime.now(UTC)
    with container.db.transaction() as session:
        channels = []
        if phone:
            channels.append(ContactChannel(channel="sms", verified_at=now if verified else None))
        if email:
            channels.append(ContactChannel(channel="email", verified_at=now if verified else None))
        row = Contact(service_id=service_id, name=name, phone=phone, email=email, channels=channels)
        session.add(row)
        session.flush()
        return row.id


def send_alert(
    container: Container,
    *,
    kind: str = "drug_alert",
    area_code: str = AREA,
    title: str = "Nitazenes in fake oxycodone",
    senders: Mapping[str, Sender] | None = None,
    deliver: bool = True,
) -> int:
    """Draft, submit and approve (two others) an urgent alert, then deliver it in-process
    (or leave its deliveries queued, for `deliver_alert` later)."""
    tag = secrets.token_hex(3)
    drafter = user(container, f"drafter-{tag}", Role.panel)
    queue = RecordingQueue()
    body = {
        "title": title,
        "template": "professional",
        "priority": "urgent",
        "kind": kind,
        "areas": [area_code],
        "report_id": decided_report(container, drafter, area_code),
        "fields": {
            "summary": "Green tablets marked OC 80 contain metonitazene.",
            "advice": "Carry extra naloxone.",
        },
    }
    alert_id = alerts.draft_alert(container.db, drafter, body, templates=container.templates())[
        "id"
    ]
    alerts.submit_alert(container.db, drafter, alert_id)
    for n in (1, 2):
        approver = user(container, f"approver{n}-{tag}", Role.panel)
        alerts.approve_alert(container.db, approver, alert_id, required=2, queue=queue)
    if deliver:
        deliver_alert(container, alert_id, senders)
    return int(alert_id)


def deliver_alert(
    container: Container, alert_id: int, senders: Mapping[str, Sender] | None = None
) -> None:
    """What the worker's fan-out and batch tasks do, in this process."""
    ids = delivery.queued_ids(container.db, alert_id, 1)
    if senders is None:
        senders = build_senders(container.settings, container.db)
    delivery.deliver(container.db, ids, senders, container.renderer, container.links)


def send_notices(container: Container, ids: list[int] | None = None) -> list[OutboxMessage]:
    """Send queued notices through the local outbox; return every outbox message for them."""
    with container.db.transaction() as session:
        queued = list(session.scalars(select(Notice.id).where(Notice.status == "queued")))
    senders = build_senders(container.settings, container.db)
    notices.send_notices(container.db, ids if ids is not None else queued, senders)
    with container.db.transaction() as session:
        rows = list(
            session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.notice_id.is_not(None))
                .order_by(OutboxMessage.id)
            )
        )
        session.expunge_all()
        return rows


def outbox(container: Container, alert_id: int | None = None) -> list[OutboxMessage]:
    with container.db.transaction() as session:
        query = select(OutboxMessage).where(OutboxMessage.delivery_id.is_not(None))
        if alert_id is not None:
            query = query.join(Delivery, Delivery.id == OutboxMessage.delivery_id).where(
                Delivery.alert_id == alert_id
            )
        rows = list(session.scalars(query.order_by(OutboxMessage.id)))
        session.expunge_all()
        return rows


def deliveries(container: Container, alert_id: int) -> list[Delivery]:
    with container.db.transaction() as session:
        rows = list(
            session.scalars(
                select(Delivery).where(Delivery.alert_id == alert_id).order_by(Delivery.id)
            )
        )
        session.expunge_all()
        return rows


def channel(container: Container, contact_id: int, name: str) -> ContactChannel:
    with container.db.transaction() as session:
        row = session.get(ContactChannel, (contact_id, name))
        assert row is not None
        session.expunge(row)
        return row


def get_contact(container: Container, contact_id: int) -> Contact:
    with container.db.transaction() as session:
        row = session.get(Contact, contact_id)
        assert row is not None
        _ = row.channels, row.unsubscriptions
        session.expunge_all()
        return row


def audit_events(container: Container, action: str) -> list[AuditEvent]:
    with container.db.transaction() as session:
        rows = list(
            session.scalars(
                select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
            )
        )
        session.expunge_all()
        return rows


def notices_for(container: Container, purpose: str) -> list[Notice]:
    with container.db.transaction() as session:
        rows = list(
            session.scalars(select(Notice).where(Notice.purpose == purpose).order_by(Notice.id))
        )
        session.expunge_all()
        return rows
