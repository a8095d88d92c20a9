"""The Celery application `celery -A workers.celery_app` (what `ldis worker` and `ldis beat` run)."""

from __future__ import annotations

from typing import Any

from celery.signals import heartbeat_sent, setup_logging, worker_shutdown

from ldis import telemetry
from ldis.log_setup import configure as configure_logging
from ldis.settings import load_settings
from workers.celery_factory import make_celery

settings = load_settings()
app = make_celery(settings)


def _logging(**_: Any) -> None:
    """The worker and the scheduler log as the web does (LDIS_LOG_FORMAT), with no e-mail
    address or phone number in any line; Celery leaves logging to us when this answers."""
    configure_logging(settings)


_telemetry: list[telemetry.Telemetry | None] = []


def _recorder() -> telemetry.Telemetry | None:
    if not _telemetry:
        _telemetry.append(telemetry.for_settings(settings))
    return _telemetry[0]


def _heartbeat(sender: Any = None, **_: Any) -> None:
    """Every event heartbeat (2 s): this worker is alive (`ldis_worker_heartbeat_...`)."""
    recorder = _recorder()
    hostname = getattr(getattr(sender, "eventer", None), "hostname", None)
    if recorder is not None and hostname:
        recorder.heartbeat(hostname)


def _forget(sender: Any = None, **_: Any) -> None:
    recorder = _recorder()
    hostname = getattr(sender, "hostname", None)
    if recorder is not None and hostname:
        recorder.forget(hostname)


# Connected on import: in `celery worker` and `celery beat` (a test or the web importing this
# module only to send tasks never fires them).
setup_logging.connect(_logging, weak=False)
heartbeat_sent.connect(_heartbeat, weak=False)
worker_shutdown.connect(_forget, weak=False)
