"""Where log lines go and what they look like, the same in every process (web, worker, beat).

Everything goes to stderr, for systemd's journal or the container runtime to collect.
`LDIS_LOG_FORMAT=text` (the default, for `make run`) writes one readable line per record;
`json` writes one JSON object per line (python-json-logger) with `time`, `level`, `logger`,
`message`, and, when known, `request_id`, `task_id` and `task` (see `ldis.log_context`).
No e-mail address or phone number reaches either: `ldis.logging_privacy` masks every record
as it is made, and this module installs it too.
"""

from __future__ import annotations

import logging
import logging.config
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from ldis import log_context
from ldis.logging_privacy import install as mask_personal_data
from ldis.logging_privacy import mask
from ldis.settings import LogFormat, Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s"
JSON_RENAMES = {"asctime": "time", "levelname": "level", "name": "logger", "process": "pid"}
# The context fields every record carries ("-" in text when there is none).
CONTEXT_FIELDS = ("request_id", "task_id", "task")


class ContextFilter(logging.Filter):
    """Put the current request id and task on the record (never drops one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = log_context.current()
        for name in CONTEXT_FIELDS:
            if not hasattr(record, name):
                setattr(record, name, fields.get(name))
        return True


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, "request_id", None) is None:
            record.request_id = "-"
        return super().format(record)


class JsonLineFormatter(JsonFormatter):
    """One JSON object per line; context fields only when they have a value."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("rename_fields", JSON_RENAMES)
        kwargs.setdefault("timestamp", False)
        kwargs.setdefault("datefmt", "%Y-%m-%dT%H:%M:%S%z")
        super().__init__(JSON_FIELDS, *args, **kwargs)

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_data, record, message_dict)
        # The library formats a record's exception and stack itself (not from the masked
        # `exc_text`): mask them here too.
        for name in ("exc_info", "stack_info"):
            if isinstance(log_data.get(name), str | list):
                log_data[name] = _masked(log_data[name])
        for name in CONTEXT_FIELDS:
            if log_data.get(name) is None:
                log_data.pop(name, None)
            else:  # an id from outside: masked like any message
                log_data[name] = mask(str(log_data[name]))


def _masked(text: str | list[str]) -> str | list[str]:
    return mask(text) if isinstance(text, str) else [mask(line) for line in text]


def formatter_for(log_format: LogFormat) -> logging.Formatter:
    if log_format is LogFormat.json:
        return JsonLineFormatter()
    return TextFormatter(TEXT_FORMAT)


def dict_config(settings: Settings) -> dict[str, Any]:
    """A `logging.config.dictConfig` for this process (gunicorn takes it as `logconfig_dict`):
    one stderr handler on the root logger; gunicorn's error log passes its lines to it. Its
    access log is silenced: the app logs each request itself, with the request id
    (`ldis.web.request_ids`)."""
    level = settings.log_level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": ContextFilter}},
        "formatters": {
            "ldis": {"()": formatter_for, "log_format": settings.log_format},
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "ldis",
                "filters": ["context"],
            }
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": [], "propagate": True},
            "gunicorn.access": {"level": level, "handlers": [], "propagate": False},
        },
    }


def configure(settings: Settings) -> None:
    """Set up this process's logging (the worker and the scheduler call it from Celery's
    `setup_logging` signal; gunicorn applies `dict_config` itself)."""
    mask_personal_data()
    logging.config.dictConfig(dict_config(settings))
    logging.captureWarnings(True)  # Python's warnings as log lines too, not bare stderr text
