"""How the panel grades a case: the criteria national guidance names, a 5 x 5 risk rating
(severity of harm x likelihood) read as red / amber / green, and the decision it leads to.

Each panel member grades on their own; `panel_view` puts the grades side by side and shows
where they agree, so the discussion starts from the differences rather than a blank page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum, StrEnum
from statistics import median
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints


class Level(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"


class Spread(StrEnum):
    """Could it spread via the internet (online markets, social media)?"""

    no = "no"
    possible = "possible"
    likely = "likely"


class SourceKind(StrEnum):
    direct = "direct"  # from people who use drugs, or a sample tested
    second_hand = "second_hand"  # heard from someone who heard it


class Confirmation(StrEnum):
    confirmed = "confirmed"  # forensic / laboratory confirmed
    presumptive = "presumptive"  # test strip, reagent, clinical picture
    none = "none"


class Severity(IntEnum):
    negligible = 1
    minor = 2
    moderate = 3
    major = 4
    catastrophic = 5  # deaths or life-threatening harm


class Likelihood(IntEnum):
    rare = 1
    unlikely = 2
    possible = 3
    likely = 4
    almost_certain = 5


class Rag(StrEnum):
    red = "red"
    amber = "amber"
    green = "green"


class Decision(StrEnum):
    no_further_action = "no_further_action"
    information_only = "information_only"  # share for information only
    formal_alert = "formal_alert"


DECISION_LABELS = {
    Decision.no_further_action: "No further action",
    Decision.information_only: "Share for information only",
    Decision.formal_alert: "Issue a formal alert",
}

Reasons = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]


class GradeInput(BaseModel):
    """One panel member's grade of one signal or report."""

    model_config = ConfigDict(extra="forbid")

    local_relevance: Level
    internet_spread: Spread
    source: SourceKind
    plausibility: Level
    confirmation: Confirmation
    severity: Severity
    likelihood: Likelihood
    recommendation: Decision
    reasons: Reasons


def risk_score(severity: Severity, likelihood: Likelihood) -> int:
    return int(severity) * int(likelihood)


def rag(severity: Severity, likelihood: Likelihood) -> Rag:
    """The NHS-style 5 x 5 matrix: 15-25 red, 8-12 amber, 1-6 green (no score is 7, 13, 14)."""
    score = risk_score(severity, likelihood)
    if score >= 15:
        return Rag.red
    if score >= 8:
        return Rag.amber
    return Rag.green


@dataclass(frozen=True)
class PanelView:
    grades: int
    median_score: float
    rag: Rag  # of the median score
    recommendations: dict[Decision, int]
    unanimous: bool
    # Criteria on which the members differ, to talk about first.
    disagreements: tuple[str, ...]


CRITERIA = (
    "local_relevance",
    "internet_spread",
    "source",
    "plausibility",
    "confirmation",
    "severity",
    "likelihood",
)


def _rag_of_score(score: float) -> Rag:
    if score >= 15:
        return Rag.red
    if score >= 8:
        return Rag.amber
    return Rag.green


def panel_view(grades: list[GradeInput]) -> PanelView | None:
    if not grades:
        return None
    scores = [risk_score(g.severity, g.likelihood) for g in grades]
    middle = float(median(scores))
    counts = {d: sum(1 for g in grades if g.recommendation is d) for d in Decision}
    disagreements = tuple(name for name in CRITERIA if len({getattr(g, name) for g in grades}) > 1)
    return PanelView(
        grades=len(grades),
        median_score=middle,
        rag=_rag_of_score(middle),
        recommendations=counts,
        unanimous=max(counts.values()) == len(grades),
        disagreements=disagreements,
    )


class DecisionInput(BaseModel):
    """The panel's decision on a case; the RAG defaults to that of the grades' median."""

    model_config = ConfigDict(extra="forbid")

    decision: Decision
    reasons: Reasons
    rag: Rag | None = None


RAG_LABELS = {Rag.red: "Red", Rag.amber: "Amber", Rag.green: "Green"}

# Every case gets a response (a decision) within 48 hours of being seen; urgent ones (a red
# signal, a report naming a red-list substance) within hours.
RESPONSE_HOURS = 48
URGENT_RESPONSE_HOURS = 4


def response_due(first_seen: datetime, urgent: bool) -> datetime:
    """When the panel's response to a case first seen at `first_seen` is due."""
    return first_seen + timedelta(hours=URGENT_RESPONSE_HOURS if urgent else RESPONSE_HOURS)


def is_overdue(due: datetime, now: datetime, responded_at: datetime | None) -> bool:
    """Still waiting for the panel's response after it was due (answered cases are not)."""
    return responded_at is None and now > due
