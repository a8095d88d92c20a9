"""The worker process's container, built once per process after the fork (never before it,
so no database connection is shared between prefork children)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from ldis import telemetry
from ldis.bootstrap import Container, build
from ldis.services.ports import Sender
from workers.channels import build_senders

_state: dict[int, tuple[Container, Mapping[str, Sender]]] = {}


def runtime() -> tuple[Container, Mapping[str, Sender]]:
    pid = os.getpid()
    if pid not in _state:
        _state.clear()
        container = build()
        telemetry.use(telemetry.for_settings(container.settings))  # provider outcomes
        _state[pid] = (container, build_senders(container.settings, container.db))
    return _state[pid]
