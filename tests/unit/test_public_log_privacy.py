"""The access log line of the public report form carries no client address; other lines
keep theirs (operators need them against abuse of the staff doors)."""

from __future__ import annotations

import logging

from ldis.logging_privacy import mask_record

FORMAT = '%(h)s "%(r)s" %(s)s'


def _line(path: str) -> str:
    atoms = {"h": "203.0.113.9", "r": f"POST {path} HTTP/1.1", "s": "302", "U": path}
    record = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, FORMAT, (), None)
    record.args = atoms  # as gunicorn passes its atoms: one mapping
    return mask_record(record).getMessage()


def test_the_public_form_is_logged_without_the_address() -> None:
    assert _line("/report") == '- "POST /report HTTP/1.1" 302'
    assert _line("/report/thanks").startswith("- ")


def test_other_paths_keep_the_address() -> None:
    assert _line("/login").startswith("203.0.113.9 ")
    assert _line("/reports/new/near_miss").startswith("203.0.113.9 ")
