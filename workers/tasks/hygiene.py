"""Distribution-list hygiene: the daily review reminder."""

from __future__ import annotations

import logging
from datetime import timedelta

from ldis.services import hygiene, notices
from workers.celery_app import app
from workers.runtime import runtime

log = logging.getLogger(__name__)


@app.task(name="ldis.review_reminders", acks_late=True)
def review_reminders() -> int:
    """Ask services whose details are due their review to confirm them (idempotent: a
    service asked in the last 30 days is not asked again, notices dedupe per month)."""
    container, _ = runtime()
    ids = hygiene.review_reminders(
        container.db,
        interval=timedelta(days=container.settings.review_interval_days),
        public_url=container.settings.public_url,
    )
    notices.enqueue_quietly(container.queue, list(ids))
    if ids:
        log.info("review reminders: %s notices queued", len(ids))
    return len(ids)
