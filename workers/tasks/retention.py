"""Retention: the daily redaction of old reports (docs/privacy.md)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from ldis.services import retention as policy
from workers.celery_app import app
from workers.runtime import runtime

log = logging.getLogger(__name__)


@app.task(name="ldis.retention", acks_late=True)
def retention() -> int:
    """Redact reports older than LDIS_RETENTION_MONTHS (0: keep everything). Idempotent:
    a redacted report is never touched again, so a repeated or missed run is harmless."""
    container, _ = runtime()
    result = policy.redact_old_reports(
        container.db, datetime.now(UTC), container.settings.retention_months
    )
    if result.reports:
        log.info(
            "retention: %s reports redacted (received before %s)",
            result.reports,
            result.cutoff.isoformat() if result.cutoff else "-",
        )
    return result.reports
