"""The panel's risk matrix and side-by-side view of grades."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ldis.domain.errors import ValidationFailed
from ldis.domain.grading import (
    RESPONSE_HOURS,
    URGENT_RESPONSE_HOURS,
    Decision,
    DecisionInput,
    GradeInput,
    Likelihood,
    Rag,
    Severity,
    is_overdue,
    panel_view,
    rag,
    response_due,
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


moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@given(moments, st.booleans())
def test_urgent_cases_are_due_sooner(first_seen: datetime, urgent: bool) -> None:
    due = response_due(first_seen, urgent)
    hours = URGENT_RESPONSE_HOURS if urgent else RESPONSE_HOURS
    assert due - first_seen == timedelta(hours=hours)
    assert response_due(first_seen, True) < response_due(first_seen, False)
    assert due.tzinfo is not None


def test_response_targets_and_overdue() -> None:
    seen = datetime(2026, 11, 21, 23, 40, tzinfo=UTC)
    assert (RESPONSE_HOURS, URGENT_RESPONSE_HOURS) == (48, 4)
    assert response_due(seen, urgent=False) == datetime(2026, 11, 23, 23, 40, tzinfo=UTC)
    assert response_due(seen, urgent=True) == datetime(2026, 11, 22, 3, 40, tzinfo=UTC)
    due = response_due(seen, urgent=True)
    assert not is_overdue(due, due, None)
    assert is_overdue(due, due + timedelta(seconds=1), None)
    # Answered, even late, is no longer waiting.
    assert not is_overdue(due, due + timedelta(days=3), due + timedelta(hours=1))


def test_a_decision_names_its_bad_fields_and_the_rag_is_optional() -> None:
    chosen = parse(DecisionInput, {"decision": "formal_alert", "reasons": " Deaths. "})
    assert chosen.rag is None and chosen.reasons == "Deaths."
    with pytest.raises(ValidationFailed) as caught:
        parse(DecisionInput, {"decision": "alert", "rag": "purple", "extra": 1})
    assert set(caught.value.fields) == {"decision", "rag", "reasons", "extra"}
