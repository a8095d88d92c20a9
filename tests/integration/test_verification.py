"""Verifying a contact's channels against PostgreSQL: a code by SMS (typed in, or replied),
a signed link by e-mail through the public page, attempt limits, the resend rate limit,
and that an unverified channel receives nothing."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from ldis.bootstrap import Container
from ldis.domain.principal import Principal
from ldis.domain.roles import Role
from ldis.domain.verification import MAX_ATTEMPTS, code_hash
from ldis.services import alerts, email_links, verification
from ldis.services.accounts import create_user
from ldis.store.models import AuditEvent, ContactChannel, Delivery, Notice, OutboxMessage
from tests.integration.cases import decided_report
from tests.integration.conftest import People, wait_for
from tests.integration.test_contacts_api import PERSON
from tests.integration.test_services_api import (  # noqa: F401  (notice_queue: autouse)
    NoticeQueue,
    add_service,
    notice_queue,
)
from tests.integration.thin_path import ALERT
from tests.integration.webpages import csrf, text

pytestmark = pytest.mark.integration

API = "/api/v1"
URL = re.compile(r"http://ldis\.test/verify/(\S+)")


@pytest.fixture
def admin(client: FlaskClient, people: People) -> dict[str, str]:
    headers = people.headers("admin", Role.admin)
    assert (
        client.post(
            f"{API}/areas", json={"code": "SELBY", "name": "Selby"}, headers=headers
        ).status_code
        == 201
    )
    return headers


@pytest.fixture
def service(client: FlaskClient, admin: dict[str, str]) -> dict[str, Any]:
    return add_service(client, admin, name="Selby NSP", areas=["SELBY"])


def add(client: FlaskClient, admin: dict[str, str], service_id: int, **body: Any) -> dict[str, Any]:
    response = client.post(
        f"{API}/services/{service_id}/contacts", json={**PERSON, **body}, headers=admin
    )
    assert response.status_code == 201, response.get_json()
    view: dict[str, Any] = response.get_json()
    return view


def channel(container: Container, contact_id: int, name: str) -> ContactChannel:
    with container.db.transaction() as session:
        row = session.get(ContactChannel, (contact_id, name))
        assert row is not None
        session.expunge(row)
        return row


def notices_for(container: Container, purpose: str) -> list[Notice]:
    with container.db.transaction() as session:
        found = list(
            session.scalars(select(Notice).where(Notice.purpose == purpose).order_by(Notice.id))
        )
        session.expunge_all()
        return found


def set_code(container: Container, contact_id: int, code: str, **values: Any) -> None:
    """A known pending code, as if it had just been sent."""
    with container.db.transaction() as session:
        session.execute(
            update(ContactChannel)
            .where(ContactChannel.contact_id == contact_id, ContactChannel.channel == "sms")
            .values(
                {
                    "verification_hash": code_hash(
                        container.settings.secret(), contact_id, "sms", code
                    ),
                    "verification_sent_at": datetime.now(UTC),
                    "verification_attempts": 0,
                    "verified_at": None,
                    **values,
                }
            )
        )


def test_a_changed_number_is_verified_again_with_a_code_sent_by_the_worker(
    client: FlaskClient,
    admin: dict[str, str],
    service: dict[str, Any],
    container: Container,
    worker: subprocess.Popen[str],
) -> None:
    contact = add(client, admin, service["id"], verified=True)
    assert channel(container, contact["id"], "sms").verified_at is not None

    changed = client.patch(
        f"{API}/contacts/{contact['id']}", json={"phone": "07700 900456"}, headers=admin
    )
    assert changed.status_code == 200
    view = changed.get_json()
    assert view["channel_status"]["sms"]["status"] == "pending"
    assert view["channel_status"]["email"]["status"] == "verified", "the e-mail did not change"
    [notice] = notices_for(container, "verify_sms")
    assert notice.recipient == "+447700900456"
    assert notice.dedupe_key.startswith(f"verify:{contact['id']}:sms:")

    # The worker sends it through the configured channel: the local outbox here.
    message = wait_for(lambda: _outbox(container, notice.id))
    assert message.recipient == "+447700900456"
    assert "for Selby NSP drug alerts is" in message.text_body
    assert "Reply STOP to opt out." in message.text_body
    code = re.search(r"\b(\d{6})\b", message.text_body)
    assert code is not None
    row = channel(container, contact["id"], "sms")
    assert row.verification_hash == code_hash(
        container.settings.secret(), contact["id"], "sms", code.group(1)
    )
    assert code.group(1) not in str(row.verification_hash), "only a hash is stored"

    confirm = f"{API}/contacts/{contact['id']}/verification/sms/confirm"
    wrong = "000000" if code.group(1) != "000000" else "111111"
    refused = client.post(confirm, json={"code": wrong}, headers=admin)
    assert refused.status_code == 422
    assert refused.get_json()["fields"] == {
        "code": f"is not the code we sent; {MAX_ATTEMPTS - 1} tries left"
    }
    malformed = client.post(confirm, json={"code": "12ab"}, headers=admin)
    assert malformed.status_code == 422 and "6-digit" in malformed.get_json()["fields"]["code"]
    done = client.post(
        confirm, json={"code": f" {code.group(1)[:3]} {code.group(1)[3:]} "}, headers=admin
    )
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["status"] == "verified"
    assert client.post(confirm, json={"code": code.group(1)}, headers=admin).status_code == 409
    row = channel(container, contact["id"], "sms")
    assert row.verified_at is not None and row.verification_hash is None


def _outbox(container: Container, notice_id: int) -> OutboxMessage | None:
    with container.db.transaction() as session:
        message = session.scalar(select(OutboxMessage).where(OutboxMessage.notice_id == notice_id))
        if message is not None:
            session.expunge(message)
        return message


def test_wrong_codes_are_counted_and_void_the_code(
    client: FlaskClient, admin: dict[str, str], service: dict[str, Any], container: Container
) -> None:
    contact = add(client, admin, service["id"])
    set_code(container, contact["id"], "123456")
    for _ in range(MAX_ATTEMPTS):
        assert (
            verification.confirm_code(
                container.db, contact["id"], "sms", "654321", secret=container.settings.secret()
            )
            is False
        )
    row = channel(container, contact["id"], "sms")
    assert row.verification_attempts == MAX_ATTEMPTS and row.verification_hash is None
    # Even the right code no longer works: a new one must be sent.
    assert (
        verification.confirm_code(
            container.db, contact["id"], "sms", "123456", secret=container.settings.secret()
        )
        is False
    )
    response = client.post(
        f"{API}/contacts/{contact['id']}/verification/sms/confirm",
        json={"code": "123456"},
        headers=admin,
    )
    assert (
        response.status_code == 422 and "send a new code" in response.get_json()["fields"]["code"]
    )

    set_code(container, contact["id"], "123456", verification_attempts=MAX_ATTEMPTS - 1)
    assert (
        verification.confirm_code(
            container.db, contact["id"], "sms", "123456", secret=container.settings.secret()
        )
        is True
    )
    assert (
        verification.confirm_code(
            container.db, contact["id"], "sms", "123456", secret=container.settings.secret()
        )
        is False
    )

    expired = add(
        client, admin, service["id"], name="B", email="b@example.org", phone="07700 900222"
    )
    set_code(container, expired["id"], "222222")
    with container.db.transaction() as session:
        session.execute(
            update(ContactChannel)
            .where(ContactChannel.contact_id == expired["id"])
            .values(verification_sent_at=datetime.now(UTC) - timedelta(hours=25))
        )
    assert (
        verification.confirm_code(
            container.db, expired["id"], "sms", "222222", secret=container.settings.secret()
        )
        is False
    )


def test_resend_is_limited_to_one_a_minute_per_channel(
    client: FlaskClient, admin: dict[str, str], service: dict[str, Any], container: Container
) -> None:
    contact = add(client, admin, service["id"])
    path = f"{API}/contacts/{contact['id']}/verification"
    too_soon = client.post(f"{path}/sms", headers=admin)
    assert too_soon.status_code == 409
    assert re.search(r"wait \d+ seconds", too_soon.get_json()["message"])
    assert len(notices_for(container, "verify_sms")) == 1

    with container.db.transaction() as session:
        session.execute(
            update(ContactChannel)
            .where(ContactChannel.contact_id == contact["id"], ContactChannel.channel == "sms")
            .values(verification_sent_at=datetime.now(UTC) - timedelta(seconds=61))
        )
    first_hash = channel(container, contact["id"], "sms").verification_hash
    again = client.post(f"{path}/sms", headers=admin)
    assert again.status_code == 200, again.get_json()
    assert again.get_json()["status"] == "pending" and again.get_json()["channel"] == "sms"
    assert len(notices_for(container, "verify_sms")) == 2
    assert channel(container, contact["id"], "sms").verification_hash != first_hash
    assert client.post(f"{path}/sms", headers=admin).status_code == 409, "the limit applies again"
    # The e-mail channel has its own minute.
    assert client.post(f"{path}/email", headers=admin).status_code == 409
    assert client.post(f"{path}/fax", headers=admin).status_code == 404
    with container.db.transaction() as session:
        sent = session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "contact.verification_sent")
        )
        session.execute(
            update(ContactChannel).values(opted_out_at=datetime.now(UTC), verification_sent_at=None)
        )
    assert sent == 1
    stopped = client.post(f"{path}/sms", headers=admin)
    assert stopped.status_code == 409 and "STOP" in stopped.get_json()["message"]

    verified = add(
        client,
        admin,
        service["id"],
        name="V",
        email="v@example.org",
        phone="07700 900333",
        verified=True,
    )
    already = client.post(f"{API}/contacts/{verified['id']}/verification/email", headers=admin)
    assert already.status_code == 409


def test_a_code_replied_by_text_verifies_that_number_wherever_it_is_pending(
    client: FlaskClient, admin: dict[str, str], service: dict[str, Any], container: Container
) -> None:
    other = add_service(client, admin, name="Selby hostel", type="hostel", areas=["SELBY"])
    first = add(client, admin, service["id"])
    second = add(client, admin, other["id"])
    set_code(container, first["id"], "111111")
    set_code(container, second["id"], "222222")
    with container.db.transaction() as session:
        assert (
            verification.confirm_sms_reply(
                session, "+447700900123", "Hello", secret=container.settings.secret()
            )
            == []
        )
        assert (
            verification.confirm_sms_reply(
                session, "+447700900123", "999 999", secret=container.settings.secret()
            )
            == []
        )
    assert channel(container, first["id"], "sms").verification_attempts == 1
    with container.db.transaction() as session:
        matched = verification.confirm_sms_reply(
            session, "+447700900123", "Code: 222 222.", secret=container.settings.secret()
        )
    assert matched == [second["id"]]
    assert channel(container, second["id"], "sms").verified_at is not None
    assert channel(container, first["id"], "sms").verified_at is None
    with container.db.transaction() as session:
        assert (
            verification.confirm_sms_reply(
                session, "+447700900999", "111111", secret=container.settings.secret()
            )
            == []
        )
        assert verification.confirm_sms_reply(
            session, "+447700900123", "111111", secret=container.settings.secret()
        ) == [first["id"]]
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "contact.channel_verified")
        ).first()
    assert event is not None and event.detail == {"channel": "sms", "method": "sms_reply"}


def _link(container: Container) -> str:
    notice = notices_for(container, "verify_email")[-1]
    assert notice.subject == "Confirm your e-mail address for drug alerts"
    match = URL.search(notice.text_body)
    assert match, notice.text_body
    return f"/verify/{match.group(1)}"


def test_the_email_link_opens_a_page_and_only_its_button_verifies(
    client: FlaskClient, admin: dict[str, str], service: dict[str, Any], container: Container
) -> None:
    contact = add(client, admin, service["id"], channels=["email"], phone=None)
    path = _link(container)
    visitor = client.application.test_client()  # no login: a person opening their e-mail
    page = visitor.get(path)
    assert page.status_code == 200
    html = text(page)
    assert "Selby NSP" in html and "D•••@example.org" in html and "Duty@example.org" not in html
    assert 'method="post"' in html and "<script" not in html
    assert channel(container, contact["id"], "email").verified_at is None, "a GET verifies nothing"

    assert visitor.post(path).status_code == 400, "the form needs its CSRF token"
    assert channel(container, contact["id"], "email").verified_at is None
    done = visitor.post(path, data={"csrf_token": csrf(page)})
    assert done.status_code == 200 and "E-mail address confirmed" in text(done)
    assert channel(container, contact["id"], "email").verified_at is not None
    assert "Already confirmed" in text(visitor.get(path))

    tampered = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    assert visitor.get(tampered).status_code == 404
    assert "does not work" in text(visitor.get("/verify/not-a-token"))


def test_a_link_sent_to_an_old_address_or_too_long_ago_is_refused(
    client: FlaskClient,
    admin: dict[str, str],
    service: dict[str, Any],
    container: Container,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    contact = add(client, admin, service["id"], channels=["email"], phone=None)
    old = _link(container)
    changed = client.patch(
        f"{API}/contacts/{contact['id']}", json={"email": "new@example.org"}, headers=admin
    )
    assert changed.status_code == 200
    new = _link(container)
    assert old != new
    visitor = client.application.test_client()
    refused = visitor.get(old)
    assert refused.status_code == 404 and "address it was sent to has changed" in text(refused)
    page = visitor.get(new)
    assert visitor.post(old, data={"csrf_token": csrf(page)}).status_code == 404
    assert channel(container, contact["id"], "email").verified_at is None

    monkeypatch.setattr(email_links, "EMAIL_LINK_MAX_AGE", timedelta(seconds=-1))
    expired = visitor.get(new)
    assert expired.status_code == 410 and "expired" in text(expired)
    assert visitor.post(new, data={"csrf_token": csrf(page)}).status_code == 410
    assert channel(container, contact["id"], "email").verified_at is None


def test_an_unverified_channel_receives_nothing(
    client: FlaskClient, admin: dict[str, str], service: dict[str, Any], container: Container
) -> None:
    contact = add(client, admin, service["id"])
    with container.db.transaction() as session:
        session.execute(
            update(ContactChannel)
            .where(ContactChannel.contact_id == contact["id"], ContactChannel.channel == "email")
            .values(verified_at=datetime.now(UTC))
        )

    def panel(name: str) -> Principal:
        user_id = create_user(
            container.db, email=f"{name}@example.org", name=name, roles=frozenset({Role.panel})
        )
        return Principal(
            user_id=user_id, email=f"{name}@example.org", roles=frozenset({Role.panel})
        )

    drafter, approver = panel("drafter"), panel("approver")
    alert = alerts.draft_alert(
        container.db,
        drafter,
        {**ALERT, "areas": ["SELBY"], "report_id": decided_report(container, drafter, "SELBY")},
        templates=container.templates(),
    )
    alerts.submit_alert(container.db, drafter, alert["id"])
    alerts.approve_alert(container.db, approver, alert["id"], required=1, queue=NoticeQueue())
    with container.db.transaction() as session:
        channels = list(
            session.scalars(select(Delivery.channel).where(Delivery.contact_id == contact["id"]))
        )
    assert channels == ["email"]


def test_a_number_that_replied_stop_is_sent_no_code_at_another_service(
    client: FlaskClient, admin: dict[str, str], service: dict[str, Any], container: Container
) -> None:
    first = add(client, admin, service["id"], verified=True)
    with container.db.transaction() as session:
        session.execute(
            update(ContactChannel)
            .where(ContactChannel.contact_id == first["id"], ContactChannel.channel == "sms")
            .values(opted_out_at=datetime.now(UTC))
        )
    other = add_service(client, admin, name="Selby hostel", type="hostel", areas=["SELBY"])
    second = add(client, admin, other["id"])
    assert second["channel_status"]["sms"]["status"] == "opted_out"
    assert second["channel_status"]["email"]["status"] == "pending"
    assert [n.recipient for n in notices_for(container, "verify_sms")] == []
    assert len(notices_for(container, "verify_email")) == 1
