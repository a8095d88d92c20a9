"""Fan-out and delivery tasks."""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from datetime import timedelta

from celery.signals import worker_process_init

from ldis.domain.deliveries import heartbeat_interval
from ldis.services import delivery, public_subscriptions
from workers import ratelimit
from workers.celery_app import app
from workers.runtime import runtime

log = logging.getLogger(__name__)
# Retries due within the same second go in one task; the task fires just after the last.
_RETRY_SLACK_SECONDS = 0.2


@worker_process_init.connect
def _warm_up(**_: object) -> None:
    """Build the process's container and channels as it starts, not on its first task: the
    first urgent alert after a restart should not wait for imports and connections."""
    try:
        runtime()
    except Exception:  # the first task will try again, and say why
        log.warning("could not prepare this worker process", exc_info=True)


@app.task(name="ldis.fan_out", acks_late=True)
def fan_out(alert_id: int, version: int, urgent: bool = False) -> int:
    """Split an approved alert's queued deliveries into batches; safe to run twice."""
    container, _ = runtime()
    ids = delivery.queued_ids(container.db, alert_id, version)
    container.queue.enqueue_deliveries(ids, urgent=urgent)
    log.info("fan-out alert=%s v%s deliveries=%s", alert_id, version, len(ids))
    # Public subscribers (issue 12) get public-level alerts as notices, keyed per phone.
    public = public_subscriptions.queue_public_alert(
        container.db, alert_id, version, container.renderer
    )
    if public:
        container.queue.enqueue_notices(public)
    return len(ids)


@app.task(name="ldis.deliver_batch", acks_late=True)
def deliver_batch(delivery_ids: list[int], urgent: bool = False) -> int:
    """Send one batch; deliveries already claimed elsewhere are skipped, not sent again."""
    container, senders = runtime()
    settings = container.settings
    with ratelimit.urgency(urgent):
        retry = delivery.deliver(
            container.db,
            delivery_ids,
            senders,
            container.renderer,
            container.links,
            max_attempts=settings.max_attempts,
            heartbeat_every=heartbeat_interval(settings.stuck_after_seconds),
        )
    by_second: dict[int, list[int]] = defaultdict(list)
    for delivery_id, delay in retry.items():
        by_second[math.ceil(delay)].append(delivery_id)
    for second, ids in sorted(by_second.items()):
        countdown = second + _RETRY_SLACK_SECONDS if second else 0
        try:
            container.queue.enqueue_deliveries(ids, urgent=urgent, countdown=countdown)
        except Exception:
            # The rows are queued with their due time: the sweeper offers them then.
            log.warning("broker unavailable: %s retries left for the sweeper", len(ids))
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
        # Also deliveries whose quiet hours or backoff just ended: information, not alarm.
        log.info(
            "sweeper re-enqueued %s deliveries (lost tasks, backoff or quiet hours ended)", total
        )
    return total
