"""Escalation of urgent alerts no contact at a service has acknowledged in time."""

from __future__ import annotations

import logging

from workers.celery_app import app

log = logging.getLogger(__name__)


@app.task(name="ldis.escalate_alerts", acks_late=True)
def escalate_alerts() -> int:
    """Placeholder until the escalation use case lands (issue 8); does nothing yet."""
    return 0
