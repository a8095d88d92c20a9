"""Gunicorn settings for ``ldis web``.

``ldis web`` runs gunicorn with ``-c config/gunicorn.conf.py`` and passes ``--bind`` itself;
command-line options win over the values here. Every LDIS_ setting is read through
``ldis.settings`` (the one module that reads them), so a bad value stops start-up with the same
one-line error as everywhere else.

Environment variables read here:
  LDIS_WEB_WORKERS     worker processes; 0 or unset = CPU cores + 1, at most 8
  LDIS_LOG_LEVEL       gunicorn's error-log level follows the application's
  LDIS_LOG_FORMAT      json: gunicorn's and the app's lines as JSON objects (ldis/log_setup.py)
  PROMETHEUS_MULTIPROC_DIR  where workers keep their request counts for /metrics (default: a
                       fresh directory under /dev/shm, removed on exit)
  GUNICORN_BIND        address when gunicorn is started without --bind (default 127.0.0.1:8000)
  FORWARDED_ALLOW_IPS  gunicorn's own: proxies trusted for X-Forwarded-Proto (see below)
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ldis.log_setup import dict_config
from ldis.logging_privacy import install as mask_personal_data_in_logs
from ldis.settings import LogFormat, SettingsError, load_settings

try:
    _settings = load_settings()
except SettingsError as error:
    raise SystemExit(str(error)) from None

MAX_AUTO_WORKERS = 8


def _cpu_count() -> int:
    """CPUs this process may run on (respects a container's cpuset), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not available on macOS
        return max(1, os.cpu_count() or 1)


def _worker_count(configured: int) -> int:
    if configured > 0:
        return configured
    # Handlers are CPU-bound (the database answers in well under a millisecond), so more
    # processes than cores only add switching: measured on 2 cores, 3 workers gave ~16 % more
    # report POSTs/s than 5 (docs/performance.md).
    return min(_cpu_count() + 1, MAX_AUTO_WORKERS)


# --- Server socket -------------------------------------------------------------------------------
bind: list[str] = [os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")]
backlog: int = 2048

# --- Workers -------------------------------------------------------------------------------------
workers: int = _worker_count(_settings.web_workers)
worker_class: str = "sync"
# A worker silent for this long is killed and replaced; requests should finish well within it
# (slow work belongs to the Celery workers).
timeout: int = 30
# On SIGTERM or reload, workers get this long to finish in-flight requests.
graceful_timeout: int = 30
# Seconds to hold an idle keep-alive connection (used by non-sync worker classes).
keepalive: int = 5
# Recycle workers now and then so slow leaks cannot grow without bound; jitter avoids every
# worker restarting at once.
max_requests: int = 20000
max_requests_jitter: int = 2000
# Heartbeat files on tmpfs: on overlay filesystems (containers) disk writes can stall workers.
# Gunicorn creates and unlinks its own files there (S108 is about guessable names we make).
_SHM = "/dev/shm"  # noqa: S108
if Path(_SHM).is_dir():
    worker_tmp_dir: str = _SHM

# --- Proxies -------------------------------------------------------------------------------------
# Addresses (or CIDR networks) whose X-Forwarded-Proto / X-Forwarded-Ssl headers are trusted, so
# that a TLS-terminating reverse proxy makes requests look like https. Comma separated; "*"
# trusts every peer, which is safe only when nothing but the proxy can reach this port (as with
# the loopback-only port of docker-compose.yml). Links in messages and the URL Twilio signs come
# from LDIS_PUBLIC_URL, not from these headers.
forwarded_allow_ips: str = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

# --- Logging -------------------------------------------------------------------------------------
# Both logs go to stderr, where the container runtime or systemd collects them. No e-mail
# address or phone number reaches either (workers fork from this process, so they inherit
# it): see ldis/logging_privacy.py. LDIS_LOG_FORMAT=json: gunicorn's own lines and the app's
# go through one JSON handler (ldis/log_setup.py), and the app logs each request itself
# (with its request id) instead of gunicorn's access log.
mask_personal_data_in_logs()
loglevel: str = _settings.log_level.lower()
errorlog: str = "-"
if _settings.log_format is LogFormat.json:
    logconfig_dict: dict[str, Any] = dict_config(_settings)
    accesslog: str | None = None
else:
    accesslog = "-"
# client "METHOD /path?query HTTP/1.1" status bytes duration
access_log_format: str = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'

# --- Metrics -------------------------------------------------------------------------------------
# Each worker process counts its requests in files here and /metrics adds them all up
# (prometheus_client's multiprocess mode). Set before any worker imports prometheus_client;
# a fresh directory per server start, so counts from a previous run never linger.
if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
    _METRICS_DIR = tempfile.mkdtemp(
        prefix="ldis-metrics-", dir=_SHM if Path(_SHM).is_dir() else None
    )
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _METRICS_DIR

    def on_exit(server: Any) -> None:
        shutil.rmtree(_METRICS_DIR, ignore_errors=True)


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


# --- Process naming ------------------------------------------------------------------------------
proc_name: str = "ldis-web"
