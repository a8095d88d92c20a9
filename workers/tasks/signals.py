"""Signal tasks: escalation of unseen red signals (and, with clusters, detection)."""

from __future__ import annotations

import logging
from datetime import timedelta

import redis

from ldis.domain.clusters import ClusterSettings
from ldis.services import clusters, signals
from workers.celery_app import app
from workers.detection_queue import pending_detections
from workers.runtime import runtime

log = logging.getLogger(__name__)


@app.task(name="ldis.detect_clusters", acks_late=True)
def detect_clusters(report_ids: list[int]) -> int:
    """Run the cluster detectors as of newly filed near misses and call-outs (idempotent),
    together with every report filed since this task was queued (workers/detection_queue.py)."""
    container, _ = runtime()
    ids = set(report_ids)
    pending = pending_detections(container.settings)
    if pending is not None:
        try:
            ids.update(pending.take())
        except redis.RedisError as exc:
            # Those reports' clusters are found by the hourly recompute.
            log.warning("pending cluster detections not read: Redis %s", type(exc).__name__)
    if not ids:
        return 0
    return clusters.detect_after(container.db, sorted(ids), ClusterSettings())


@app.task(name="ldis.recompute_clusters", acks_late=True)
def recompute_clusters() -> int:
    """Hourly safety net: a detection task lost with the broker is made good here."""
    container, _ = runtime()
    return clusters.recompute(container.db, ClusterSettings())


@app.task(name="ldis.escalate_signals", acks_late=True)
def escalate_signals() -> int:
    """Flag red signals nobody has reviewed in time; they head the panel's queue."""
    container, _ = runtime()
    after = timedelta(minutes=container.settings.signal_escalate_minutes)
    escalated = signals.escalate(container.db, after)
    if escalated:
        log.warning("escalated %s red signals not reviewed within %s", len(escalated), after)
    return len(escalated)
