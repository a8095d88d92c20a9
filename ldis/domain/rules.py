"""Rule signals: what in one report (or a few alike) is worth the panel's attention at once.

Three rules, each giving a `RuleHit` with a *key*: reports whose hits share a key join the
same open signal rather than opening new ones (ten lab results of the same nitazene are one
case for the panel, not ten).

- red list: a red-list substance detected (or, less surely, suspected);
- mismatch: sold as one thing, found to contain a more dangerous one, graded by the step
  up in danger between their classes;
- presentation: a near miss needing two or more naloxone doses, a death, or several
  reports naming the same appearance (colour plus markings) within a week.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from ldis.domain.substances import Match, Vocabulary


class Severity(StrEnum):
    red = "red"
    amber = "amber"
    green = "green"


SEVERITY_ORDER = {Severity.red: 0, Severity.amber: 1, Severity.green: 2}

# How dangerous a class is to someone expecting something else, on a rough 0-5 scale. What
# matters is the step between what was sold and what was found: oxycodone (3) that is really
# a nitazene (5) is two steps up; MDMA (2) that is really a cathinone (3) is one.
DANGER: dict[str, int] = {
    "nitazene": 5,
    "fentanyl_analogue": 5,
    "veterinary_sedative": 4,
    "synthetic_cannabinoid": 4,
    "designer_benzodiazepine": 3,
    "opioid": 3,
    "cathinone": 3,
    "benzodiazepine": 2,
    "sedative": 2,
    "dissociative": 2,
    "stimulant": 2,
    "psychedelic": 1,
    "cannabinoid": 1,
    "other": 1,
    "adulterant": 0,
    "cut": 0,
}
# A red-listed substance is dangerous whatever its class says (PMMA is a "stimulant").
RED_LIST_FLOOR = 4
APPEARANCE_WINDOW = timedelta(days=7)
APPEARANCE_REPORTS = 3
NALOXONE_DOSES = 2

RuleKind = Literal["red_list", "mismatch", "presentation"]


@dataclass(frozen=True)
class RuleHit:
    kind: RuleKind
    key: str
    severity: Severity
    summary: str


@dataclass(frozen=True)
class ReportFacts:
    """What the rules need to know of one report; built by the caller from what was stored."""

    kind: str
    area: str | None
    occurred_at: datetime | None
    sold_as: Match | None = None
    found: tuple[Match, ...] = ()  # lab results: confirmed
    suspected: tuple[Match, ...] = ()  # named by a witness: not confirmed
    naloxone_doses: int = 0
    died: bool = False
    appearance: str | None = None  # normalised "colour|markings", or None
    similar_recent: int = 0  # other reports with the same appearance within the window
    extras: dict[str, str] = field(default_factory=dict)


def danger(match: Match) -> int | None:
    if match.drug_class is None:
        return None
    tier = DANGER.get(match.drug_class, 1)
    return max(tier, RED_LIST_FLOOR) if match.red_list else tier


APPEARANCE_KEY_MAX = 200  # the width of the column that keeps it


def appearance_key(colour: str | None, markings: str | None) -> str | None:
    """Colour plus markings, normalised; None unless both are given (either alone is common).
    A key longer than APPEARANCE_KEY_MAX keeps its start and a digest of the whole."""
    if not colour or not markings:
        return None

    def norm(text: str) -> str:
        return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()

    if not (norm(colour) and norm(markings)):
        return None
    key = f"{norm(colour)}|{norm(markings)}"
    if len(key) <= APPEARANCE_KEY_MAX:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{key[: APPEARANCE_KEY_MAX - len(digest) - 1]}#{digest}"


def _red_list(facts: ReportFacts) -> list[RuleHit]:
    hits: dict[str, RuleHit] = {}
    for match, confirmed in [(m, True) for m in facts.found] + [
        (m, False) for m in facts.suspected
    ]:
        if not match.red_list or match.canonical is None:
            continue
        key = f"red_list:{match.canonical.lower()}"
        if key in hits and hits[key].severity is Severity.red:
            continue
        how = "detected" if confirmed else "suspected"
        where = f" in {facts.area}" if facts.area else ""
        hits[key] = RuleHit(
            "red_list",
            key,
            Severity.red if confirmed else Severity.amber,
            f"{match.canonical} ({(match.drug_class or 'unknown class').replace('_', ' ')}, "
            f"red list) {how}{where}",
        )
    return list(hits.values())


def _mismatch(facts: ReportFacts) -> list[RuleHit]:
    sold = facts.sold_as
    if sold is None or sold.canonical is None:
        return []  # an unknown "sold as" cannot be graded; the red-list rule still applies
    sold_tier = danger(sold)
    assert sold_tier is not None
    hits: list[RuleHit] = []
    for found in facts.found:
        tier = danger(found)
        if tier is None or found.canonical is None or found.canonical == sold.canonical:
            continue
        step = tier - sold_tier
        if step <= 0:
            continue
        severity = Severity.red if found.red_list or step >= 2 else Severity.amber
        hits.append(
            RuleHit(
                "mismatch",
                f"mismatch:{sold.canonical.lower()}>{found.canonical.lower()}",
                severity,
                f"sold as {sold.canonical}, contains {found.canonical} "
                f"({(found.drug_class or '').replace('_', ' ')}; {step} step"
                f"{'s' if step > 1 else ''} more dangerous)",
            )
        )
    return hits


def _presentation(facts: ReportFacts) -> list[RuleHit]:
    hits: list[RuleHit] = []
    where = facts.area or "unknown area"
    if facts.died:
        hits.append(
            RuleHit(
                "presentation",
                f"presentation:death:{where}",
                Severity.red,
                f"a death reported in {where}",
            )
        )
    if facts.naloxone_doses >= NALOXONE_DOSES:
        hits.append(
            RuleHit(
                "presentation",
                f"presentation:naloxone:{where}",
                Severity.amber,
                f"a near miss in {where} needed {facts.naloxone_doses} naloxone doses",
            )
        )
    if facts.appearance and facts.similar_recent + 1 >= APPEARANCE_REPORTS:
        colour, markings = facts.appearance.split("|", 1)
        hits.append(
            RuleHit(
                "presentation",
                f"presentation:appearance:{facts.appearance}",
                Severity.amber,
                f"{facts.similar_recent + 1} reports of {colour} '{markings}' within 7 days",
            )
        )
    return hits


def evaluate(facts: ReportFacts) -> list[RuleHit]:
    """Every rule hit for one report, most severe first."""
    hits = _red_list(facts) + _mismatch(facts) + _presentation(facts)
    return sorted(hits, key=lambda h: SEVERITY_ORDER[h.severity])


def facts_from_stored(
    kind: str,
    area: str | None,
    occurred_at: datetime | None,
    data: dict[str, object],
    vocabulary: Vocabulary,
    similar_recent: int = 0,
) -> ReportFacts:
    """Facts from a stored report's document (as `ReportBody.stored_data` wrote it)."""
    results = data.get("results")
    results = results if isinstance(results, list) else []
    found = tuple(
        vocabulary.lookup(str(r.get("substance", ""))) for r in results if isinstance(r, dict)
    )
    suspected_names = data.get("suspected_substances")
    suspected_names = suspected_names if isinstance(suspected_names, list) else []
    suspected = tuple(
        vocabulary.lookup(str(name)) for name in suspected_names if isinstance(name, str)
    )
    sold_raw = data.get("sold_as")
    appearance = data.get("appearance") if isinstance(data.get("appearance"), dict) else {}
    assert isinstance(appearance, dict)
    doses = data.get("naloxone_doses")
    return ReportFacts(
        kind=kind,
        area=area,
        occurred_at=occurred_at,
        sold_as=vocabulary.lookup(sold_raw) if isinstance(sold_raw, str) else None,
        found=found,
        suspected=suspected,
        naloxone_doses=doses if isinstance(doses, int) else 0,
        died=data.get("outcome") == "died",
        appearance=appearance_key(
            str(appearance.get("colour") or "") or None,
            str(appearance.get("markings") or "") or None,
        ),
        similar_recent=similar_recent,
    )
