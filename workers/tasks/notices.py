"""Sending service notices (verification codes, notes to managers, reminders)."""

from __future__ import annotations

import logging
from datetime import timedelta

from ldis.services import notices
from workers.celery_app import app
from workers.runtime import runtime

log = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 60.0


@app.task(name="ldis.send_notices", acks_late=True)
def send_notices(notice_ids: list[int]) -> int:
    """Send a batch of notices; ones already claimed elsewhere are skipped, not sent again."""
    container, senders = runtime()
    retry = notices.send_notices(container.db, notice_ids, senders)
    if retry:
        container.queue.enqueue_notices(retry, countdown=RETRY_AFTER_SECONDS)
    return len(notice_ids) - len(retry)


@app.task(name="ldis.sweep_notices", acks_late=True)
def sweep_notices() -> int:
    """Re-enqueue notices whose task was lost (broker down at commit, worker killed)."""
    container, _ = runtime()
    stuck = timedelta(seconds=container.settings.stuck_after_seconds)
    ids = notices.sweep_notices(container.db, stuck)
    if ids:
        container.queue.enqueue_notices(ids)
        log.warning("sweeper re-enqueued %s notices", len(ids))
    return len(ids)
