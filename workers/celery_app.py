"""The Celery application `celery -A workers.celery_app` (what `ldis worker` and `ldis beat` run)."""

from __future__ import annotations

from typing import Any

from celery.signals import after_setup_logger

from ldis.logging_privacy import install as mask_personal_data_in_logs
from ldis.settings import load_settings
from workers.celery_factory import make_celery

app = make_celery(load_settings())


def _mask_personal_data(**_: Any) -> None:
    """The worker and the scheduler: no e-mail address or phone number in any log line."""
    mask_personal_data_in_logs()


# Once Celery has set up logging (in `celery worker` and `celery beat`, not when a test or
# the web imports this module to send tasks).
after_setup_logger.connect(_mask_personal_data, weak=False)
