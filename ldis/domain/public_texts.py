"""The words the public sees: the report form, the thank-you, the replies to texts.

Each text ships with a default written in harm-reduction language (no stigma, no threats,
no "abuse" or "addict", never a promise of anything police-related), and the panel may
change it (`/panel/public-texts`). Texts sent by SMS are kept short and to GSM-7
characters where possible; `{area}`, `{areas}` and `{title}` are the only placeholders.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

from ldis.domain.reports import plain_text


@dataclass(frozen=True)
class TextSpec:
    label: str
    default: str
    max_length: int
    placeholders: frozenset[str] = frozenset()
    sms: bool = False


SAFER = "Don't use alone, start low, go slow, carry naloxone. Overdose? Call 999."

TEXTS: dict[str, TextSpec] = {
    "form_intro": TextSpec(
        "Report form: the words at the top",
        "Tell us about drugs that caused harm or felt wrong, so we can warn others. "
        "You do not need to give your name. Please do not write names, phone numbers "
        "or addresses. We do not keep your IP address.",
        1000,
    ),
    "form_thanks": TextSpec(
        "Report form: the thank-you page",
        "Thank you. Your report helps keep people safe. A team of drug workers will read it. "
        f"{SAFER}",
        1000,
    ),
    "sms_report_thanks": TextSpec(
        "Text reply: after a report",
        f"Thank you, your report helps keep people safe. {SAFER}",
        306,
        sms=True,
    ),
    "sms_report_refused": TextSpec(
        "Text reply: a report with a name, number or address in it",
        "Thank you. We could not save your report because it had a name, phone number or "
        "address in it. Please send it again without them. We only need to know about the drugs.",
        306,
        sms=True,
    ),
    "sms_report_empty": TextSpec(
        "Text reply: REPORT with nothing after it",
        "Please say what happened after the word REPORT, for example: REPORT white pills "
        "sold as diazepam in the town centre, much stronger than usual.",
        306,
        sms=True,
    ),
    "sms_help": TextSpec(
        "Text reply: HELP",
        "Drug alerts: text REPORT and what happened to tell us about bad drugs (no names). "
        "Text JOIN and your area for alerts. Reply STOP to stop. Overdose? Call 999.",
        306,
        sms=True,
    ),
    "sms_join_confirm": TextSpec(
        "Text reply: JOIN, asking to confirm",
        "You asked for drug alerts for {area}. Reply YES to start them. Text STOP at any time "
        "to stop.",
        306,
        frozenset({"area"}),
        sms=True,
    ),
    "sms_joined": TextSpec(
        "Text reply: subscription confirmed",
        "You will now get drug alerts for {area}. Text STOP at any time to stop. {safer}".replace(
            "{safer}", SAFER
        ),
        306,
        frozenset({"area"}),
        sms=True,
    ),
    "sms_join_unknown": TextSpec(
        "Text reply: JOIN with an area we do not know",
        "Sorry, we did not recognise that area. Text JOIN and one of: {areas}",
        306,
        frozenset({"areas"}),
        sms=True,
    ),
    "sms_withdrawn": TextSpec(
        "Text to subscribers: a public alert is withdrawn",
        'Drug alert withdrawn: "{title}". Please stop sharing it. ' + SAFER,
        306,
        frozenset({"title"}),
        sms=True,
    ),
}

_FIELD = string.Formatter()


def placeholders_in(text: str) -> set[str]:
    try:
        return {name for _, name, _, _ in _FIELD.parse(text) if name is not None}
    except ValueError:
        return {"{"}


def check_text(key: str, text: str) -> str | None:
    """What is wrong with `text` for `key`, or None when it may be saved."""
    spec = TEXTS.get(key)
    if spec is None:
        return f"unknown text {key!r}"
    cleaned = text.strip()
    if not cleaned:
        return "write the text (or reset it to the default)"
    if len(cleaned) > spec.max_length:
        return f"keep it under {spec.max_length} characters (it has {len(cleaned)})"
    try:
        plain_text(cleaned)
    except ValueError as exc:
        return str(exc)
    unknown = placeholders_in(cleaned) - spec.placeholders
    if unknown:
        allowed = ", ".join("{" + p + "}" for p in sorted(spec.placeholders)) or "none"
        return f"only these placeholders can be used: {allowed}"
    if spec.sms and re.search(r"https?://", cleaned) is None and len(cleaned) < 10:
        return "a text this short will not help anyone; say a little more"
    return None


def fill(text: str, **values: str) -> str:
    """The text with its placeholders filled (unknown ones left as written)."""
    for name, value in values.items():
        text = text.replace("{" + name + "}", value)
    return text
