"""SMS segment counting against the GSM-7 / UCS-2 rules, on the edge cases that bite."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ldis.domain.sms import GSM7_BASIC, GSM7_EXTENDED, SmsEncoding, sms_length


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("", SmsEncoding.gsm7, 0, 0),
        ("a" * 160, SmsEncoding.gsm7, 160, 1),
        ("a" * 161, SmsEncoding.gsm7, 161, 2),
        ("a" * 306, SmsEncoding.gsm7, 306, 2),
        ("a" * 307, SmsEncoding.gsm7, 307, 3),
        ("€" * 80, SmsEncoding.gsm7, 160, 1),  # each € is escape + char
        ("€" * 81, SmsEncoding.gsm7, 162, 2),
        # 152 septets then a 2-septet char: it cannot straddle the part boundary.
        ("a" * 152 + "€" + "a" * 10, SmsEncoding.gsm7, 164, 2),
        ("a" * 152 + "€" + "a" * 152, SmsEncoding.gsm7, 306, 3),
        ("Don\u2019t use alone", SmsEncoding.ucs2, 15, 1),  # curly apostrophe
        ("a" * 70, SmsEncoding.gsm7, 70, 1),
        ("\u2019" + "a" * 69, SmsEncoding.ucs2, 70, 1),
        ("\u2019" + "a" * 70, SmsEncoding.ucs2, 71, 2),
        ("😀" * 35, SmsEncoding.ucs2, 70, 1),  # emoji are two UTF-16 units
        ("😀" * 36, SmsEncoding.ucs2, 72, 2),
        # 66 units then an emoji: the surrogate pair moves whole to the next part.
        ("\u2019" + "a" * 65 + "😀" + "a" * 10, SmsEncoding.ucs2, 78, 2),
        ("£5 @ Ä ñ ü à É ß", SmsEncoding.gsm7, 16, 1),  # in the basic table
        # An escape that ends exactly on the 160-septet limit still fits one segment.
        ("a" * 158 + "€", SmsEncoding.gsm7, 160, 1),
        ("a" * 159 + "€", SmsEncoding.gsm7, 161, 2),
        # 151 + 2 fills the first part exactly; nothing moves.
        ("a" * 151 + "€" + "a" * 153, SmsEncoding.gsm7, 306, 2),
        # 306 septets, which naively fit 2 parts, need 3 once the escape cannot split.
        ("a" * 152 + "{" + "a" * 152, SmsEncoding.gsm7, 306, 3),
        ("a" * 459, SmsEncoding.gsm7, 459, 3),
        ("a" * 460, SmsEncoding.gsm7, 460, 4),
        ("a" * 70 + "\u2019", SmsEncoding.ucs2, 71, 2),
        # An emoji that takes the 70th and 71st unit makes a second segment.
        ("\u2019" + "a" * 68 + "😀", SmsEncoding.ucs2, 71, 2),
        ("\u2019" + "a" * 67 + "😀", SmsEncoding.ucs2, 70, 1),
        # 134 units naively fit 2 x 67; the pair cannot split, so it takes 3.
        ("\u2019" + "a" * 65 + "😀" + "a" * 66, SmsEncoding.ucs2, 134, 3),
        # In UCS-2 an extension character is one unit like any other.
        ("\u2019" + "€" * 69, SmsEncoding.ucs2, 70, 1),
        ("\n" * 160, SmsEncoding.gsm7, 160, 1),  # line breaks are GSM-7, one septet each
    ],
)
def test_segments(text: str, encoding: SmsEncoding, units: int, segments: int) -> None:
    length = sms_length(text)
    assert (length.encoding, length.units, length.segments) == (encoding, units, segments)


@pytest.mark.parametrize("char", sorted(GSM7_EXTENDED))
def test_every_extension_character_costs_two_septets(char: str) -> None:
    length = sms_length("a" + char)
    assert (length.encoding, length.units) == (SmsEncoding.gsm7, 3)
    assert sms_length("a" * 158 + char).segments == 1  # 160 septets: one message
    assert sms_length("a" * 159 + char).segments == 2
    assert sms_length("a" * 152 + char + "a" * 152).segments == 3


@pytest.mark.parametrize("char", ["\u201c", "\u201d", "\u2018", "\u2014", "\u2013", "\u2026", "`"])
def test_typographic_characters_are_not_gsm7(char: str) -> None:
    length = sms_length("Carry naloxone" + char)
    assert length.encoding is SmsEncoding.ucs2 and length.non_gsm == (char,)


def test_the_characters_that_forced_ucs2_are_named_once() -> None:
    length = sms_length("Carry naloxone \u2014 don\u2019t use alone\u2019")
    assert length.non_gsm == ("\u2014", "\u2019")
    assert sms_length("plain").non_gsm == ()


def test_warning_over_three_segments() -> None:
    assert not sms_length("a" * 459).too_long  # 3 x 153
    assert sms_length("a" * 460).too_long


@given(st.text(alphabet=sorted(GSM7_BASIC), max_size=1000))
def test_plain_gsm_text_needs_ceiling_of_153(text: str) -> None:
    length = sms_length(text)
    expected = 0 if not text else 1 if len(text) <= 160 else -(-len(text) // 153)
    assert (length.encoding, length.segments) == (SmsEncoding.gsm7, expected)


@given(st.text(max_size=600))
def test_any_text_fits_in_its_segments(text: str) -> None:
    length = sms_length(text)
    per_part = 153 if length.encoding is SmsEncoding.gsm7 else 67
    assert length.units <= max(length.segments * per_part, 160 if length.segments == 1 else 0)
    assert (length.segments == 0) == (text == "")
