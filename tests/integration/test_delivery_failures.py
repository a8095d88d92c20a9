"""Provider failures through real worker processes: a flaky Twilio (20% 5xx, 10% 429 with
Retry-After) still delivers everything exactly once, every try recorded; a number Twilio
calls invalid (21211) or unsubscribed (21610), or a mailbox the server refuses, fails at
once and flags the contact."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from ldis.bootstrap import Container
from ldis.store.models import Contact, ContactChannel, Delivery, DeliveryAttempt
from tests.fakes.twilio_api import FakeTwilio
from tests.integration.conftest import wait_for
from tests.integration.test_delivery_rig import (
    SID,
    TOKEN,
    MailCounter,
    Rig,
    approve,
    counts,
    seed,
    sms_per_delivery,
    smtp_server,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def world(
    container: Container, settings_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Rig, FakeTwilio, MailCounter]]:
    """One worker for the module (between tests the tables are emptied, the fake reset)."""
    with FakeTwilio(SID, TOKEN) as fake, smtp_server() as (mails, port):
        # Enough tries that 30% failures never exhaust them (0.3**12 per text).
        rig = Rig(settings_env, tmp_path_factory.mktemp("rig"), fake, port, LDIS_MAX_ATTEMPTS="12")
        try:
            rig.start_worker()
            yield rig, fake, mails
        except BaseException:
            print(rig.log()[-20_000:])
            raise
        finally:
            rig.stop()


def _final(container: Container, alert_id: int, total: int) -> bool:
    done = {"sent", "failed", "delivered"}
    return sum(n for (_, s), n in counts(container, alert_id).items() if s in done) == total


def _attempts(container: Container, alert_id: int) -> dict[int, list[tuple[str, str | None]]]:
    with container.db.transaction() as session:
        rows = session.execute(
            select(DeliveryAttempt.delivery_id, DeliveryAttempt.outcome, DeliveryAttempt.error)
            .join(Delivery, Delivery.id == DeliveryAttempt.delivery_id)
            .where(Delivery.alert_id == alert_id)
            .order_by(DeliveryAttempt.delivery_id, DeliveryAttempt.attempt)
        ).all()
    found: dict[int, list[tuple[str, str | None]]] = defaultdict(list)
    for delivery_id, outcome, error in rows:
        found[delivery_id].append((outcome, error))
    return found


def _phones(container: Container, alert_id: int) -> dict[int, str]:
    with container.db.transaction() as session:
        rows = session.execute(
            select(Delivery.id, Contact.phone)
            .join(Contact, Contact.id == Delivery.contact_id)
            .where(Delivery.alert_id == alert_id, Delivery.channel == "sms")
        ).all()
    return {delivery_id: phone for delivery_id, phone in rows}


def test_a_flaky_provider_still_delivers_everything_once_and_every_try_is_recorded(
    container: Container, world: tuple[Rig, FakeTwilio, MailCounter]
) -> None:
    rig, fake, _ = world
    fake.flaky(server_errors=0.2, throttled=0.1, retry_after=1, seed=8)
    seed(container, "FLAKYTOWN", 40, channels=("sms",))
    alert_id = approve(container, rig, "FLAKYTOWN")

    wait_for(lambda: counts(container, alert_id).get(("sms", "sent")) == 40, timeout=90)

    phones = _phones(container, alert_id)
    assert max(sms_per_delivery(fake, container).values()) == 1
    refused: Counter[str] = Counter(m.to for m in fake.requests if m.sid is None)
    assert sum(refused.values()) > 0, "the fake refused some"
    attempts = _attempts(container, alert_id)
    for delivery_id, phone in phones.items():
        # One row per try: each refusal as a transient error, then the one that went out.
        outcomes = [outcome for outcome, _ in attempts[delivery_id]]
        assert outcomes == ["transient_error"] * refused[phone] + ["sent"], (phone, outcomes)
    errors = [e or "" for tries in attempts.values() for _, e in tries]
    assert any("HTTP 429" in e for e in errors) and any("HTTP 500" in e for e in errors)
    with container.db.transaction() as session:
        assert session.scalar(select(Contact.id).where(Contact.flagged_at.is_not(None))) is None


def test_invalid_and_unsubscribed_numbers_and_refused_mailboxes_fail_at_once(
    container: Container, world: tuple[Rig, FakeTwilio, MailCounter]
) -> None:
    rig, fake, mails = world
    fake.flaky()
    invalid, stopped, refused = seed(container, "PERMTOWN", 3, first_phone=70_000)
    fake.fail("+447700970000", 21211)
    fake.fail("+447700970001", 21610)
    mails.refuse.add("c70002@example.org")
    alert_id = approve(container, rig, "PERMTOWN")

    wait_for(lambda: _final(container, alert_id, 6), timeout=30)

    with container.db.transaction() as session:
        rows = session.execute(
            select(Delivery.id, Delivery.contact_id, Delivery.channel, Delivery.status).where(
                Delivery.alert_id == alert_id
            )
        ).all()
        status = {(contact, channel): s for _, contact, channel, s in rows}
        channels: dict[tuple[int, str], Any] = {
            (c.contact_id, c.channel): c for c in session.scalars(select(ContactChannel))
        }
        flagged = dict(session.execute(select(Contact.id, Contact.flag_reason)).all())
    assert status == {
        (invalid, "sms"): "failed",
        (invalid, "email"): "sent",
        (stopped, "sms"): "failed",
        (stopped, "email"): "sent",
        (refused, "sms"): "sent",
        (refused, "email"): "failed",
    }
    # Tried once each: a permanent error is never retried.
    attempts = _attempts(container, alert_id)
    failed = [d for d, _, _, s in rows if s == "failed"]
    assert all([o for o, _ in attempts[d]] == ["permanent_error"] for d in failed)
    assert Counter(m.to for m in fake.requests)["+447700970000"] == 1
    # The contacts are flagged for their service's manager; STOP at the carrier is an opt-out.
    assert "21211" in flagged[invalid] and "21610" in flagged[stopped]
    assert "SMTP 550" in flagged[refused]
    assert channels[(invalid, "sms")].failed_at is not None
    assert channels[(stopped, "sms")].opted_out_at is not None
    assert channels[(refused, "email")].failed_at is not None
    assert channels[(refused, "sms")].failed_at is None
