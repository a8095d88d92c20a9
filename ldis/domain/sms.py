"""How many SMS segments a text costs: GSM-7 or UCS-2, by the rules of GSM 03.38 / 03.40.

One curly quote or emoji forces the whole message into UCS-2, cutting a segment from 160
characters to 70, so the panel sees the count and which characters caused it before a
message goes to hundreds of phones. Long messages are sent in parts with a header, leaving
153 septets (GSM-7) or 67 UTF-16 units (UCS-2) per part, and a part never splits an escape
sequence or a surrogate pair.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# GSM 03.38 default alphabet (the escape character itself is not typeable, so left out).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: each costs two septets (escape + character).
GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")

SINGLE_GSM7, PART_GSM7 = 160, 153
SINGLE_UCS2, PART_UCS2 = 70, 67
WARN_OVER_SEGMENTS = 3


class SmsEncoding(StrEnum):
    gsm7 = "GSM-7"
    ucs2 = "UCS-2"


@dataclass(frozen=True)
class SmsLength:
    encoding: SmsEncoding
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    segments: int
    # Characters outside GSM-7 that forced UCS-2, in order of first appearance.
    non_gsm: tuple[str, ...]

    @property
    def too_long(self) -> bool:
        return self.segments > WARN_OVER_SEGMENTS


def _gsm7_cost(char: str) -> int | None:
    if char in GSM7_BASIC:
        return 1
    if char in GSM7_EXTENDED:
        return 2
    return None


def _segments(costs: list[int], single: int, part: int) -> int:
    """Parts needed when no item may straddle a boundary (escapes, surrogate pairs)."""
    total = sum(costs)
    if total == 0:
        return 0
    if total <= single:
        return 1
    segments, used = 1, 0
    for cost in costs:
        if used + cost > part:
            segments += 1
            used = 0
        used += cost
    return segments


def sms_length(text: str) -> SmsLength:
    gsm_costs = [_gsm7_cost(char) for char in text]
    if all(cost is not None for cost in gsm_costs):
        costs = [cost for cost in gsm_costs if cost is not None]
        return SmsLength(SmsEncoding.gsm7, sum(costs), _segments(costs, SINGLE_GSM7, PART_GSM7), ())
    non_gsm = tuple(
        dict.fromkeys(c for c, cost in zip(text, gsm_costs, strict=True) if cost is None)
    )
    units = [len(char.encode("utf-16-le")) // 2 for char in text]  # 2 for astral (emoji)
    return SmsLength(
        SmsEncoding.ucs2, sum(units), _segments(units, SINGLE_UCS2, PART_UCS2), non_gsm
    )
