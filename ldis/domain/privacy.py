"""The privacy guard: reports are about drugs, not people.

Free text in a report (notes, harms, settings) is read by panels and may end up in alerts, so
it must not identify anyone. This module only *finds* what looks personal and says what to
remove; it never rewrites text, because a silently altered report is worse than a refused one.

Each rule is tuned against ordinary drug report language: weights ("0.25 g"), pill markings
("OC 80"), times ("23:40"), lab results, the date a sample was obtained, and area-level
outward postcodes ("YO1") must pass untouched.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import phonenumbers

Kind = Literal[
    "name_after_title",
    "date_of_birth",
    "phone_number",
    "email_address",
    "nhs_number",
    "postcode",
]

# When two rules find overlapping text, the more specific one names it: an NHS number passes a
# check digit, so it wins over the phone matcher seeing ten digits; an e-mail address wins over
# digits inside it.
_PRIORITY: tuple[Kind, ...] = (
    "email_address",
    "nhs_number",
    "date_of_birth",
    "phone_number",
    "postcode",
    "name_after_title",
)

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
    """Something that may identify a person: what kind, the text, and where it is."""

    kind: Kind
    excerpt: str
    start: int
    end: int


# --- names after titles --------------------------------------------------------------------

# Titles must be written as titles: "MS" is mass spectrometry and "ms" milliseconds, so only
# the title-case forms count, plus unambiguous capitals (MR, MRS, MISS).
_NAME_WORD = r"[A-ZÀ-ÖØ-Þ][^\W\d_]*(?:['\u2019-][^\W\d_]+)*"
_TITLED_NAME = re.compile(
    r"(?<![\w.])(?:Mrs|Mr|Ms|Miss|Mx|Dr|Sir|Lady|MRS|MR|MISS)\b\.?[ \t]+"
    rf"{_NAME_WORD}(?:[ \t]+{_NAME_WORD}){{0,2}}"
)
# Pills are named like people ("Mr Blue", "Dr Pepper" logos). A name is let through only when
# the report says it is a pill: a pill word right after it ("Mr Blue pills", "Dr Pepper logo")
# or a marking phrase right before it ("logo: Dr Pepper", "sold as Mr Blue"). Trade-off: a
# bare "Mr Blue" is flagged, and the message says how to mark it as a logo; a real person
# written as "Mr Brown pills" slips through, which needs an odd sentence to happen.
_PILL_WORDS = frozenset(
    {
        "pill",
        "pills",
        "tablet",
        "tablets",
        "tab",
        "tabs",
        "logo",
        "logos",
        "press",
        "presses",
        "pressed",
        "brand",
        "branded",
        "stamp",
        "stamped",
        "design",
        "batch",
        "bar",
        "bars",
    }
)
_PILL_BEFORE = re.compile(
    r"(?:\blogos?|\bstamped(?:\s+with)?|\bmarked(?:\s+with)?|\bembossed(?:\s+with)?|\bbranded"
    r"|\bsold\s+as|\bpressed\s+as|\bpills?|\btablets?)\s*[:\-\u2013]?\s*['\"\u2018\u201c]?\s*$",
    re.IGNORECASE,
)
_NEXT_WORD = re.compile(r"['\"\u2019\u201d)]*\s*([^\W\d_]+)")


def _is_pill_name(text: str, start: int, end: int) -> bool:
    words = [word.casefold() for word in re.findall(r"[^\W\d_]+", text[start:end])[1:]]
    following = _NEXT_WORD.match(text, end)
    if following:
        words.append(following.group(1).casefold())
    if _PILL_WORDS.intersection(words):
        return True
    return _PILL_BEFORE.search(text, max(0, start - 40), start) is not None


def _names(text: str) -> Iterable[Finding]:
    for found in _TITLED_NAME.finditer(text):
        if not _is_pill_name(text, found.start(), found.end()):
            yield Finding("name_after_title", found.group(), found.start(), found.end())


# --- dates of birth ------------------------------------------------------------------------

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_ORDINAL = r"(?:st|nd|rd|th)?"
_DATE = (
    r"(?:\d{1,2}[/.\-]\d{1,2}[/.\-](?:\d{4}|\d{2})"
    r"|\d{4}-\d{1,2}-\d{1,2}"
    rf"|(?:the\s+)?\d{{1,2}}{_ORDINAL}\s+(?:of\s+)?{_MONTH},?\s+\d{{2,4}}"
    rf"|{_MONTH}\s+\d{{1,2}}{_ORDINAL},?\s+\d{{4}}"
    rf"|{_MONTH}\s+\d{{4}}"
    r"|(?:19|20)\d{2})(?!\d)"
)
_DOB_PHRASE = r"(?:\bd\.?\s?o\.?\s?b\b\.?|\bdate\s+of\s+birth\b|\bborn\s+(?:on|in)\b)"
# A date is only personal next to a birth phrase: "obtained on 21/11/2026" is the report.
_DATE_OF_BIRTH = re.compile(
    rf"{_DOB_PHRASE}\s*[:=\-\u2013]?\s*(?:(?:is|was)\s+)?{_DATE}"
    rf"|(?<![\d/.\-]){_DATE}\s*[,;]?\s*(?:\(\s*{_DOB_PHRASE}\s*\)|{_DOB_PHRASE})",
    re.IGNORECASE,
)


def _dates_of_birth(text: str) -> Iterable[Finding]:
    for found in _DATE_OF_BIRTH.finditer(text):
        yield Finding("date_of_birth", found.group(), found.start(), found.end())


# --- phone numbers -------------------------------------------------------------------------

# Ofcom's drama ranges (07700 900xxx, 01632 960xxx) are "invalid" to libphonenumber, but a
# report quoting one still reads as a contact number, and tests and demos use them.
_DRAMA_NUMBER = re.compile(
    r"(?<![\d+])(?:(?:\+|00)44\s?(?:\(0\)\s?)?|0)(?:7700\s?900\s?\d{3}|1632\s?960\s?\d{3})(?!\d)"
)


# libphonenumber rejects a whole candidate that touches a date or time, so "(DOB 01/02/1990)
# 07911 123456" would hide the number. Dates and times are blanked (same length, so offsets
# hold) before matching; their middle group of one or two digits never occurs in a phone number.
_DATE_OR_TIME = re.compile(r"\d{1,4}[/.\-]\d{1,2}[/.\-]\d{1,4}|\d{1,2}:\d{2}(?::\d{2})?")


def _phone_numbers(text: str) -> Iterable[Finding]:
    masked = _DATE_OR_TIME.sub(lambda found: " " * len(found.group()), text)
    matcher = phonenumbers.PhoneNumberMatcher(masked, "GB", leniency=phonenumbers.Leniency.VALID)
    for found in matcher:
        yield Finding("phone_number", text[found.start : found.end], found.start, found.end)
    for drama in _DRAMA_NUMBER.finditer(text):
        yield Finding("phone_number", drama.group(), drama.start(), drama.end())


# --- e-mail addresses ----------------------------------------------------------------------

_EMAIL = re.compile(r"(?<![\w.+\-])[\w.+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+")


def _email_addresses(text: str) -> Iterable[Finding]:
    for found in _EMAIL.finditer(text):
        yield Finding("email_address", found.group(), found.start(), found.end())


# --- NHS numbers ---------------------------------------------------------------------------

_NHS_CANDIDATE = re.compile(r"(?<!\d)(?<!\d[.,])(\d{3})([ \-]?)(\d{3})\2(\d{4})(?![.,]?\d)")


def nhs_number_is_valid(digits: str) -> bool:
    """Ten digits whose last is the NHS modulus-11 check digit of the first nine."""
    if len(digits) != 10 or not digits.isascii() or not digits.isdigit():
        return False
    # Repeated digits (0000000000, 1111111111) pass the sum but are placeholders, not people.
    if len(set(digits)) == 1:
        return False
    total = sum(
        int(digit) * weight for digit, weight in zip(digits[:9], range(10, 1, -1), strict=True)
    )
    check = 11 - total % 11
    if check == 11:
        check = 0
    return check != 10 and check == int(digits[9])


def _nhs_numbers(text: str) -> Iterable[Finding]:
    for found in _NHS_CANDIDATE.finditer(text):
        if nhs_number_is_valid(found.group(1) + found.group(3) + found.group(4)):
            yield Finding("nhs_number", found.group(), found.start(), found.end())


# --- postcodes -----------------------------------------------------------------------------

# Full postcodes only: the outward code alone ("YO1", "LS6") is an area, which reports need.
_OUTWARD = (
    r"(?:[A-PR-UWYZ][0-9][0-9]?|[A-PR-UWYZ][A-HK-Y][0-9][0-9]?"
    r"|[A-PR-UWYZ][0-9][A-HJKPSTUW]|[A-PR-UWYZ][A-HK-Y][0-9][ABEHMNPRVWXY])"
)
_POSTCODE = re.compile(
    rf"\b(?:GIR ?0AA|(?P<outward>{_OUTWARD}) ?[0-9][ABD-HJLNP-UW-Z]{{2}})\b", re.IGNORECASE
)
_ORDINAL_INWARD = re.compile(r"(?:1st|2nd|3rd|[0-9]th)$")


def _postcodes(text: str) -> Iterable[Finding]:
    for found in _POSTCODE.finditer(text):
        code = found.group()
        # One case throughout, as people type postcodes; mixed case is ordinary prose.
        if not (code.isupper() or code.islower()):
            continue
        # "b12 2nd dose" is a vitamin and an ordinal, not a postcode.
        if code.islower() and _ORDINAL_INWARD.search(code):
            continue
        yield Finding("postcode", code, found.start(), found.end())


# --- the guard -----------------------------------------------------------------------------


def find_personal_identifiers(text: str) -> list[Finding]:
    """Everything in `text` that may identify a person, in reading order. Never raises."""
    candidates = [
        *_email_addresses(text),
        *_nhs_numbers(text),
        *_dates_of_birth(text),
        *_phone_numbers(text),
        *_postcodes(text),
        *_names(text),
    ]
    candidates.sort(key=lambda finding: (_PRIORITY.index(finding.kind), finding.start))
    kept: list[Finding] = []
    for finding in candidates:
        if all(finding.end <= other.start or finding.start >= other.end for other in kept):
            kept.append(finding)
    return sorted(kept, key=lambda finding: finding.start)


def _join(parts: list[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def describe(findings: Iterable[Finding]) -> str:
    """What to remove, for the reporter: "remove the phone number '07911 123456' and ...".

    Callers put their own lead-in first (intake: "reports are about drugs, not people: ").
    Returns "" when there is nothing to remove.
    """
    unique = list(dict.fromkeys((finding.kind, finding.excerpt) for finding in findings))
    if not unique:
        return ""
    items = [f"{DESCRIPTIONS[kind]} '{excerpt}'" for kind, excerpt in unique]
    message = f"remove {_join(items)}"
    postcodes = [excerpt for kind, excerpt in unique if kind == "postcode"]
    outward = _outward_code(postcodes[0]) if postcodes else None
    if outward:
        message += f" (the first half of a postcode, like '{outward}', is fine to keep)"
    if any(kind == "name_after_title" for kind, _ in unique):
        message += " (a pill logo is fine: write 'logo' or 'pills' after it)"
    return message


def _outward_code(postcode: str) -> str | None:
    found = _POSTCODE.fullmatch(postcode)
    return found.group("outward") if found else None
