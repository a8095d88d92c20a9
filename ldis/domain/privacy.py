"""The privacy guard: reports are about drugs, not people.

`find_personal_identifiers` finds names after titles, dates of birth, phone numbers, e-mail
addresses, NHS numbers and full postcodes in free text; it never changes the text. Intake
refuses a report with findings and tells the reporter what to remove.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import phonenumbers

Kind = Literal[
    "name_after_title", "date_of_birth", "phone_number", "email_address", "nhs_number", "postcode"
]

DESCRIPTIONS: dict[Kind, str] = {
    "name_after_title": "the name",
    "date_of_birth": "the date of birth",
    "phone_number": "the phone number",
    "email_address": "the e-mail address",
    "nhs_number": "the NHS number",
    "postcode": "the full postcode",
}


@dataclass(frozen=True)
class Finding:
    kind: Kind
    excerpt: str
    start: int
    end: int


# Pill logos borrow titles ("Dr Pepper", "Mr Blue"): a title before one of these words is a
# logo, not a person. Anything else after a title is treated as a name: a false alarm costs
# the reporter one edit, a leaked name cannot be unleaked.
_LOGO_WORDS = {
    "blue",
    "pepper",
    "brown",
    "green",
    "white",
    "pink",
    "red",
    "yellow",
    "orange",
    "purple",
    "black",
    "bean",
    "t",
    "clean",
    "freeze",
    "happy",
    "punisher",
    "tesla",
}
_TITLE = re.compile(r"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Sir|Lady)\b\.?\s+([A-Z][a-zA-Z'\-]+)")
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
_DATE = r"(?:\d{1,2}[/.\-]\d{1,2}[/.\-]\d{2,4}|\d{4}-\d{2}-\d{2}|\d{1,2}(?:st|nd|rd|th)?\s+[A-Za-z]{3,9}\s+\d{4})"
_DOB = re.compile(
    rf"\b(?:d\.?\s?o\.?\s?b\.?|date\s+of\s+birth|born(?:\s+(?:on|in))?)\s*[:\-]?\s*({_DATE}|\d{{4}})",
    re.IGNORECASE,
)
# Full UK postcode: outward code, space optional, inward code (digit + two letters).
_POSTCODE = re.compile(
    r"\b(?:GIR ?0AA|[A-PR-UWYZ][A-HK-Y]?\d[A-Z\d]? ?\d[ABD-HJLNP-UW-Z]{2})\b", re.IGNORECASE
)
_NHS = re.compile(r"(?<!\d)(\d{3})[ \-]?(\d{3})[ \-]?(\d{4})(?!\d)")
_DRAMA_MOBILE = re.compile(r"(?<!\d)(?:\+44\s?7700|07700)\s?900\s?\d{3}(?!\d)")


def nhs_number_is_valid(digits: str) -> bool:
    """NHS numbers end in a modulus-11 check digit."""
    if len(digits) != 10 or not digits.isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    check = 0 if check == 11 else check
    return check != 10 and check == int(digits[9])


def find_personal_identifiers(text: str) -> list[Finding]:
    findings: list[Finding] = []

    def add(kind: Kind, start: int, end: int) -> None:
        findings.append(Finding(kind, text[start:end], start, end))

    for match in _TITLE.finditer(text):
        if match.group(1).lower() not in _LOGO_WORDS:
            add("name_after_title", match.start(), match.end())
    for match in _DOB.finditer(text):
        add("date_of_birth", match.start(), match.end())
    for match in _EMAIL.finditer(text):
        add("email_address", match.start(), match.end())
    phone_spans: list[tuple[int, int]] = []
    for match in phonenumbers.PhoneNumberMatcher(text, "GB", phonenumbers.Leniency.VALID):
        phone_spans.append((match.start, match.end))
        add("phone_number", match.start, match.end)
    for match in _DRAMA_MOBILE.finditer(text):
        if not any(s <= match.start() < e for s, e in phone_spans):
            phone_spans.append((match.start(), match.end()))
            add("phone_number", match.start(), match.end())
    for match in _NHS.finditer(text):
        if nhs_number_is_valid("".join(match.groups())) and not any(
            s <= match.start() < e for s, e in phone_spans
        ):
            add("nhs_number", match.start(), match.end())
    for match in _POSTCODE.finditer(text):
        add("postcode", match.start(), match.end())
    return sorted(findings, key=lambda f: f.start)


def describe(findings: list[Finding]) -> str:
    """'remove the phone number '07911 123456' and the full postcode 'YO1 7HH''."""
    parts = [f"{DESCRIPTIONS[f.kind]} '{f.excerpt.strip()}'" for f in findings]
    if len(parts) > 1:
        listed = ", ".join(parts[:-1]) + " and " + parts[-1]
    else:
        listed = parts[0] if parts else "personal details"
    return f"remove {listed}"
