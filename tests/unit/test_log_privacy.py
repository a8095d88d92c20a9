"""Personal data never in logs: the masking of e-mail addresses and phone numbers, the filter
and the record factory `install()` puts in place, through handlers and formatters as the
web server and Celery configure them. (The real processes' logs: tests/integration/
test_privacy.py.)"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from ldis.logging_privacy import (
    EMAIL_MASK,
    PHONE_MASK,
    PersonalDataFilter,
    install,
    installed,
    mask,
    uninstall,
)

ADDRESSES = [
    "duty.desk@example.org",
    "Jo.Bloggs+alerts@nhs.net",
    "a@b.co.uk",
]
NUMBERS = [
    "+447700900123",
    "+44 7700 900123",
    "+44 (0)7700 900123",
    "0044 7700 900123",
    "07700 900123",
    "07700900123",
    "07700-900-123",
    "020 7946 0000",
    "0113 496 0000",
    "(01632) 960123",
    "+15005550006",
]


@pytest.mark.parametrize("address", ADDRESSES)
def test_email_addresses_are_masked(address: str) -> None:
    assert mask(f"sent to {address}, then retried") == f"sent to {EMAIL_MASK}, then retried"
    assert mask(f"<{address}>: Recipient address rejected") == (
        f"<{EMAIL_MASK}>: Recipient address rejected"
    )


@pytest.mark.parametrize("number", NUMBERS)
def test_phone_numbers_are_masked(number: str) -> None:
    assert mask(f"text to {number} failed") == f"text to {PHONE_MASK} failed"
    assert mask(f"{{'To': '{number}'}}") == f"{{'To': '{PHONE_MASK}'}}"


def test_url_encoded_addresses_and_numbers_are_masked() -> None:
    # The twilio client logs its query strings; mail APIs put addresses in URLs too.
    line = "GET /2010-04-01/Messages.json?To=%2B447700900123&From=duty%40example.org&Page=2"
    assert mask(line) == f"GET /2010-04-01/Messages.json?To={PHONE_MASK}&From={EMAIL_MASK}&Page=2"
    form = "GET /healthz?phone=07700%20900123&other=07700+900123 HTTP/1.1"
    assert mask(form) == f"GET /healthz?phone={PHONE_MASK}&other={PHONE_MASK} HTTP/1.1"


@pytest.mark.parametrize(
    "ordinary",
    [
        "alert 12 v2 sent at 2026-11-21T23:40:00+00:00 in 0.0123456 s",
        "task 5f0e2c1a-0123-4567-89ab-0123456789ab succeeded in 0.05s",
        "delivery 1234567 of 100000 queued; report R-ABCD2345EF; LDIS-12-v3",
        '127.0.0.1 "GET /healthz HTTP/1.1" 200 2 1ms',
        "twilio refused delivery-12: HTTP 400, code 21211 (permanent)",
        "message SM0123456789abcdef0123456789abcdef; sha 0123456789abcdef0123",
        "sender ldis@localhost",
        "accepted 3379, duplicate 0, rejected 0 (1.6 s)",
    ],
)
def test_ordinary_log_lines_are_left_alone(ordinary: str) -> None:
    assert mask(ordinary) == ordinary


@pytest.fixture
def handler() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger with a stream handler and a formatter as gunicorn and Celery set them up."""
    stream = io.StringIO()
    out = logging.StreamHandler(stream)
    out.setFormatter(logging.Formatter("[%(levelname)s/%(name)s] %(message)s"))
    logger = logging.getLogger("tests.log_privacy")
    logger.handlers, logger.propagate = [out], False
    logger.setLevel(logging.DEBUG)
    yield logger, stream
    logger.handlers = []
    uninstall()


def test_install_masks_every_record_message_arguments_and_traceback(
    handler: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = handler
    install()
    install()  # twice is the same as once
    assert installed()
    logger.info("sms to %s failed", "+447700900123")
    logger.warning("mail to %(to)s bounced", {"to": "duty.desk@example.org"})
    logger.info("-- BEGIN Twilio API Request -- Query Params: %s", {"To": "07700 900123"})
    try:
        raise ValueError("Key (email)=(jo@example.org) already exists; phone 07700900123")
    except ValueError:
        logger.exception("could not add the contact")
    logger.info("stack follows", stack_info=True)
    written = stream.getvalue()
    for secret in ("7700900123", "900123", "duty.desk", "example.org", "jo@"):
        assert secret not in written, written
    assert written.count(PHONE_MASK) >= 3 and EMAIL_MASK in written
    assert "ValueError" in written and "could not add the contact" in written


def test_without_install_nothing_changes(handler: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = handler
    assert not installed()
    logger.info("sms to %s", "+447700900123")
    assert "+447700900123" in stream.getvalue()


def test_the_filter_masks_records_passing_a_handler(
    handler: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = handler
    logger.handlers[0].addFilter(PersonalDataFilter())
    logger.error("escalation to %s and %s", "backup@example.org", "+44 7700 900456")
    assert stream.getvalue().strip().endswith(f"escalation to {EMAIL_MASK} and {PHONE_MASK}")
