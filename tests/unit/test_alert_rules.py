"""The alert state table, the two-person rule and the alert body, without any storage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ldis.domain.alerts import (
    FINAL_STATUSES,
    LIVE_TRANSITIONS,
    REVIEW_REMINDER_LEAD,
    TRANSITIONS,
    AlertAction,
    AlertDraft,
    AlertKind,
    AlertStatus,
    approval_outcome,
    changed_fields,
    check_dates,
    expiry_due,
    is_live,
    next_status,
    review_reminder_due,
)
from ldis.domain.errors import Conflict, Forbidden, ValidationFailed
from ldis.domain.validation import parse

# No example database on disk: the suite stays free of I/O.
pure = settings(database=None, max_examples=200)

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)

ALL_PAIRS = [(s, a) for s in AlertStatus for a in AlertAction]
IN_TABLE = sorted(TRANSITIONS.items())
ONLY_LIVE = sorted((pair, target) for pair, target in LIVE_TRANSITIONS.items())
IN_NEITHER = [p for p in ALL_PAIRS if p not in TRANSITIONS and p not in LIVE_TRANSITIONS]


def _pair_id(pair: Any) -> str:
    if isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], AlertStatus):
        return f"{pair[0].value}-{pair[1].value}"
    return str(pair)


# --- the state table: every (status, action) pair -----------------------------------------


def test_the_tables_partition_every_pair() -> None:
    assert not set(TRANSITIONS) & set(LIVE_TRANSITIONS)
    assert len(TRANSITIONS) + len(LIVE_TRANSITIONS) + len(IN_NEITHER) == len(ALL_PAIRS) == 49
    assert IN_NEITHER, "some moves must be illegal"


@pytest.mark.parametrize(("pair", "target"), IN_TABLE, ids=[_pair_id(p) for p, _ in IN_TABLE])
@pytest.mark.parametrize("live", [False, True], ids=["not_live", "live"])
def test_every_move_in_the_table_gives_the_listed_status(
    pair: tuple[AlertStatus, AlertAction], target: AlertStatus, live: bool
) -> None:
    status, action = pair
    assert next_status(status, action, live=live) is target


@pytest.mark.parametrize(("status", "action"), IN_NEITHER, ids=[_pair_id(p) for p in IN_NEITHER])
@pytest.mark.parametrize("live", [False, True], ids=["not_live", "live"])
def test_every_move_in_neither_table_is_a_conflict(
    status: AlertStatus, action: AlertAction, live: bool
) -> None:
    with pytest.raises(Conflict) as caught:
        next_status(status, action, live=live)
    assert caught.value.message == (
        f"An alert that is {status.value.replace('_', ' ')} cannot be asked to {action.value}."
    )


@pytest.mark.parametrize(("pair", "target"), ONLY_LIVE, ids=[_pair_id(p) for p, _ in ONLY_LIVE])
def test_live_only_moves_need_a_sent_alert(
    pair: tuple[AlertStatus, AlertAction], target: AlertStatus
) -> None:
    status, action = pair
    with pytest.raises(Conflict):
        next_status(status, action)
    with pytest.raises(Conflict):
        next_status(status, action, live=False)
    assert next_status(status, action, live=True) is target


def test_live_only_moves_are_withdraw_and_expire_of_an_unfinished_revision() -> None:
    assert set(LIVE_TRANSITIONS) == {
        (s, a)
        for s in (AlertStatus.draft, AlertStatus.awaiting_approval, AlertStatus.rejected)
        for a in (AlertAction.withdraw, AlertAction.expire)
    }
    for (_, action), target in LIVE_TRANSITIONS.items():
        expected = {
            AlertAction.withdraw: AlertStatus.withdrawal_requested,
            AlertAction.expire: AlertStatus.expired,
        }[action]
        assert target is expected


def test_final_statuses_have_no_way_out() -> None:
    assert {AlertStatus.withdrawn, AlertStatus.expired} == FINAL_STATUSES
    for status, _ in [*TRANSITIONS, *LIVE_TRANSITIONS]:
        assert status not in FINAL_STATUSES


def test_every_status_is_reachable_from_a_draft() -> None:
    # (status, live) states; live once an approval has sent the alert.
    seen = {(AlertStatus.draft, False)}
    todo = list(seen)
    while todo:
        status, live = todo.pop()
        for action in AlertAction:
            try:
                after = next_status(status, action, live=live)
            except Conflict:
                continue
            state = (after, live or after is AlertStatus.approved)
            if state not in seen:
                seen.add(state)
                todo.append(state)
    assert {status for status, _ in seen} == set(AlertStatus)


def test_happy_path_through_the_table() -> None:
    status = next_status(AlertStatus.draft, AlertAction.edit)
    assert status is AlertStatus.draft
    status = next_status(status, AlertAction.submit)
    assert status is AlertStatus.awaiting_approval
    assert next_status(status, AlertAction.edit) is AlertStatus.awaiting_approval
    status = next_status(status, AlertAction.approve)
    assert status is AlertStatus.approved
    status = next_status(status, AlertAction.withdraw, live=True)
    assert status is AlertStatus.withdrawal_requested
    assert next_status(status, AlertAction.approve, live=True) is AlertStatus.withdrawn


def test_a_refused_withdrawal_leaves_the_alert_live() -> None:
    status = next_status(AlertStatus.approved, AlertAction.withdraw, live=True)
    assert next_status(status, AlertAction.reject, live=True) is AlertStatus.approved


def test_a_revision_under_way_can_still_be_withdrawn_or_expire() -> None:
    status = next_status(AlertStatus.approved, AlertAction.revise, live=True)
    assert status is AlertStatus.draft
    status = next_status(status, AlertAction.submit, live=True)
    assert next_status(status, AlertAction.expire, live=True) is AlertStatus.expired
    assert next_status(status, AlertAction.withdraw, live=True) is (
        AlertStatus.withdrawal_requested
    )


# The illegal moves the issue names, and a few more.


def test_a_withdrawn_alert_cannot_be_approved() -> None:
    for live in (False, True):
        with pytest.raises(Conflict, match="withdrawn cannot be asked to approve"):
            next_status(AlertStatus.withdrawn, AlertAction.approve, live=live)


def test_a_draft_never_sent_cannot_be_withdrawn() -> None:
    with pytest.raises(Conflict, match="draft cannot be asked to withdraw"):
        next_status(AlertStatus.draft, AlertAction.withdraw, live=False)


def test_an_expired_alert_cannot_be_revised() -> None:
    for live in (False, True):
        with pytest.raises(Conflict, match="expired cannot be asked to revise"):
            next_status(AlertStatus.expired, AlertAction.revise, live=live)


def test_an_expired_alert_cannot_be_approved() -> None:
    for live in (False, True):
        with pytest.raises(Conflict, match="expired cannot be asked to approve"):
            next_status(AlertStatus.expired, AlertAction.approve, live=live)


def test_a_rejected_alert_cannot_be_submitted_without_revising() -> None:
    for live in (False, True):
        with pytest.raises(Conflict, match="rejected cannot be asked to submit"):
            next_status(AlertStatus.rejected, AlertAction.submit, live=live)


def test_a_withdrawn_alert_cannot_be_withdrawn_again() -> None:
    for live in (False, True):
        with pytest.raises(Conflict, match="withdrawn cannot be asked to withdraw"):
            next_status(AlertStatus.withdrawn, AlertAction.withdraw, live=live)


def test_an_approved_alert_cannot_be_edited_in_place() -> None:
    for live in (False, True):
        with pytest.raises(Conflict, match="approved cannot be asked to edit"):
            next_status(AlertStatus.approved, AlertAction.edit, live=live)


def test_a_draft_cannot_be_approved_before_submission() -> None:
    for live in (False, True):
        with pytest.raises(Conflict, match="draft cannot be asked to approve"):
            next_status(AlertStatus.draft, AlertAction.approve, live=live)


def test_the_conflict_message_uses_words_not_identifiers() -> None:
    with pytest.raises(Conflict, match="withdrawal requested cannot be asked to edit"):
        next_status(AlertStatus.withdrawal_requested, AlertAction.edit, live=True)


# --- random walks through the table -------------------------------------------------------


@pure
@given(actions=st.lists(st.sampled_from(AlertAction), max_size=80))
def test_a_random_walk_keeps_the_invariants(actions: list[AlertAction]) -> None:
    status, live = AlertStatus.draft, False
    for action in actions:
        expected = TRANSITIONS.get((status, action))
        if expected is None and live:
            expected = LIVE_TRANSITIONS.get((status, action))
        try:
            after = next_status(status, action, live=live)
        except Conflict:
            assert expected is None
            continue
        assert after is expected
        assert status not in FINAL_STATUSES, "a final status moved"
        if after is AlertStatus.withdrawn:
            assert (status, action) == (AlertStatus.withdrawal_requested, AlertAction.approve)
        if after is AlertStatus.approved:
            assert (status, action) in {
                (AlertStatus.awaiting_approval, AlertAction.approve),
                (AlertStatus.withdrawal_requested, AlertAction.reject),
            }
        if after in {AlertStatus.withdrawal_requested, AlertStatus.expired}:
            assert live or status is AlertStatus.approved, "only a sent alert can end"
        if action is AlertAction.approve and after is AlertStatus.approved:
            live = True
        status = after
        if status is AlertStatus.approved:
            assert live
        if status in FINAL_STATUSES:
            for any_action in AlertAction:
                for any_live in (False, True):
                    with pytest.raises(Conflict):
                        next_status(status, any_action, live=any_live)


# --- the approval rule -------------------------------------------------------------------

user_ids = st.integers(min_value=1, max_value=15)


@pure
@given(
    data=st.data(),
    authors=st.frozensets(user_ids, min_size=1, max_size=6),
    earlier=st.frozensets(user_ids, max_size=10),
    required=st.integers(min_value=1, max_value=8),
)
def test_an_author_is_always_forbidden(
    data: st.DataObject, authors: frozenset[int], earlier: frozenset[int], required: int
) -> None:
    author = data.draw(st.sampled_from(sorted(authors)))
    with pytest.raises(Forbidden):
        approval_outcome(
            author_ids=authors, approver_id=author, earlier_approver_ids=earlier, required=required
        )


@pure
@given(
    data=st.data(),
    authors=st.frozensets(user_ids, max_size=6),
    earlier=st.frozensets(user_ids, min_size=1, max_size=10),
    required=st.integers(min_value=1, max_value=8),
)
def test_a_repeat_approver_is_a_conflict(
    data: st.DataObject, authors: frozenset[int], earlier: frozenset[int], required: int
) -> None:
    approver = data.draw(st.sampled_from(sorted(earlier)))
    with pytest.raises(Conflict):
        approval_outcome(
            author_ids=authors - {approver},
            approver_id=approver,
            earlier_approver_ids=earlier,
            required=required,
        )


@pure
@given(
    authors=st.frozensets(user_ids, max_size=6),
    approver=user_ids,
    earlier=st.frozensets(user_ids, max_size=10),
    required=st.integers(min_value=1, max_value=8),
)
def test_complete_exactly_when_enough_distinct_non_authors_approved(
    authors: frozenset[int], approver: int, earlier: frozenset[int], required: int
) -> None:
    authors, earlier = authors - {approver}, earlier - {approver}
    outcome = approval_outcome(
        author_ids=authors, approver_id=approver, earlier_approver_ids=earlier, required=required
    )
    counted = len((earlier | {approver}) - authors)
    assert outcome.approvals == counted
    assert outcome.complete is (counted >= required)


def test_a_stale_approval_by_an_author_does_not_count() -> None:
    outcome = approval_outcome(
        author_ids=frozenset({1, 2}),
        approver_id=4,
        earlier_approver_ids=frozenset({2, 3}),
        required=3,
    )
    assert (outcome.approvals, outcome.complete) == (2, False)


def test_required_approvals_complete_only_at_the_count() -> None:
    authors = frozenset({1})
    first = approval_outcome(
        author_ids=authors, approver_id=2, earlier_approver_ids=frozenset(), required=2
    )
    assert (first.approvals, first.complete) == (1, False)
    second = approval_outcome(
        author_ids=authors, approver_id=3, earlier_approver_ids=frozenset({2}), required=2
    )
    assert (second.approvals, second.complete) == (2, True)


@pure
@given(
    authors=st.frozensets(user_ids, min_size=1, max_size=5),
    attempts=st.lists(user_ids, max_size=40),
    required=st.integers(min_value=1, max_value=6),
)
def test_a_sequence_of_attempts_completes_at_the_required_th_distinct_non_author(
    authors: frozenset[int], attempts: list[int], required: int
) -> None:
    # The oracle: the attempt at which the required-th distinct non-author first shows up.
    distinct: list[int] = []
    expected_at = None
    for index, user in enumerate(attempts):
        if user not in authors and user not in distinct:
            distinct.append(user)
            if len(distinct) == required:
                expected_at = index
                break

    approved: frozenset[int] = frozenset()
    completed_at = None
    for index, user in enumerate(attempts):
        try:
            outcome = approval_outcome(
                author_ids=authors,
                approver_id=user,
                earlier_approver_ids=approved,
                required=required,
            )
        except Forbidden:
            assert user in authors
            continue
        except Conflict:
            assert user in approved
            continue
        assert user not in authors
        approved |= {user}
        assert outcome.approvals == len(approved)
        if outcome.complete:
            completed_at = index
            break
        assert len(approved) < required

    assert completed_at == expected_at
    assert approved.isdisjoint(authors)
    if completed_at is None:
        assert len(approved) < required
    else:
        assert len(approved) == required


@pure
@given(
    authors=st.frozensets(user_ids, max_size=5),
    approver=user_ids,
    earlier=st.frozensets(user_ids, max_size=5),
    required=st.integers(max_value=0),
)
def test_fewer_than_one_required_approval_is_refused(
    authors: frozenset[int], approver: int, earlier: frozenset[int], required: int
) -> None:
    with pytest.raises(ValueError, match="at least one"):
        approval_outcome(
            author_ids=authors,
            approver_id=approver,
            earlier_approver_ids=earlier,
            required=required,
        )


# --- the alert body ----------------------------------------------------------------------


def _body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "Strong batch",
        "areas": ["YORK-C"],
        "fields": {"summary": "s", "advice": "a"},
    }
    body.update(changes)
    return body


def _refused(body: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as caught:
        parse(AlertDraft, body)
    return caught.value.fields


def test_a_minimal_draft_takes_the_defaults() -> None:
    draft = parse(AlertDraft, _body())
    assert draft.kind is AlertKind.drug_alert
    assert (draft.exercise, draft.participants) == (False, [])
    assert (draft.signal_id, draft.report_id, draft.review_by, draft.expires_at) == (
        None,
        None,
        None,
        None,
    )


def test_draft_validation_names_fields() -> None:
    fields = _refused(
        {"title": "", "areas": [], "fields": {"summary": "x"}, "level": "secret", "colour": 1}
    )
    assert set(fields) >= {"title", "areas", "fields.advice", "level", "colour"}
    assert fields["colour"] == "is not a known field; remove it"


def test_an_exercise_needs_participants() -> None:
    fields = _refused(_body(exercise=True))
    assert set(fields) == {"participants"}
    assert "exercise needs" in fields["participants"]


def test_participants_need_an_exercise() -> None:
    fields = _refused(_body(participants=[3]))
    assert set(fields) == {"participants"}
    assert "only for exercises" in fields["participants"]


def test_participants_must_be_real_ids() -> None:
    assert "participants.1" in _refused(_body(exercise=True, participants=[2, 0]))


def test_signal_and_report_together_are_refused() -> None:
    fields = _refused(_body(signal_id=1, report_id=2))
    assert set(fields) == {"report_id"}
    assert "not both" in fields["report_id"]
    assert parse(AlertDraft, _body(signal_id=1)).signal_id == 1
    assert parse(AlertDraft, _body(report_id=2)).report_id == 2


def test_review_after_expiry_is_refused() -> None:
    fields = _refused(_body(review_by="2026-07-02T09:00:00Z", expires_at="2026-07-01T09:00:00Z"))
    assert set(fields) == {"review_by"}
    assert "expires_at" in fields["review_by"]


def test_review_at_or_before_expiry_is_accepted() -> None:
    same = parse(
        AlertDraft, _body(review_by="2026-07-01T10:00:00+01:00", expires_at="2026-07-01T09:00:00Z")
    )
    assert same.review_by == same.expires_at
    earlier = parse(
        AlertDraft, _body(review_by="2026-06-30T09:00:00Z", expires_at="2026-07-01T09:00:00Z")
    )
    assert earlier.review_by is not None and earlier.expires_at is not None
    assert earlier.review_by < earlier.expires_at


@pytest.mark.parametrize("field", ["review_by", "expires_at"])
def test_naive_datetimes_are_refused_by_name(field: str) -> None:
    fields = _refused(_body(**{field: "2026-12-01T09:00:00"}))
    assert set(fields) == {field}
    assert "time zone" in fields[field]


def test_an_exercise_is_always_of_the_exercise_kind() -> None:
    draft = parse(AlertDraft, _body(exercise=True, participants=[4], kind="cluster"))
    assert draft.kind is AlertKind.exercise
    assert draft.content()["kind"] == "exercise"


def test_areas_and_participants_are_deduplicated_in_order() -> None:
    draft = parse(
        AlertDraft,
        _body(
            areas=["york-c", " YORK-C ", "leeds", "York-C"],
            exercise=True,
            participants=[3, 1, 3, 2, 1],
        ),
    )
    assert draft.areas == ["YORK-C", "LEEDS"]
    assert draft.participants == [3, 1, 2]


def _dated(**dates: str) -> AlertDraft:
    return parse(AlertDraft, _body(**dates))


def test_check_dates_flags_each_past_date_by_field() -> None:
    both = _dated(review_by="2026-05-01T09:00:00Z", expires_at="2026-05-02T09:00:00Z")
    assert set(check_dates(both, NOW)) == {"review_by", "expires_at"}
    review = _dated(review_by="2026-05-01T09:00:00Z", expires_at="2026-07-01T09:00:00Z")
    assert check_dates(review, NOW) == {"review_by": "must be in the future"}
    expiry = _dated(expires_at="2026-05-01T09:00:00Z")
    assert check_dates(expiry, NOW) == {"expires_at": "must be in the future"}


def test_check_dates_counts_now_as_past_across_time_zones() -> None:
    at_now = _dated(expires_at="2026-06-01T10:00:00+01:00")
    assert check_dates(at_now, NOW) == {"expires_at": "must be in the future"}
    just_after = _dated(expires_at="2026-06-01T09:00:00.000001Z")
    assert check_dates(just_after, NOW) == {}


def test_check_dates_accepts_future_or_missing_dates() -> None:
    assert check_dates(_dated(), NOW) == {}
    future = _dated(review_by="2026-06-02T09:00:00Z", expires_at="2026-06-03T09:00:00Z")
    assert check_dates(future, NOW) == {}


def test_changed_fields_reports_nested_paths() -> None:
    before = parse(AlertDraft, _body()).content()
    after = parse(
        AlertDraft, _body(title="Stronger batch", fields={"summary": "t", "advice": "a"})
    ).content()
    assert changed_fields(before, after) == {
        "fields.summary": {"from": "s", "to": "t"},
        "title": {"from": "Strong batch", "to": "Stronger batch"},
    }


def test_changed_fields_is_empty_for_unchanged_content() -> None:
    content = parse(AlertDraft, _body(expires_at="2026-07-01T09:00:00Z")).content()
    again = parse(AlertDraft, _body(expires_at="2026-07-01T09:00:00+00:00")).content()
    assert changed_fields(content, again) == {}
    assert changed_fields({}, {}) == {}


def test_changed_fields_reports_added_removed_and_replaced_values() -> None:
    before = {"fields": {"summary": "s", "dose": "1mg"}, "areas": ["A"], "note": {"x": 1}}
    after = {"fields": {"summary": "s", "colour": "blue"}, "areas": ["A", "B"], "note": "x"}
    assert changed_fields(before, after) == {
        "areas": {"from": ["A"], "to": ["A", "B"]},
        "fields.colour": {"from": None, "to": "blue"},
        "fields.dose": {"from": "1mg", "to": None},
        "note": {"from": {"x": 1}, "to": "x"},
    }


# --- live list, expiry and review reminders ----------------------------------------------


@pytest.mark.parametrize("status", list(AlertStatus))
def test_is_live_needs_a_sent_version_and_no_final_status(status: AlertStatus) -> None:
    assert is_live(status, None) is False
    assert is_live(status, 1) is (status not in FINAL_STATUSES)


def test_expiry_is_due_at_and_after_the_expiry_time() -> None:
    assert expiry_due(NOW, NOW) is True
    assert expiry_due(NOW - timedelta(microseconds=1), NOW) is True
    assert expiry_due(NOW + timedelta(microseconds=1), NOW) is False
    assert expiry_due(NOW.astimezone(timezone(timedelta(hours=2))), NOW) is True
    assert expiry_due(None, NOW) is False


def test_review_reminder_not_due_before_the_lead_time() -> None:
    review_by = NOW + REVIEW_REMINDER_LEAD + timedelta(microseconds=1)
    assert review_reminder_due(review_by, None, NOW) is False


def test_review_reminder_due_at_the_lead_time_and_after() -> None:
    assert review_reminder_due(NOW + timedelta(days=1), None, NOW) is True
    assert review_reminder_due(NOW + REVIEW_REMINDER_LEAD, None, NOW) is True
    assert review_reminder_due(NOW, None, NOW) is True
    assert review_reminder_due(NOW - timedelta(days=3), None, NOW) is True


def test_review_reminder_honours_a_custom_lead() -> None:
    lead = timedelta(hours=6)
    assert review_reminder_due(NOW + lead, None, NOW, lead=lead) is True
    assert review_reminder_due(NOW + lead + timedelta(seconds=1), None, NOW, lead=lead) is False


def test_review_reminder_is_sent_only_once() -> None:
    reminded_at = NOW - timedelta(hours=1)
    assert review_reminder_due(NOW, reminded_at, NOW) is False
    assert review_reminder_due(NOW - timedelta(days=3), reminded_at, NOW) is False


@pure
@given(
    now=st.datetimes(timezones=st.just(UTC)),
    reminded=st.none() | st.datetimes(timezones=st.just(UTC)),
)
def test_no_review_date_is_never_due(now: datetime, reminded: datetime | None) -> None:
    assert review_reminder_due(None, reminded, now) is False


def test_the_exercise_kind_needs_the_exercise_flag() -> None:
    """Otherwise an 'exercise' would reach the whole area instead of its participants."""
    fields = _refused(_body(kind="exercise"))
    assert set(fields) == {"kind"}
    assert "exercise: true" in fields["kind"]
