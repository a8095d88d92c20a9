"""Crash safety of the fan-out, end to end: 2,000 recipients by SMS (the fake Twilio) and
e-mail (aiosmtpd), real worker processes, and in the middle of it a kill -9 of every worker
process, or a restart of the Redis broker (which keeps nothing). Afterwards every delivery
is sent, no text went out twice (counted at the fake, per delivery), and an e-mail went out
twice at most for the messages in flight at the kill."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from ldis.bootstrap import Container
from ldis.store.models import Delivery, DeliveryAttempt
from tests.fakes.twilio_api import FakeTwilio
from tests.integration.conftest import wait_for
from tests.integration.test_delivery_rig import (
    SID,
    TOKEN,
    MailCounter,
    Rig,
    approve,
    counts,
    redis_server,
    seed,
    sms_per_delivery,
    smtp_server,
)

pytestmark = pytest.mark.integration

RECIPIENTS = 2000


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with FakeTwilio(SID, TOKEN) as server:
        yield server


@pytest.fixture
def mail() -> Iterator[tuple[MailCounter, int]]:
    with smtp_server() as server:
        yield server


def _ids(container: Container, alert_id: int, channel: str, *statuses: str) -> set[int]:
    with container.db.transaction() as session:
        query = select(Delivery.id).where(
            Delivery.alert_id == alert_id, Delivery.channel == channel
        )
        if statuses:
            query = query.where(Delivery.status.in_(statuses))
        return set(session.scalars(query))


def _sent(container: Container, alert_id: int) -> int:
    return sum(n for (_, status), n in counts(container, alert_id).items() if status == "sent")


def _all_sent(container: Container, alert_id: int, total: int) -> bool:
    return _sent(container, alert_id) == total


def _outcomes(container: Container, alert_id: int) -> dict[str, int]:
    with container.db.transaction() as session:
        rows = session.execute(
            select(DeliveryAttempt.outcome, func.count())
            .join(Delivery, Delivery.id == DeliveryAttempt.delivery_id)
            .where(Delivery.alert_id == alert_id)
            .group_by(DeliveryAttempt.outcome)
        ).all()
    return dict(rows)


def _check_exactly_once(
    container: Container, alert_id: int, fake: FakeTwilio, mails: MailCounter, in_flight: int
) -> None:
    sms_ids = _ids(container, alert_id, "sms")
    email_ids = _ids(container, alert_id, "email")
    assert len(sms_ids) == len(email_ids) == RECIPIENTS
    texts = sms_per_delivery(fake, container)
    assert set(texts) == sms_ids, "every text delivery reached the provider"
    assert max(texts.values()) == 1, [d for d, n in texts.items() if n > 1]
    assert set(mails.by_delivery) == email_ids, "every e-mail delivery reached the server"
    repeats = sum(n - 1 for n in mails.by_delivery.values())
    assert repeats <= in_flight, (repeats, in_flight)


def test_kill_9_mid_fan_out_loses_nothing_and_sends_no_text_twice(
    container: Container,
    settings_env: dict[str, str],
    tmp_path: Path,
    fake: FakeTwilio,
    mail: tuple[MailCounter, int],
) -> None:
    mails, smtp_port = mail
    rig = Rig(
        settings_env,
        tmp_path,
        fake,
        smtp_port,
        LDIS_SMS_RATE_PER_SECOND="150",
        LDIS_EMAIL_RATE_PER_SECOND="150",
    )
    try:
        seed(container, "KILLTOWN", RECIPIENTS)
        rig.start_worker()
        rig.start_beat()
        alert_id = approve(container, rig, "KILLTOWN")
        total = 2 * RECIPIENTS

        wait_for(lambda: _sent(container, alert_id) >= total * 0.3, timeout=60, interval=0.05)
        rig.kill_workers()
        at_kill = counts(container, alert_id)
        # E-mails claimed but not recorded: at most these can go out twice.
        in_flight = at_kill.get(("email", "sending"), 0)
        assert _sent(container, alert_id) < total, "killed before the end"

        rig.start_worker()
        wait_for(lambda: _all_sent(container, alert_id, total), timeout=120, interval=0.2)

        _check_exactly_once(container, alert_id, fake, mails, in_flight)
        outcomes = _outcomes(container, alert_id)
        # The rows the dead workers held were taken back and recorded as lost; any text
        # among them that had reached Twilio was reconciled, not sent again.
        # (More only if a live worker stalled past LDIS_STUCK_AFTER_SECONDS on a busy machine.)
        assert outcomes.get("lost", 0) >= at_kill.get(("sms", "sending"), 0) + in_flight
        assert outcomes["sent"] + outcomes.get("reconciled", 0) == total
        print(
            f"at kill: {at_kill}; attempts: {outcomes}; e-mail repeats: "
            f"{sum(n - 1 for n in mails.by_delivery.values())} of {in_flight} in flight"
        )
    except BaseException:
        print(rig.log()[-20_000:])
        raise
    finally:
        rig.stop()


def test_a_redis_restart_mid_fan_out_loses_nothing_and_doubles_nothing(
    container: Container,
    settings_env: dict[str, str],
    tmp_path: Path,
    fake: FakeTwilio,
    mail: tuple[MailCounter, int],
) -> None:
    mails, smtp_port = mail
    with redis_server() as broker:
        rig = Rig(
            settings_env,
            tmp_path,
            fake,
            smtp_port,
            LDIS_BROKER_URL=broker.url,
            LDIS_SMS_RATE_PER_SECOND="150",
            LDIS_EMAIL_RATE_PER_SECOND="150",
        )
        try:
            seed(container, "REDISTOWN", RECIPIENTS, first_phone=50_000)
            rig.start_worker()
            rig.start_beat()
            alert_id = approve(container, rig, "REDISTOWN")
            total = 2 * RECIPIENTS

            wait_for(lambda: _sent(container, alert_id) >= total * 0.3, timeout=60, interval=0.05)
            broker.kill()  # every queued and unacknowledged task is gone with it
            at_restart = _sent(container, alert_id)
            broker.start()
            assert at_restart < total, "restarted before the end"

            wait_for(lambda: _all_sent(container, alert_id, total), timeout=120, interval=0.2)

            # Nobody was killed: nothing was in flight, nothing may repeat at all.
            _check_exactly_once(container, alert_id, fake, mails, in_flight=0)
            outcomes: dict[str, Any] = _outcomes(container, alert_id)
            assert outcomes.get("sent", 0) + outcomes.get("reconciled", 0) == total
            print(f"sent at restart: {at_restart}; attempts: {outcomes}")
        except BaseException:
            print(rig.log()[-20_000:])
            raise
        finally:
            rig.stop()
