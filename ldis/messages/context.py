"""The one context every alert template gets, built the same way for the preview the
approvers read and for the real send, so they see exactly what goes out.

Documented for template authors in `alert_templates/README.md`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ldis.domain.alerts import AlertKind
from ldis.messages.render import WITHDRAWAL_TEMPLATE

PURPOSES = ("alert", "update", "withdrawal")


def reference(alert_id: int, version: int) -> str:
    """How an alert version is quoted in messages, e.g. `LDIS-12-v2`."""
    return f"LDIS-{alert_id}-v{version}"


def is_exercise(content: Mapping[str, Any]) -> bool:
    """An exercise by flag or by kind: either way every message must say so."""
    return bool(content.get("exercise")) or content.get("kind") == AlertKind.exercise.value


def previous_version_of(content: Mapping[str, Any], version: int) -> int | None:
    """The version an update or withdrawal follows: the live one when it was written
    (stored as `previous_version`), else the one before it for older content."""
    stored = content.get("previous_version")
    if isinstance(stored, int) and not isinstance(stored, bool):
        return stored
    return version - 1 if version > 1 else None


def template_for(purpose: str, chosen: str) -> str:
    """The template a version is rendered with: the drafter's choice, except a withdrawal,
    which always gets the system's withdrawal notice."""
    return WITHDRAWAL_TEMPLATE if purpose == "withdrawal" else chosen


def message_context(
    content: Mapping[str, Any],
    *,
    alert_id: int,
    version: int,
    purpose: str,
    exercise: bool,
    ack_url: str,
    previous_version: int | None,
    contact_name: str | None = None,
    preferences_url: str | None = None,
) -> dict[str, Any]:
    """Everything a template may use. `contact_name` and `preferences_url` are present only
    when given (a preview has no contact): templates test them with `is defined`."""
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {', '.join(PURPOSES)}, not {purpose!r}")
    fields = content.get("fields")
    context: dict[str, Any] = {
        "alert": content,
        "fields": fields if isinstance(fields, Mapping) else {},
        "kind": content.get("kind") or AlertKind.drug_alert.value,
        "version": version,
        "purpose": purpose,
        "is_update": purpose == "update",
        "is_withdrawal": purpose == "withdrawal",
        "exercise": exercise,
        "reference": reference(alert_id, version),
        "previous_reference": (
            reference(alert_id, previous_version) if previous_version is not None else None
        ),
        "ack_url": ack_url,
    }
    if contact_name is not None:
        context["contact_name"] = contact_name
    if preferences_url is not None:
        context["preferences_url"] = preferences_url
    return context
