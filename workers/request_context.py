"""The request id travels with every task: the sender puts the current one in a message
header, the worker binds it (with the task's id and name) for the task's log lines.

A task sent by a task (fan-out sends delivery batches) passes the id on the same way, so
every line a web request causes, in whichever process, carries its id. Tasks with no request
behind them (the scheduler's) log their task id only. Connected once, on import, by
`workers.celery_factory` (so every process that sends or runs tasks has it).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Mapping
from typing import Any

from celery.signals import before_task_publish, task_postrun, task_prerun

from ldis import log_context

HEADER = "ldis_request_id"

# Task id -> the token that undoes its binding (a prefork child runs one task at a time; a
# thread pool several, each in its own context).
_tokens: dict[str, contextvars.Token[Mapping[str, str]]] = {}


def _add_request_id(headers: dict[str, Any] | None = None, **_: Any) -> None:
    request_id = log_context.request_id()
    if headers is not None and request_id:
        headers[HEADER] = request_id


def _bind(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    if task_id is None or task is None:
        return
    request = task.request
    # Protocol 2 puts custom headers on the request context itself; older senders nest them.
    request_id = getattr(request, HEADER, None) or (request.headers or {}).get(HEADER)
    fields = {"task_id": task_id, "task": task.name}
    valid = log_context.valid_request_id(request_id)
    if valid:
        fields["request_id"] = valid
    _tokens[task_id] = log_context.bind(**fields)


def _unbind(task_id: str | None = None, **_: Any) -> None:
    token = _tokens.pop(task_id or "", None)
    if token is not None:
        with contextlib.suppress(ValueError):  # bound in another context (a thread pool)
            log_context.reset(token)


before_task_publish.connect(_add_request_id, weak=False)
task_prerun.connect(_bind, weak=False)
task_postrun.connect(_unbind, weak=False)
