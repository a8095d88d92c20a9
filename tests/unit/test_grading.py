"""The panel's risk matrix and side-by-side view of grades."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ldis.domain.errors import ValidationFailed
from ldis.domain.grading import (
    Decision,
    GradeInput,
    Likelihood,
    Rag,
    Severity,
    panel_view,
    rag,
    risk_score,
)
from ldis.domain.validation import parse

BASE: dict[str, Any] = {
    "local_relevance": "high",
    "internet_spread": "possible",
    "source": "direct",
    "plausibility": "high",
    "confirmation": "confirmed",
    "severity": 5,
    "likelihood": 4,
    "recommendation": "formal_alert",
    "reasons": "Metonitazene confirmed by LC-MS in tablets sold as oxycodone.",
}


@pytest.mark.parametrize(
    ("severity", "likelihood", "expected"),
    [
        (5, 5, Rag.red),
        (5, 3, Rag.red),
        (4, 3, Rag.amber),
        (2, 4, Rag.amber),
        (3, 2, Rag.green),
        (1, 5, Rag.green),
        (1, 1, Rag.green),
    ],
)
def test_matrix(severity: int, likelihood: int, expected: Rag) -> None:
    assert rag(Severity(severity), Likelihood(likelihood)) is expected


@given(st.sampled_from(list(Severity)), st.sampled_from(list(Likelihood)))
def test_rag_never_falls_as_risk_rises(severity: Severity, likelihood: Likelihood) -> None:
    order = [Rag.green, Rag.amber, Rag.red]
    here = order.index(rag(severity, likelihood))
    if severity < Severity.catastrophic:
        assert order.index(rag(Severity(severity + 1), likelihood)) >= here
    if likelihood < Likelihood.almost_certain:
        assert order.index(rag(severity, Likelihood(likelihood + 1))) >= here
    assert 1 <= risk_score(severity, likelihood) <= 25


def test_grade_refuses_unknown_values_naming_the_field() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse(GradeInput, BASE | {"severity": 9, "recommendation": "panic", "reasons": " "})
    assert set(caught.value.fields) == {"severity", "recommendation", "reasons"}


def test_panel_view_shows_agreement_and_differences() -> None:
    one = parse(GradeInput, BASE)
    two = parse(GradeInput, BASE | {"likelihood": 2, "recommendation": "information_only"})
    three = parse(GradeInput, BASE | {"likelihood": 3})
    view = panel_view([one, two, three])
    assert view is not None
    assert view.median_score == 15.0
    assert view.rag is Rag.red
    assert view.recommendations[Decision.formal_alert] == 2
    assert not view.unanimous
    assert view.disagreements == ("likelihood",)
    assert panel_view([]) is None
    same = panel_view([one, one])
    assert same is not None and same.unanimous
