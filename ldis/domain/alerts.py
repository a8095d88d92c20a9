"""The alert's life as a table of transitions, and the two-person approval rule.

An alert is drafted by one panel member and sent only after `required` *other* members
approve the same version. The rules live here, free of storage, so every door (API, web,
CLI) applies the same ones and the unit tests can prove them in milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from ldis.domain.errors import Conflict, Forbidden


class AlertStatus(StrEnum):
    draft = "draft"
    awaiting_approval = "awaiting_approval"
    approved = "approved"
    rejected = "rejected"
    withdrawn = "withdrawn"


class AlertAction(StrEnum):
    submit = "submit"
    approve = "approve"
    reject = "reject"
    revise = "revise"
    withdraw = "withdraw"


# (status, action) -> status after it. An approval that does not yet reach the required
# count keeps the alert awaiting approval; `approval_outcome` decides which applies.
TRANSITIONS: dict[tuple[AlertStatus, AlertAction], AlertStatus] = {
    (AlertStatus.draft, AlertAction.submit): AlertStatus.awaiting_approval,
    (AlertStatus.awaiting_approval, AlertAction.approve): AlertStatus.approved,
    (AlertStatus.awaiting_approval, AlertAction.reject): AlertStatus.rejected,
    (AlertStatus.rejected, AlertAction.revise): AlertStatus.draft,
    (AlertStatus.approved, AlertAction.revise): AlertStatus.draft,
    (AlertStatus.approved, AlertAction.withdraw): AlertStatus.withdrawn,
}


def next_status(current: AlertStatus, action: AlertAction) -> AlertStatus:
    """The status after `action`, or Conflict when the alert's state does not allow it."""
    try:
        return TRANSITIONS[(current, action)]
    except KeyError:
        raise Conflict(
            f"An alert that is {current.value} cannot be asked to {action.value}."
        ) from None


@dataclass(frozen=True)
class ApprovalOutcome:
    approvals: int
    complete: bool


def approval_outcome(
    *,
    drafter_id: int,
    approver_id: int,
    earlier_approver_ids: frozenset[int],
    required: int,
) -> ApprovalOutcome:
    """Apply the approval rule: never the drafter, once per person, `required` people in all."""
    if required < 1:
        raise ValueError("at least one approval is always required")
    if approver_id == drafter_id:
        raise Forbidden("The person who drafted an alert cannot approve it.")
    if approver_id in earlier_approver_ids:
        raise Conflict("You have already approved this version of the alert.")
    approvals = len(earlier_approver_ids) + 1
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
    signal_id: int | None = Field(default=None, ge=1)
    expires_at: datetime | None = None

    @field_validator("areas")
    @classmethod
    def _unique_areas(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("must include a time zone, e.g. 2026-12-01T09:00:00Z")
        return value

    def content(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
