"""The Celery application `celery -A workers.celery_app` (what `ldis worker` and `ldis beat` run)."""

from __future__ import annotations

from ldis.settings import load_settings
from workers.celery_factory import make_celery

app = make_celery(load_settings())
