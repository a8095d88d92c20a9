"""What each log line says it belongs to: the request id (from the web request that caused
the work, carried into every Celery task it causes) and, in a worker, the task.

The fields live in a context variable, so each request (thread) and each task sees its own.
The web binds them per request (`ldis.web.request_ids`); the workers per task, from a
message header the sender added (`workers.request_context`). `ldis.log_setup` puts them on
every record.
"""

from __future__ import annotations

import contextvars
import re
import uuid
from collections.abc import Mapping
from types import MappingProxyType

from ldis.logging_privacy import mask

REQUEST_ID_HEADER = "X-Request-ID"
# Letters, digits and . _ : - only, at most 128: safe in a header, a log line and a query.
_VALID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

_NONE: Mapping[str, str] = MappingProxyType({})
_fields: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "ldis_log_fields", default=_NONE
)


def new_request_id() -> str:
    return uuid.uuid4().hex


def valid_request_id(value: str | None) -> str | None:
    """`value` when it is a well-formed id carrying no personal data (a phone number as an
    "id" would otherwise reach every log line), else None."""
    if not value or not _VALID.fullmatch(value) or mask(value) != value:
        return None
    return value


def bind(**fields: str) -> contextvars.Token[Mapping[str, str]]:
    """Set the fields for what runs from now on in this context; `reset(token)` undoes it."""
    return _fields.set({**_fields.get(), **fields})


def reset(token: contextvars.Token[Mapping[str, str]]) -> None:
    _fields.reset(token)


def current() -> Mapping[str, str]:
    return _fields.get()


def request_id() -> str | None:
    return _fields.get().get("request_id")
