"""Housekeeping tasks."""

from __future__ import annotations

from workers.celery_app import app
from workers.embedded_broker import purge_consumed_messages
from workers.runtime import runtime


@app.task(name="ldis.purge_broker", acks_late=True)
def purge_broker() -> int:
    """The embedded broker keeps consumed messages in its table; drop the old ones."""
    container, _ = runtime()
    if not container.settings.broker_is_embedded:
        return 0
    return purge_consumed_messages(container.settings.effective_broker_url)
