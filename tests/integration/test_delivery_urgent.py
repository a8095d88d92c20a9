"""Urgent first: an urgent alert approved while a large standard one is going out is sent
at once, not after it. `ldis worker` runs a worker on the urgent queue alone beside the main
one (which asks for urgent before standard), and urgent sends hold standard ones off the
shared provider rate."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from ldis.bootstrap import Container
from ldis.store.models import Alert, Delivery
from tests.fakes.twilio_api import FakeTwilio
from tests.integration.conftest import wait_for
from tests.integration.test_delivery_rig import SID, TOKEN, Rig, approve, counts, seed, smtp_server

pytestmark = pytest.mark.integration

STANDARD, URGENT = 600, 20


def test_an_urgent_alert_is_not_stuck_behind_a_large_standard_one(
    container: Container, settings_env: dict[str, str], tmp_path: Path
) -> None:
    with FakeTwilio(SID, TOKEN) as fake, smtp_server() as (_, port):
        # One mail account at 60 messages a second: the standard alert needs 10 s of it.
        rig = Rig(settings_env, tmp_path, fake, port, LDIS_EMAIL_RATE_PER_SECOND="60")
        try:
            seed(container, "BIGTOWN", STANDARD, channels=("email",))
            seed(container, "SMALLTOWN", URGENT, channels=("email",), first_phone=10_000)
            rig.start_worker()
            standard = approve(container, rig, "BIGTOWN", priority="standard")
            wait_for(lambda: counts(container, standard).get(("email", "sent"), 0) >= 60)

            urgent = approve(container, rig, "SMALLTOWN", priority="urgent")
            wait_for(lambda: counts(container, urgent).get(("email", "sent")) == URGENT)

            with container.db.transaction() as session:
                approved_at = session.scalar(select(Alert.approved_at).where(Alert.id == urgent))
                last = session.scalar(
                    select(func.max(Delivery.sent_at)).where(Delivery.alert_id == urgent)
                )
            left = STANDARD - counts(container, standard).get(("email", "sent"), 0)
            assert last is not None and approved_at is not None
            latency = (last - approved_at).total_seconds()
            print(f"urgent: {URGENT} sent {latency:.2f} s after approval; standard left {left}")
            assert latency < 2.0, latency
            # Still going: the urgent alert did not wait for it.
            assert left >= STANDARD // 3
        except BaseException:
            print(rig.log()[-20_000:])
            raise
        finally:
            rig.kill_workers()
            rig.stop()
