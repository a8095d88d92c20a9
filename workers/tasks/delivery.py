"""Fan-out and delivery tasks."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import timedelta

from ldis.domain.deliveries import retry_delay
from ldis.services import delivery
from workers.celery_app import app
from workers.runtime import runtime

log = logging.getLogger(__name__)


@app.task(name="ldis.fan_out", acks_late=True)
def fan_out(alert_id: int, version: int, urgent: bool = False) -> int:
    """Split an approved alert's queued deliveries into batches; safe to run twice."""
    container, _ = runtime()
    ids = delivery.queued_ids(container.db, alert_id, version)
    container.queue.enqueue_deliveries(ids, urgent=urgent)
    log.info("fan-out alert=%s v%s deliveries=%s", alert_id, version, len(ids))
    return len(ids)


@app.task(name="ldis.deliver_batch", acks_late=True)
def deliver_batch(delivery_ids: list[int], urgent: bool = False) -> int:
    """Send one batch; deliveries already claimed elsewhere are skipped, not sent again."""
    container, senders = runtime()
    retry = delivery.deliver(
        container.db, delivery_ids, senders, container.renderer, container.links
    )
    by_delay: dict[float, list[int]] = defaultdict(list)
    for delivery_id, attempts in retry.items():
        by_delay[retry_delay(attempts)].append(delivery_id)
    for delay, ids in by_delay.items():
        container.queue.enqueue_deliveries(ids, urgent=urgent, countdown=delay)
    return len(delivery_ids) - len(retry)


@app.task(name="ldis.sweep_deliveries", acks_late=True)
def sweep_deliveries() -> int:
    """Re-enqueue deliveries whose task was lost (broker restart, worker killed)."""
    container, _ = runtime()
    found = delivery.sweep(container.db, timedelta(seconds=container.settings.stuck_after_seconds))
    for priority, ids in found.items():
        container.queue.enqueue_deliveries(ids, urgent=priority == "urgent")
    total = sum(len(ids) for ids in found.values())
    if total:
        # Also deliveries whose quiet hours just ended, so this is information, not alarm.
        log.info("sweeper re-enqueued %s deliveries (lost tasks or quiet hours ended)", total)
    return total
