"""Escalation of urgent alerts no contact at a service has acknowledged in time: to the
service's backup contacts, then to the panel with a phone list (`ldis.services.escalation`).
Scheduled every minute; idempotent and safe to run twice at once."""

from __future__ import annotations

import logging
from datetime import timedelta

from ldis.services import escalation
from workers.celery_app import app
from workers.runtime import runtime

log = logging.getLogger(__name__)


@app.task(name="ldis.escalate_alerts", acks_late=True)
def escalate_alerts() -> int:
    """Run every stage that is due; return how many (alert, version, service) stages."""
    container, _ = runtime()
    after = timedelta(minutes=container.settings.escalate_after_minutes)
    result = escalation.escalate(container.db, after=after, links=container.links)
    escalation.enqueue(container.queue, result)
    if result.stages:
        log.info(
            "escalated %s stages: %s deliveries, %s notices",
            len(result.stages),
            len(result.delivery_ids),
            len(result.notice_ids),
        )
    return len(result.stages)
