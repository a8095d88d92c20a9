"""Contact details: mobile numbers in E.164, real e-mail addresses, a channel needs an address."""

from __future__ import annotations

import pytest

from ldis.domain.errors import ValidationFailed
from ldis.domain.recipients import ContactInput, normalise_phone
from ldis.domain.validation import parse


def test_uk_mobiles_become_e164() -> None:
    assert normalise_phone("07911 123456") == "+447911123456"
    assert normalise_phone("+44 7911 123456") == "+447911123456"
    assert normalise_phone("07700 900123") == "+447700900123"  # Ofcom drama range


@pytest.mark.parametrize(
    ("raw", "reason"),
    [("0113 496 0000", "landline"), ("not a number", "not a phone number"), ("07911", "valid")],
)
def test_bad_numbers_are_refused_with_a_reason(raw: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        normalise_phone(raw)


def test_contact_needs_an_address_for_each_channel() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse(ContactInput, {"name": "A", "channels": ["sms"], "email": "a@example.org"})
    assert caught.value.fields == {"channels": "sms needs a mobile number in phone"}


def test_contact_fields_are_validated() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse(ContactInput, {"name": "A", "channels": ["fax"], "email": "not-an-email"})
    assert set(caught.value.fields) == {"channels.0", "email"}
