"""Addresses shown partly hidden, so a page reached by a forwarded link reveals little.

The self-service page opens from a link with no login: anyone the message was forwarded to
can open it. They see enough to recognise their own number ("07700 9•••23"), not to copy it.
"""

from __future__ import annotations

import phonenumbers

BULLET = "•"


def mask_phone(e164: str) -> str:
    """+447700900123 -> "07700 9•••23": the UK format, middle digits hidden."""
    try:
        shown = phonenumbers.format_number(
            phonenumbers.parse(e164, "GB"), phonenumbers.PhoneNumberFormat.NATIONAL
        )
    except phonenumbers.NumberParseException:
        shown = e164
    keep_start, keep_end = 7, 2
    if sum(ch.isdigit() for ch in shown) <= keep_end + 3:
        return BULLET * len(shown)
    head, middle, tail = shown[:keep_start], shown[keep_start:-keep_end], shown[-keep_end:]
    return head + "".join(BULLET if ch.isdigit() else ch for ch in middle) + tail


def mask_email(address: str) -> str:
    """duty.desk@example.org -> "d•••@example.org": the domain is kept, the name hidden."""
    local, at, domain = address.rpartition("@")
    if not at or not local:
        return BULLET * 3
    return f"{local[0]}{BULLET * 3}@{domain}"
