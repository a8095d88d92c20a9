"""Build a configured Celery app from settings (worker side and sending side alike).

Tasks are named explicitly (`ldis.*`), take ids, use acks_late and are idempotent: the
database outbox is the truth, the broker only a doorbell, so a lost or repeated message
costs at most a little work, never a lost or doubled alert.
"""

from __future__ import annotations

from celery import Celery
from celery.schedules import crontab
from kombu.entity import Queue

from ldis.settings import Settings
from workers import request_context  # noqa: F401 (connects the request id's signals)
from workers.embedded_broker import configure_embedded_transport

URGENT_QUEUE = "urgent"
STANDARD_QUEUE = "standard"
# In the order workers read them: urgent first (see `queue_order_strategy` below).
QUEUES = (URGENT_QUEUE, STANDARD_QUEUE)


def make_celery(settings: Settings) -> Celery:
    if settings.broker_is_embedded:
        configure_embedded_transport()
    celery = Celery("ldis", broker=settings.effective_broker_url, set_as_current=False)
    transport_options: dict[str, object] = {}
    if settings.broker_prefix:
        transport_options["global_keyprefix"] = settings.broker_prefix
    if settings.effective_broker_url.startswith(("redis", "rediss")):
        # Unacked tasks come back after this long if a worker dies without a word (the
        # sweeper re-offers their deliveries long before: LDIS_STUCK_AFTER_SECONDS).
        transport_options["visibility_timeout"] = 3600
        # Urgent first: each fetch asks for the queues in the order the worker names them
        # (`--queues urgent,standard`), not round robin, so a free worker process always
        # takes an urgent task before a standard one. (kombu's SQLAlchemy transport for the
        # embedded broker has no such option: it would pass it to create_engine.)
        transport_options["queue_order_strategy"] = "priority"
    celery.conf.update(
        task_queues=[Queue(name) for name in QUEUES],  # type: ignore[no-untyped-call]
        task_default_queue=STANDARD_QUEUE,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        broker_transport_options=transport_options,
        worker_hijack_root_logger=False,
        # Task and worker events, for Flower and `celery events` (docs/operations.md); the
        # worker's event heartbeat also feeds the heartbeat metric (workers/telemetry.py).
        worker_send_task_events=True,
        task_send_sent_event=True,
        imports=(
            "workers.tasks.alerts",
            "workers.tasks.delivery",
            "workers.tasks.escalation",
            "workers.tasks.hygiene",
            "workers.tasks.maintenance",
            "workers.tasks.notices",
            "workers.tasks.retention",
            "workers.tasks.signals",
        ),
        beat_schedule={
            "sweep-deliveries": {
                "task": "ldis.sweep_deliveries",
                "schedule": settings.sweep_interval_seconds,
                "options": {"queue": STANDARD_QUEUE},
            },
            "sweep-notices": {
                "task": "ldis.sweep_notices",
                "schedule": settings.sweep_interval_seconds,
                "options": {"queue": STANDARD_QUEUE},
            },
            "escalate-signals": {
                "task": "ldis.escalate_signals",
                "schedule": 300.0,
                "options": {"queue": URGENT_QUEUE},
            },
            # Expiry takes effect within a minute; the review reminder the same.
            "alert-lifecycle": {
                "task": "ldis.alert_lifecycle",
                "schedule": 60.0,
                "options": {"queue": STANDARD_QUEUE},
            },
            # Urgent alerts no one at a service has acknowledged: backups, then the panel.
            "escalate-alerts": {
                "task": "ldis.escalate_alerts",
                "schedule": 60.0,
                "options": {"queue": URGENT_QUEUE},
            },
            "recompute-clusters": {
                "task": "ldis.recompute_clusters",
                "schedule": 3600.0,
                "options": {"queue": STANDARD_QUEUE},
            },
            # Daily, early morning UK time; idempotent, so a missed or repeated run is harmless.
            "review-reminders": {
                "task": "ldis.review_reminders",
                "schedule": crontab(hour=7, minute=15),
                "options": {"queue": STANDARD_QUEUE},
            },
            # Daily, at night: old reports lose free text and exact location (counts stay).
            "retention": {
                "task": "ldis.retention",
                "schedule": crontab(hour=3, minute=40),
                "options": {"queue": STANDARD_QUEUE},
            },
            "purge-broker": {
                "task": "ldis.purge_broker",
                "schedule": 3600.0,
                "options": {"queue": STANDARD_QUEUE},
            },
        },
    )
    return celery
