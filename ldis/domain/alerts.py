"""The alert's life as a table of transitions, and the two-person approval rule.

An alert is drafted by one panel member and sent only after `required` *other* members
approve the same version. The rules live here, free of storage, so every door (API, web,
CLI) applies the same ones and the unit tests can prove them in milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from ldis.domain.errors import Conflict, Forbidden
from ldis.domain.validation import RecordId


class AlertStatus(StrEnum):
    draft = "draft"
    awaiting_approval = "awaiting_approval"
    approved = "approved"  # sent (or sending); live until withdrawn or expired
    rejected = "rejected"
    withdrawal_requested = "withdrawal_requested"  # awaiting approval of a withdrawal
    withdrawn = "withdrawn"
    expired = "expired"


class AlertAction(StrEnum):
    edit = "edit"
    submit = "submit"
    approve = "approve"
    reject = "reject"
    revise = "revise"
    withdraw = "withdraw"
    expire = "expire"


class VersionPurpose(StrEnum):
    """Why a version exists; each is its own set of messages."""

    alert = "alert"  # the first message of an alert
    update = "update"  # a revision of a live alert, marked UPDATE
    withdrawal = "withdrawal"  # the withdrawal notice


class VersionState(StrEnum):
    draft = "draft"
    awaiting_approval = "awaiting_approval"
    approved = "approved"
    rejected = "rejected"
    discarded = "discarded"  # a revision overtaken by a withdrawal or expiry


# (status, action) -> status after it. An approval that does not yet reach the required
# count keeps the alert where it is; `approval_outcome` decides which applies. An edit
# of an alert awaiting approval keeps it there but voids the approvals given so far.
TRANSITIONS: dict[tuple[AlertStatus, AlertAction], AlertStatus] = {
    (AlertStatus.draft, AlertAction.edit): AlertStatus.draft,
    (AlertStatus.draft, AlertAction.submit): AlertStatus.awaiting_approval,
    (AlertStatus.awaiting_approval, AlertAction.edit): AlertStatus.awaiting_approval,
    (AlertStatus.awaiting_approval, AlertAction.approve): AlertStatus.approved,
    (AlertStatus.awaiting_approval, AlertAction.reject): AlertStatus.rejected,
    (AlertStatus.rejected, AlertAction.revise): AlertStatus.draft,
    (AlertStatus.approved, AlertAction.revise): AlertStatus.draft,
    (AlertStatus.approved, AlertAction.withdraw): AlertStatus.withdrawal_requested,
    (AlertStatus.approved, AlertAction.expire): AlertStatus.expired,
    (AlertStatus.withdrawal_requested, AlertAction.approve): AlertStatus.withdrawn,
    # A refused withdrawal leaves the alert live as it was.
    (AlertStatus.withdrawal_requested, AlertAction.reject): AlertStatus.approved,
}

# Moves open only to an alert whose messages are already out (a revision is under way):
# it can still be withdrawn or expire, and the unfinished revision is discarded.
LIVE_TRANSITIONS: dict[tuple[AlertStatus, AlertAction], AlertStatus] = {
    (status, action): target
    for status in (AlertStatus.draft, AlertStatus.awaiting_approval, AlertStatus.rejected)
    for action, target in (
        (AlertAction.withdraw, AlertStatus.withdrawal_requested),
        (AlertAction.expire, AlertStatus.expired),
    )
}

FINAL_STATUSES = frozenset({AlertStatus.withdrawn, AlertStatus.expired})


def next_status(current: AlertStatus, action: AlertAction, *, live: bool = False) -> AlertStatus:
    """The status after `action`, or Conflict when the alert's state does not allow it.

    `live` says whether a version of the alert has already been sent."""
    found = TRANSITIONS.get((current, action))
    if found is None and live:
        found = LIVE_TRANSITIONS.get((current, action))
    if found is None:
        raise Conflict(f"An alert that is {_words(current)} cannot be asked to {action.value}.")
    return found


def _words(status: AlertStatus) -> str:
    return status.value.replace("_", " ")


def is_live(status: AlertStatus, live_version: int | None) -> bool:
    """On the active list: sent, and neither withdrawn nor expired."""
    return live_version is not None and status not in FINAL_STATUSES


def expiry_due(expires_at: datetime | None, now: datetime) -> bool:
    return expires_at is not None and expires_at <= now


REVIEW_REMINDER_LEAD = timedelta(days=1)


def review_reminder_due(
    review_by: datetime | None,
    reminded_at: datetime | None,
    now: datetime,
    lead: timedelta = REVIEW_REMINDER_LEAD,
) -> bool:
    """Remind the panel once, `lead` before the review date (or at once if it has passed)."""
    return review_by is not None and reminded_at is None and now >= review_by - lead


@dataclass(frozen=True)
class ApprovalOutcome:
    approvals: int
    complete: bool


def approval_outcome(
    *,
    author_ids: frozenset[int],
    approver_id: int,
    earlier_approver_ids: frozenset[int],
    required: int,
) -> ApprovalOutcome:
    """Apply the approval rule: never an author, once per person, `required` people in all.

    `author_ids` are everyone who drafted or edited the version (for a withdrawal, who
    asked for it); `earlier_approver_ids` the standing approvals of this revision."""
    if required < 1:
        raise ValueError("at least one approval is always required")
    if approver_id in author_ids:
        raise Forbidden("You wrote or edited this alert, so you cannot approve it.")
    if approver_id in earlier_approver_ids:
        raise Conflict("You have already approved this version of the alert.")
    # Authors' approvals can never be in the standing set; count only other people.
    approvals = len(earlier_approver_ids - author_ids) + 1
    return ApprovalOutcome(approvals=approvals, complete=approvals >= required)


class AlertLevel(StrEnum):
    professional = "professional"
    public = "public"


class AlertPriority(StrEnum):
    urgent = "urgent"
    standard = "standard"


ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
AreaCode = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40, to_upper=True)
]


class AlertKind(StrEnum):
    """What an alert is about. Services choose the kinds they want, and a contact can
    unsubscribe from one kind; an update or withdrawal always follows its alert's kind."""

    drug_alert = "drug_alert"  # a dangerous substance or batch
    cluster = "cluster"  # overdoses or call-outs clustered in place and time
    information = "information"  # shared for information only
    exercise = "exercise"  # a preparedness exercise


ALERT_KIND_LABELS: dict[AlertKind, str] = {
    AlertKind.drug_alert: "Dangerous drug alerts",
    AlertKind.cluster: "Overdose cluster alerts",
    AlertKind.information: "Information notices",
    AlertKind.exercise: "Preparedness exercises",
}


class AlertFields(BaseModel):
    """What the templates render. `summary` and `advice` are enough for every template."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    summary: str = Field(min_length=1, max_length=2000)
    advice: str = Field(min_length=1, max_length=2000)


class AlertDraft(BaseModel):
    """The body of a new alert (and of a revision), as the contract defines it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: ShortText
    template: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")] = "professional"
    level: AlertLevel = AlertLevel.professional
    kind: AlertKind = AlertKind.drug_alert
    priority: AlertPriority = AlertPriority.standard
    areas: list[AreaCode] = Field(min_length=1, max_length=200)
    service_types: list[ShortText] = Field(default_factory=list, max_length=50)
    # Also reach the areas linked as neighbours of the alert's areas (ldis.domain.audience).
    include_neighbours: bool = False
    fields: AlertFields
    # The case the panel decided on: a signal or a report (not both).
    signal_id: RecordId | None = None
    report_id: RecordId | None = None
    review_by: datetime | None = None
    expires_at: datetime | None = None
    # A preparedness exercise goes only to the participating services chosen here.
    exercise: bool = False
    participants: list[RecordId] = Field(default_factory=list, max_length=500)

    @field_validator("areas")
    @classmethod
    def _unique_areas(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    @field_validator("participants")
    @classmethod
    def _unique_participants(cls, value: list[int]) -> list[int]:
        return list(dict.fromkeys(value))

    @field_validator("expires_at", "review_by")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("must include a time zone, e.g. 2026-12-01T09:00:00Z")
        # Stored in UTC: year 9999 with a negative offset would overflow on the way.
        if value is not None and not 1 < value.year < 9999:
            raise ValueError("must be a date between the years 2 and 9998")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> AlertDraft:
        if self.signal_id is not None and self.report_id is not None:
            raise ValueError("report_id: give signal_id or report_id, not both")
        if self.exercise and not self.participants:
            raise ValueError("participants: an exercise needs the participating services' ids")
        if not self.exercise and self.participants:
            raise ValueError("participants: only for exercises; set exercise to true")
        if self.exercise:
            self.kind = AlertKind.exercise
        elif self.kind is AlertKind.exercise:
            # An exercise must be limited to its participants: say so with the flag.
            raise ValueError("kind: an exercise needs exercise: true and its participants")
        if self.review_by and self.expires_at and self.review_by > self.expires_at:
            raise ValueError("review_by: must not be after expires_at")
        return self

    def content(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def check_dates(draft: AlertDraft, now: datetime) -> dict[str, str]:
    """Dates in the past cannot be set on a new or edited alert."""
    problems = {}
    if draft.expires_at is not None and draft.expires_at <= now:
        problems["expires_at"] = "must be in the future"
    if draft.review_by is not None and draft.review_by <= now:
        problems["review_by"] = "must be in the future"
    return problems


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What an edit changed, for the audit log: {path: {"from": old, "to": new}}."""
    changes: dict[str, Any] = {}
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            changes |= {f"{key}.{k}": v for k, v in changed_fields(old, new).items()}
        elif old != new:
            changes[key] = {"from": old, "to": new}
    return changes
