"""Rule signals on realistic reports."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ldis.domain.rules import Severity, evaluate, facts_from_stored
from ldis.domain.substances import Vocabulary

VOCAB = Vocabulary.load_default()
WHEN = datetime(2026, 11, 20, tzinfo=UTC)


def check(sold_as: str, *found: str, **extra: Any) -> list[tuple[str, Severity, str]]:
    data: dict[str, Any] = {
        "sold_as": sold_as,
        "results": [{"substance": name, "method": "lc-ms"} for name in found],
        **extra,
    }
    facts = facts_from_stored("drug_checking", "YORK-C", WHEN, data, VOCAB)
    return [(hit.kind, hit.severity, hit.summary) for hit in evaluate(facts)]


def test_fake_oxycodone_with_metonitazene_is_red_on_both_rules() -> None:
    hits = check("oxycodone", "metonitazene", "paracetamol")
    kinds = {(kind, severity) for kind, severity, _ in hits}
    assert kinds == {("red_list", Severity.red), ("mismatch", Severity.red)}
    mismatch = next(s for k, _, s in hits if k == "mismatch")
    assert mismatch == "sold as oxycodone, contains metonitazene (nitazene; 2 steps more dangerous)"


def test_heroin_with_xylazine() -> None:
    hits = check("heroin", "heroin", "xylazine", "caffeine")
    assert ("mismatch", Severity.red) in {(k, s) for k, s, _ in hits}
    assert any(k == "red_list" and "xylazine" in s for k, _, s in hits)


def test_diazepam_that_is_bromazolam() -> None:
    hits = check("diazepam", "bromazolam")
    assert {(k, s) for k, s, _ in hits} == {("red_list", Severity.red), ("mismatch", Severity.red)}


def test_pure_mdma_raises_nothing() -> None:
    assert check("MDMA", "MDMA") == []
    assert check("mdma hcl", "MDMA", "caffeine") == []


def test_mdma_with_a_cathinone_is_amber_and_with_pmma_red() -> None:
    cathinone = check("MDMA", "mephedrone")
    assert [(k, s) for k, s, _ in cathinone] == [("mismatch", Severity.amber)]
    pmma = check("MDMA", "PMMA")
    assert ("mismatch", Severity.red) in {(k, s) for k, s, _ in pmma}


def test_same_keys_join_one_signal() -> None:
    first = evaluate(
        facts_from_stored(
            "drug_checking",
            "A",
            WHEN,
            {"sold_as": "oxycodone", "results": [{"substance": "metonitazene"}]},
            VOCAB,
        )
    )
    second = evaluate(
        facts_from_stored(
            "drug_checking",
            "B",
            WHEN,
            {"sold_as": "Oxycodone", "results": [{"substance": "Metonitazine"}]},
            VOCAB,
        )
    )
    assert {h.key for h in first} == {h.key for h in second}


def test_unknown_sold_as_is_not_graded_but_red_list_still_fires() -> None:
    hits = check("blue dolphins", "protonitazepyne")
    assert [k for k, _, _ in hits] == ["red_list"]


def near_miss(**data: Any) -> list[tuple[str, Severity]]:
    facts = facts_from_stored("near_miss", "YORK-C", WHEN, data, VOCAB)
    return [(h.kind, h.severity) for h in evaluate(facts)]


def test_presentations() -> None:
    assert near_miss(naloxone_doses=1, outcome="hospital") == []
    assert near_miss(naloxone_doses=2, outcome="hospital") == [("presentation", Severity.amber)]
    assert near_miss(naloxone_doses=0, outcome="died") == [("presentation", Severity.red)]
    # Suspected (not confirmed) red-list substances are amber.
    assert near_miss(suspected_substances=["fentanyl"]) == [("red_list", Severity.amber)]


def test_same_appearance_three_times_in_a_week() -> None:
    data = {
        "sold_as": "MDMA",
        "results": [{"substance": "MDMA"}],
        "appearance": {"colour": "Pink", "markings": "Tesla!"},
    }
    two = facts_from_stored("drug_checking", "A", WHEN, data, VOCAB, similar_recent=1)
    three = facts_from_stored("drug_checking", "A", WHEN, data, VOCAB, similar_recent=2)
    assert evaluate(two) == []
    hits = evaluate(three)
    assert [h.key for h in hits] == ["presentation:appearance:pink|tesla"]
    assert hits[0].summary == "3 reports of pink 'tesla' within 7 days"
