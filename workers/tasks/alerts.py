"""The alert lifecycle on a schedule: expiry and the panel's review reminders."""

from __future__ import annotations

import logging

from ldis.services import alert_lifecycle, notices
from workers.celery_app import app
from workers.runtime import runtime

log = logging.getLogger(__name__)


@app.task(name="ldis.alert_lifecycle", acks_late=True)
def alert_lifecycle_tick() -> int:
    """Expire alerts past their date and remind the panel of reviews due (idempotent)."""
    container, _ = runtime()
    expired = alert_lifecycle.expire_due(container.db)
    ids = alert_lifecycle.review_reminders(container.db, container.settings.public_url)
    notices.enqueue_quietly(container.queue, list(ids))
    if expired or ids:
        log.info("alert lifecycle: %s expired, %s review reminders", len(expired), len(ids))
    return len(expired) + len(ids)
