"""Service notices: written with the change that causes them, deduplicated, sent once."""

from __future__ import annotations

import subprocess
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from ldis.bootstrap import Container
from ldis.services import notices
from ldis.store.models import Notice, OutboxMessage
from workers.channels import build_senders

pytestmark = pytest.mark.integration


def _queue(container: Container, key: str, channel: str = "email") -> int | None:
    with container.db.transaction() as session:
        return notices.queue_notice(
            session,
            dedupe_key=key,
            purpose="test",
            channel=channel,
            recipient="manager@example.org" if channel == "email" else "+447700900123",
            subject="Check your contacts" if channel == "email" else None,
            text="Your service has no reachable contact.",
        )


def test_a_repeated_cause_writes_one_notice(container: Container) -> None:
    first = _queue(container, "service-1-unreachable")
    again = _queue(container, "service-1-unreachable")
    assert isinstance(first, int)
    assert again is None
    with container.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Notice)) == 1


def test_a_notice_sent_twice_is_stored_once(container: Container) -> None:
    notice_id = _queue(container, "n-twice")
    assert notice_id is not None
    senders = build_senders(container.settings, container.db)
    assert notices.send_notices(container.db, [notice_id], senders) == []
    assert notices.send_notices(container.db, [notice_id], senders) == []  # claimed: no-op
    with container.db.transaction() as session:
        stored = session.scalars(select(OutboxMessage)).all()
        notice = session.get(Notice, notice_id)
        assert notice is not None
        assert (notice.status, notice.attempts) == ("sent", 1)
    assert [(m.notice_id, m.delivery_id, m.recipient) for m in stored] == [
        (notice_id, None, "manager@example.org")
    ]


def test_a_notice_for_a_missing_channel_fails_without_retry(container: Container) -> None:
    notice_id = _queue(container, "n-pager", channel="pager")
    assert notice_id is not None
    senders = build_senders(container.settings, container.db)
    assert notices.send_notices(container.db, [notice_id], senders) == []
    with container.db.transaction() as session:
        notice = session.get(Notice, notice_id)
        assert notice is not None
        assert (notice.status, notice.last_error) == ("failed", "no pager channel")


def test_the_worker_sends_an_enqueued_notice(
    container: Container, worker: subprocess.Popen[str]
) -> None:
    notice_id = _queue(container, "n-worker", channel="sms")
    notices.enqueue_quietly(container.queue, [notice_id])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with container.db.transaction() as session:
            notice = session.get(Notice, notice_id)
            if notice is not None and notice.status == "sent":
                break
        time.sleep(0.2)
    with container.db.transaction() as session:
        message = session.scalar(select(OutboxMessage).where(OutboxMessage.notice_id == notice_id))
        assert message is not None
        assert (message.channel, message.recipient) == ("sms", "+447700900123")


def test_the_sweeper_offers_notices_left_queued(container: Container) -> None:
    notice_id = _queue(container, "n-lost")
    assert notices.sweep_notices(container.db, stuck_after=timedelta(0)) == [notice_id]
