"""The alert state table and the two-person rule, without any storage."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ldis.domain.alerts import (
    TRANSITIONS,
    AlertAction,
    AlertDraft,
    AlertStatus,
    approval_outcome,
    next_status,
)
from ldis.domain.errors import Conflict, Forbidden, ValidationFailed
from ldis.domain.validation import parse


def test_happy_path_through_the_table() -> None:
    status = next_status(AlertStatus.draft, AlertAction.submit)
    assert status is AlertStatus.awaiting_approval
    assert next_status(status, AlertAction.approve) is AlertStatus.approved
    assert next_status(AlertStatus.approved, AlertAction.withdraw) is AlertStatus.withdrawn


@pytest.mark.parametrize(
    ("status", "action"),
    [(s, a) for s in AlertStatus for a in AlertAction if (s, a) not in TRANSITIONS],
)
def test_every_move_missing_from_the_table_is_a_conflict(
    status: AlertStatus, action: AlertAction
) -> None:
    with pytest.raises(Conflict):
        next_status(status, action)


def test_a_draft_cannot_be_approved_nor_a_withdrawn_alert_revived() -> None:
    with pytest.raises(Conflict):
        next_status(AlertStatus.draft, AlertAction.approve)
    with pytest.raises(Conflict):
        next_status(AlertStatus.withdrawn, AlertAction.submit)


def test_the_drafter_can_never_approve() -> None:
    with pytest.raises(Forbidden):
        approval_outcome(drafter_id=1, approver_id=1, earlier_approver_ids=frozenset(), required=1)


def test_the_same_person_cannot_approve_twice() -> None:
    with pytest.raises(Conflict):
        approval_outcome(
            drafter_id=1, approver_id=2, earlier_approver_ids=frozenset({2}), required=2
        )


def test_required_approvals_complete_only_at_the_count() -> None:
    first = approval_outcome(
        drafter_id=1, approver_id=2, earlier_approver_ids=frozenset(), required=2
    )
    assert (first.approvals, first.complete) == (1, False)
    second = approval_outcome(
        drafter_id=1, approver_id=3, earlier_approver_ids=frozenset({2}), required=2
    )
    assert (second.approvals, second.complete) == (2, True)


def test_zero_required_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        approval_outcome(drafter_id=1, approver_id=2, earlier_approver_ids=frozenset(), required=0)


@given(
    drafter=st.integers(1, 20),
    approvers=st.lists(st.integers(1, 20), max_size=10),
    required=st.integers(1, 5),
)
def test_completion_needs_required_distinct_people_other_than_the_drafter(
    drafter: int, approvers: list[int], required: int
) -> None:
    seen: frozenset[int] = frozenset()
    complete = False
    for approver in approvers:
        try:
            outcome = approval_outcome(
                drafter_id=drafter,
                approver_id=approver,
                earlier_approver_ids=seen,
                required=required,
            )
        except (Forbidden, Conflict):
            continue
        seen = seen | {approver}
        complete = complete or outcome.complete
    assert drafter not in seen
    assert complete == (len(seen) >= required)


def test_draft_validation_names_fields() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse(AlertDraft, {"title": "", "areas": [], "fields": {"summary": "x"}, "level": "secret"})
    fields = caught.value.fields
    assert set(fields) >= {"title", "areas", "fields.advice", "level"}


def test_draft_normalises_areas_and_refuses_naive_expiry() -> None:
    draft = parse(
        AlertDraft,
        {"title": "t", "areas": ["york-c", "YORK-C"], "fields": {"summary": "s", "advice": "a"}},
    )
    assert draft.areas == ["YORK-C"]
    with pytest.raises(ValidationFailed) as caught:
        parse(
            AlertDraft,
            {
                "title": "t",
                "areas": ["A"],
                "fields": {"summary": "s", "advice": "a"},
                "expires_at": "2026-12-01T09:00:00",
            },
        )
    assert "time zone" in caught.value.fields["expires_at"]
