"""Personal data never reaches a log: e-mail addresses and phone numbers are masked in
every log record the process makes, whoever logs it (ldis, Celery, gunicorn, the twilio
client logging its requests, an exception's text).

`install()` wraps the logging module's record factory, so each record is masked as it is
made: before any handler, formatter or filter sees it, whichever handlers the web server or
Celery configure later. It is called once per process: by `config/gunicorn.conf.py` (the
web) and, when Celery sets up logging, by `workers/celery_app.py` (the worker and the
scheduler). `PersonalDataFilter` does the same as a `logging.Filter`, for handlers of one's
own.

What is masked: e-mail addresses (also URL-encoded, `duty%40example.org`) become
`[email]`; phone numbers in international form (`+447700900123`, `+44 7700 900123`,
`0044 ...`, URL-encoded `%2B44...`) and UK national form (`07700 900123`,
`020 7946 0000`, `07700%20900123`) become `[phone]`. Digits inside longer tokens (ids, hashes, times) are
left alone. Access log lines of the public report form (`/report`) lose the client address.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Callable
from typing import Any

EMAIL_MASK = "[email]"
PHONE_MASK = "[phone]"

_EMAIL = re.compile(
    r"(?<![\w.+\-%])[\w.+\-%]*\w(?:@|%40)[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)+",
)
# Between digit groups: a space, dot or hyphen, also as URL-encoded ("%20", "+") in a query.
_SEP = r"(?:[ \t.\-+]|%20)?"
_PHONE = re.compile(
    r"(?<![\w+%.\-])(?:"
    # International: +44 7700 900123, +447700900123, 0044 ..., %2B44... (URL-encoded +).
    rf"(?:\+|%2[Bb]|00)[1-9]\d{{0,2}}{_SEP}(?:\(0\){_SEP})?\d(?:{_SEP}\d){{6,12}}"
    # UK national: 07700 900123, 07700900123, 020 7946 0000, (01632) 960123.
    rf"|\(?0\d{{2,4}}\)?{_SEP}\d{{3,4}}{_SEP}\d{{3,4}}"
    r")(?![\w])"
)


def mask(text: str) -> str:
    """`text` with every e-mail address and phone number replaced by a placeholder."""
    if not text:
        return text
    masked = _EMAIL.sub(EMAIL_MASK, text)
    return _PHONE.sub(PHONE_MASK, masked)


# Public doors (docs/public-reports.md): the web server's access log line of an anonymous
# report must not say which address sent it, or the log and the report's time together would.
ANONYMOUS_PATHS = ("/report",)
_ADDRESS_ATOMS = ("h", "{x-forwarded-for}i", "{x-real-ip}i", "{forwarded}i")


def _anonymous_request(record: logging.LogRecord) -> None:
    args = record.args
    if record.name != "gunicorn.access" or not isinstance(args, dict):
        return
    path = str(args.get("U", ""))
    if any(path == p or path.startswith(p + "/") for p in ANONYMOUS_PATHS):
        # A copy of gunicorn's own mapping (its class answers "-" for absent header atoms).
        anonymous = copy.copy(args)
        for atom in _ADDRESS_ATOMS:
            if atom in anonymous:
                anonymous[atom] = "-"
        record.args = anonymous


def mask_record(record: logging.LogRecord) -> logging.LogRecord:
    """Mask the record's message, its exception text and its stack in place (and drop the
    client address from the access log lines of the public report form)."""
    _anonymous_request(record)
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: keep both parts, masked, for the handler
        message = f"{record.msg} {record.args!r}"
    masked = mask(message)
    if masked != message:
        record.msg, record.args = masked, None
    if record.exc_info and not record.exc_text:
        # Formatted now, masked, and kept: formatters use exc_text when it is set.
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = mask(record.exc_text)
    if record.stack_info:
        record.stack_info = mask(record.stack_info)
    return record


class PersonalDataFilter(logging.Filter):
    """A filter that masks personal data in every record passing through (never drops one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        mask_record(record)
        return True


_INSTALLED = "_ldis_masks_personal_data"


def install() -> None:
    """Mask every log record this process makes from now on. Safe to call again."""
    previous: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()
    if getattr(previous, _INSTALLED, False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return mask_record(previous(*args, **kwargs))

    setattr(factory, _INSTALLED, True)
    setattr(factory, "previous", previous)  # noqa: B010 (read by uninstall)
    logging.setLogRecordFactory(factory)


def installed() -> bool:
    return bool(getattr(logging.getLogRecordFactory(), _INSTALLED, False))


def uninstall() -> None:
    """Undo `install` (for tests)."""
    current = logging.getLogRecordFactory()
    if getattr(current, _INSTALLED, False):
        logging.setLogRecordFactory(current.previous)  # type: ignore[attr-defined]
