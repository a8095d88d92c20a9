"""Sending service notices (verification codes, notes to managers, reminders)."""

from __future__ import annotations

import logging
from datetime import timedelta

from ldis.services import notices, public_subscriptions
from workers.celery_app import app
from workers.runtime import runtime

log = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 60.0
PUBLIC_SWEEP = timedelta(days=1)


@app.task(name="ldis.send_notices", acks_late=True)
def send_notices(notice_ids: list[int]) -> int:
    """Send a batch of notices; ones already claimed elsewhere are skipped, not sent again."""
    container, senders = runtime()
    retry = notices.send_notices(
        container.db, notice_ids, senders, secret=container.settings.secret()
    )
    if retry:
        container.queue.enqueue_notices(retry, countdown=RETRY_AFTER_SECONDS)
    return len(notice_ids) - len(retry)


@app.task(name="ldis.sweep_notices", acks_late=True)
def sweep_notices() -> int:
    """Re-enqueue notices whose task was lost (broker down at commit, worker killed)."""
    container, _ = runtime()
    stuck = timedelta(seconds=container.settings.stuck_after_seconds)
    ids = notices.sweep_notices(container.db, stuck)
    # A lost fan-out task would leave public subscribers without a public alert: offer the
    # day's public versions again (writes nothing already written).
    for alert_id, version in public_subscriptions.recent_public_versions(
        container.db, PUBLIC_SWEEP
    ):
        ids += public_subscriptions.queue_public_alert(
            container.db, alert_id, version, container.renderer
        )
    public_subscriptions.forget_unconfirmed(container.db)
    if ids:
        container.queue.enqueue_notices(ids)
        log.warning("sweeper re-enqueued %s notices", len(ids))
    return len(ids)
