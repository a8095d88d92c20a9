"""Reports from the public: anyone, anonymous, by a web form or a text message.

A public report asks only what helps the panel judge a bad batch: what it was sold as,
what it looked like, roughly where (an area, never an address), when, and what happened.
It names no reporter and holds nothing about the device or number it came from; the
free text goes through the same privacy guard as staff reports. Public reports are not a
kind staff can file (they are not in `REPORT_KINDS`): they enter only through the public
doors, marked `origin` public and unverified.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ldis.domain.reports import AreaCode, LongText, ReportBody, Text, _check_moment
from ldis.domain.substances import Vocabulary
from ldis.domain.validation import parse

PUBLIC_KIND = "public"
Origin = Literal["public_web", "public_sms"]
ORIGINS: tuple[str, ...] = ("public_web", "public_sms")
MAX_STORY = 1000


class Effect(StrEnum):
    """What happened, in the words the form shows (reading age about 11)."""

    passed_out = "passed_out"
    naloxone = "naloxone"
    much_stronger = "much_stronger"
    breathing = "breathing"
    hard_to_wake = "hard_to_wake"
    hospital = "hospital"
    died = "died"
    other = "other"


EFFECT_LABELS: dict[Effect, str] = {
    Effect.passed_out: "Someone passed out quickly",
    Effect.naloxone: "Someone needed naloxone",
    Effect.much_stronger: "It was much stronger than usual",
    Effect.breathing: "Someone's breathing went slow or strange",
    Effect.hard_to_wake: "Someone was very hard to wake up",
    Effect.hospital: "Someone went to hospital",
    Effect.died: "Someone died",
    Effect.other: "Something else",
}
# Effects that mean a near miss: the panel's queue shows them amber at least.
SERIOUS = frozenset(
    {Effect.passed_out, Effect.naloxone, Effect.breathing, Effect.hard_to_wake, Effect.hospital}
)


class When(StrEnum):
    today = "today"
    yesterday = "yesterday"
    this_week = "this_week"
    earlier = "earlier"


WHEN_LABELS: dict[When, str] = {
    When.today: "Today",
    When.yesterday: "Yesterday",
    When.this_week: "In the last week",
    When.earlier: "More than a week ago",
}


def when_moment(when: When, now: datetime) -> datetime:
    """A rough moment for a rough answer: the clusters and windows need one."""
    back = {
        When.today: timedelta(0),
        When.yesterday: timedelta(days=1),
        When.this_week: timedelta(days=3),
        When.earlier: timedelta(days=14),
    }[when]
    return (now - back).astimezone(UTC).replace(microsecond=0)


class PublicAppearance(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    colour: Text | None = None
    shape: Text | None = None
    markings: Text | None = None
    packaging: Text | None = None


class PublicReport(ReportBody):
    """One anonymous report. `source.type` is the door (public_web or public_sms) and
    `source.reference` the form token or the text's MessageSid: a resend of the same
    form or a webhook retried by Twilio is the same report, never a second one."""

    kind_name = PUBLIC_KIND
    # A text may not say where; the panel still sees it (and the area's count does not).
    needs_area: ClassVar[bool] = False
    free_text_fields: ClassVar[tuple[str, ...]] = ("notes", "what_happened", "sold_as")

    area: AreaCode | None = None
    occurred_at: datetime
    sold_as: Text | None = None
    appearance: PublicAppearance = Field(default_factory=PublicAppearance)
    effects: list[Effect] = Field(default_factory=list, max_length=len(Effect))
    # Substances the text names, as written (found in SMS text; never asked for).
    suspected_substances: list[Text] = Field(default_factory=list, max_length=20)
    what_happened: LongText = Field(default="", max_length=MAX_STORY)

    _occurred = field_validator("occurred_at")(_check_moment)

    @field_validator("source")
    @classmethod
    def _public_door(cls, value: Any) -> Any:
        if getattr(value, "type", None) not in ORIGINS:
            raise ValueError(f"must be one of: {', '.join(ORIGINS)}")
        return value

    @field_validator("effects")
    @classmethod
    def _once_each(cls, value: list[Effect]) -> list[Effect]:
        return list(dict.fromkeys(value))

    def _area_needed(self) -> PublicReport:  # type: ignore[override]
        return self  # a text may not name an area: kept, and shown as "area unknown"

    def event_time(self) -> datetime | None:
        return self.occurred_at

    def free_text(self) -> dict[str, str]:
        texts = super().free_text()
        for name in PublicAppearance.model_fields:
            texts[f"appearance.{name}"] = getattr(self.appearance, name) or ""
        return texts

    def substance_names(self) -> list[tuple[str, str]]:
        names = [(f"suspected_substances.{i}", n) for i, n in enumerate(self.suspected_substances)]
        return names

    def stored_data(self) -> dict[str, Any]:
        data = super().stored_data()
        # The rules read a near miss's naloxone and outcome from these keys.
        data["outcome"] = "died" if Effect.died in self.effects else "unknown"
        return data


def parse_public(body: Any) -> PublicReport:
    """Validate a public report; ValidationFailed names each bad field."""
    return parse(PublicReport, body)


# --- text messages ---------------------------------------------------------------------------

CommandWord = Literal["report", "join"]


@dataclass(frozen=True)
class Command:
    word: CommandWord
    rest: str


_COMMAND = re.compile(r"^\s*(REPORT|JOIN)\b[\s:,.\-]*(.*)$", re.IGNORECASE | re.DOTALL)


def command(body: str) -> Command | None:
    """`REPORT <what happened>` or `JOIN <area>` (any case), or None for anything else."""
    found = _COMMAND.match(body)
    if found is None:
        return None
    word: CommandWord = "report" if found.group(1).upper() == "REPORT" else "join"
    return Command(word, " ".join(found.group(2).split()))


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def find_area(text: str, areas: Sequence[tuple[str, str]]) -> str | None:
    """The area a text names, by code or name (whole words, any case); the longest name
    wins, so "Leeds centre" beats "Leeds". None when it names none."""
    words = f" {_norm(text)} "
    best: tuple[int, str] | None = None
    for code, name in areas:
        for candidate in {_norm(code), _norm(name)}:
            named = bool(candidate) and f" {candidate} " in words
            if named and (best is None or len(candidate) > best[0]):
                best = (len(candidate), code)
    return best[1] if best else None


# Named in reports as what was given, not what was taken.
TREATMENTS = frozenset({"naloxone", "nalmefene", "flumazenil"})


def find_substances(text: str, vocabulary: Vocabulary, limit: int = 5) -> list[str]:
    """Substances a text names, as written (one to three words that the vocabulary knows
    exactly or by a synonym; spelling guesses are not trusted on free text)."""
    words = re.findall(r"[A-Za-z0-9][A-Za-z0-9\-]*", text)
    found: dict[str, str] = {}
    for size in (3, 2, 1):
        for start in range(len(words) - size + 1):
            written = " ".join(words[start : start + size])
            if len(written) < 3 or written.isdigit():
                continue
            match = vocabulary.lookup(written)
            treatment = (match.canonical or "").casefold() in TREATMENTS
            if match.canonical and match.how in ("exact", "synonym") and not treatment:
                found.setdefault(match.canonical, written)
    return list(found.values())[:limit]


def effects_in(text: str) -> list[Effect]:
    """Effects a text describes in everyday words ("went over", "narcan", "died")."""
    lowered = text.lower()
    rules: Iterable[tuple[Effect, str]] = (
        (Effect.died, r"\b(died|dead|passed away)\b"),
        (Effect.naloxone, r"\b(naloxone|narcan|nyxoid|prenoxad)\b"),
        (
            Effect.passed_out,
            r"\b(passed out|went over|went under|collapsed|overdosed?|o\.?d(?:'d|ed)?)\b",
        ),
        (Effect.much_stronger, r"\b(stronger|too strong|strong)\b"),
        (Effect.breathing, r"\b(breathing|not breathing|stopped breathing)\b"),
        (Effect.hospital, r"\b(hospital|a&e|ambulance)\b"),
    )
    return [effect for effect, pattern in rules if re.search(pattern, lowered)]
