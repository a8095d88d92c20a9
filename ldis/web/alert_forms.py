"""The alert pages' form and words: the draft form (building the body the JSON API takes, so
the use cases alone decide what is valid, and putting their dotted-path errors beside the
right field), and the plain words the pages use for states, purposes, durations and the
history's details."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from wtforms import (
    BooleanField,
    Field,
    HiddenField,
    RadioField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)

from ldis.domain.alerts import ALERT_KIND_LABELS, AlertKind
from ldis.web.forms import LONDON, WebForm, blank_to_none, friendly, london_to_utc, uk_time

TEMPLATE_LABELS = {
    "professional": "Professional: full detail for frontline staff",
    "public": "Public: short, for people who use drugs",
    "update": "Update notice: what has changed since the earlier alert",
}
LEVEL_LABELS = {
    "professional": "Professional (frontline services)",
    "public": "Public (people who use drugs)",
}
# The exercise kind is chosen by ticking "this is an exercise", never on its own.
KIND_LABELS = {k.value: label for k, label in ALERT_KIND_LABELS.items() if k != AlertKind.exercise}
ALL_KIND_LABELS = {k.value: label for k, label in ALERT_KIND_LABELS.items()}
PRIORITY_LABELS = {
    "standard": "Standard: waits for each contact's quiet hours to end",
    "urgent": "Urgent: sent at once, day or night",
}
PRIORITY_WORDS = {"standard": "Standard", "urgent": "Urgent"}
STATUS_WORDS = {
    "draft": "Draft: not yet submitted for approval",
    "awaiting_approval": "Awaiting approval",
    "approved": "Approved and sent",
    "rejected": "Rejected",
    "withdrawal_requested": "Withdrawal awaiting approval",
    "withdrawn": "Withdrawn",
    "expired": "Expired",
}
STATE_WORDS = {
    "draft": "Draft",
    "awaiting_approval": "Awaiting approval",
    "approved": "Approved",
    "rejected": "Rejected",
    "discarded": "Discarded",
}
PURPOSE_WORDS = {"alert": "First alert", "update": "UPDATE", "withdrawal": "WITHDRAWAL"}
# The optional fields the templates know, in the order the form shows them.
OPTIONAL_FIELDS = (
    "what_changed",
    "location_detail",
    "when",
    "appearance",
    "who_at_risk",
    "services_action",
    "how_to_report",
)
# Terse messages of the use cases, in words for a person (by how the message starts).
PLAIN = {
    "must not be after expires_at": "must not be after the expiry date",
    "an exercise needs the participating services": "Select the services taking part",
    "only for exercises": "Tick 'This is an exercise' or untick every participating service",
    "cannot change once the alert has been sent": (
        "cannot be changed once the alert has been sent"
    ),
}


class AlertForm(WebForm):
    title = StringField("Title")
    template = RadioField("Template", choices={})
    level = RadioField("Level", choices=LEVEL_LABELS, default="professional")
    kind = RadioField("Kind of alert", choices=KIND_LABELS, default=AlertKind.drug_alert.value)
    priority = RadioField("Priority", choices=PRIORITY_LABELS, default="standard")
    areas = SelectMultipleField("Areas", validate_choice=False)
    service_types = SelectMultipleField("Service types", validate_choice=False)
    include_neighbours = BooleanField("Also reach the neighbouring areas")
    summary = TextAreaField("Summary: what was found")
    advice = TextAreaField("Advice")
    what_changed = TextAreaField("What has changed")
    location_detail = StringField("Where, besides the areas")
    when = StringField("When")
    appearance = StringField("Appearance")
    who_at_risk = StringField("Who is at risk")
    services_action = TextAreaField("What services should do")
    how_to_report = TextAreaField("How to report")
    review_by = StringField("Review by")
    expires_at = StringField("Expiry")
    exercise = BooleanField("This is a preparedness exercise")
    participants = SelectMultipleField("Services taking part", validate_choice=False)
    signal_id = HiddenField()
    report_id = HiddenField()

    at_least_one = {"areas": "Select at least one area"}
    type_labels: dict[str, str] = {}

    def set_choices(
        self,
        templates: frozenset[str],
        choices: dict[str, list[tuple[str, str]]],
        services: list[tuple[int, str]],
    ) -> None:
        self.template.choices = {
            name: TEMPLATE_LABELS.get(name, name.replace("_", " ").capitalize())
            for name in sorted(templates, key=lambda t: (t not in TEMPLATE_LABELS, t))
        }
        if not self.template.data:
            self.template.data = "professional"
        self.areas.choices = choices["areas"]
        self.type_labels = dict(choices["service_types"])
        self.service_types.choices = self.type_labels
        self.participants.choices = {str(i): name for i, name in services}

    def fill(self, version: dict[str, Any], view: dict[str, Any]) -> None:
        """The form as the stored version says (for the edit page)."""
        content = version["content"]
        fields = content.get("fields") or {}
        self.title.data = version["title"]
        self.template.data = version["template"]
        self.level.data = version["level"]
        self.kind.data = content.get("kind") or AlertKind.drug_alert.value
        self.priority.data = version["priority"]
        self.areas.data = list(content.get("areas") or [])
        self.service_types.data = list(content.get("service_types") or [])
        self.include_neighbours.data = bool(content.get("include_neighbours"))
        self.summary.data = fields.get("summary", "")
        self.advice.data = fields.get("advice", "")
        for name in OPTIONAL_FIELDS:
            self._fields[name].data = fields.get(name, "")
        self.review_by.data = to_local(view.get("review_by"))
        self.expires_at.data = to_local(view.get("expires_at"))
        self.exercise.data = bool(view.get("exercise"))
        self.participants.data = [str(i) for i in content.get("participants") or []]
        self.signal_id.data = str(view["signal_id"]) if view.get("signal_id") else ""
        self.report_id.data = str(view["report_id"]) if view.get("report_id") else ""

    def body(self) -> dict[str, Any]:
        """The JSON draft the use cases take; blanks are left out (a blank optional field
        would be refused by every template)."""
        fields: dict[str, Any] = {
            "summary": self.summary.data or "",
            "advice": self.advice.data or "",
        }
        for name in OPTIONAL_FIELDS:
            value = blank_to_none(self._fields[name].data)
            if value is not None:
                fields[name] = value
        body: dict[str, Any] = {
            "title": self.title.data or "",
            "template": self.template.data or "professional",
            "level": self.level.data or "professional",
            "priority": self.priority.data or "standard",
            "areas": list(self.areas.data or []),
            "service_types": list(self.service_types.data or []),
            "include_neighbours": bool(self.include_neighbours.data),
            "fields": fields,
            "exercise": bool(self.exercise.data),
            "participants": [_number(p) for p in self.participants.data or []],
        }
        if self.kind.data in ALL_KIND_LABELS and self.kind.data != AlertKind.exercise:
            body["kind"] = self.kind.data
        for name in ("review_by", "expires_at"):
            value = blank_to_none(self._fields[name].data)
            body[name] = london_to_utc(value) if value else None
        for name in ("signal_id", "report_id"):
            value = blank_to_none(self._fields[name].data)
            if value is not None:
                body[name] = _number(value)
        return body

    def field_for(self, path: str) -> Field | None:
        head, _, rest = path.partition(".")
        if head == "fields" and rest:
            head = rest.split(".", 1)[0]
        if head in ("csrf_token", "signal_id", "report_id"):
            return None
        field: Field | None = self._fields.get(head)
        return field

    def map_errors(self, fields: dict[str, str]) -> tuple[dict[str, str], list[tuple[str, str]]]:
        """({field id: message beside it}, [(field id or "", message)] for the summary),
        in the order the page shows the fields."""
        beside: dict[str, str] = {}
        loose: list[tuple[str, str]] = []
        for path, message in fields.items():
            field = self.field_for(path)
            if field is None:
                loose.append(
                    ("case" if path in ("signal_id", "report_id") else "", _loose(path, message))
                )
                continue
            beside.setdefault(field.id, self._message(field, path, message))
        order = [f.id for f in self if f.id in beside]
        return beside, [(i, beside[i]) for i in order] + loose

    def _message(self, field: Field, path: str, message: str) -> str:
        label = str(field.label.text)
        if message.startswith("List should have at least 1 item"):
            return self.at_least_one.get(field.name, f"Select at least one: {label.lower()}")
        if " is missing" in message or " is blank" in message:
            # A template needs the field: "fields.what_changed is missing (template update)".
            return f"Enter {label[0].lower()}{label[1:]}: the chosen template needs it"
        if message.startswith("unknown area code"):
            return f"{message[0].upper()}{message[1:]}: choose areas from the list"
        if message.startswith("no service"):
            return f"{label}: {message}; choose from the list"
        if path == "template":
            return "Select a template from the list"
        for start, plain in PLAIN.items():
            if message.startswith(start):
                return plain if plain[0].isupper() else f"{label} {plain}"
        choose = isinstance(field, RadioField | SelectMultipleField)
        return friendly(label, message, choose=choose)


def _loose(path: str, message: str) -> str:
    names = {
        "signal_id": "The signal",
        "report_id": "The report",
        "revision": "This version",
        "body": "This form",
    }
    label = names.get(path, "This form")
    if message.startswith("no "):
        return f"{label} cannot be found ({message}); start again from the panel's case page"
    return friendly(label, message)


def _number(value: str) -> int | str:
    """Digits as an int; anything else as typed, so the use case names the field."""
    text = str(value).strip()
    return int(text) if text.isdigit() else text


def to_local(value: str | None) -> str:
    """An ISO moment as a `datetime-local` value in UK time, e.g. 2026-12-01T09:00."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if moment.tzinfo is not None:
        moment = moment.astimezone(LONDON)
    return moment.strftime("%Y-%m-%dT%H:%M")


def zone_now() -> str:
    """What UK time is right now: "GMT" or "BST"."""
    return datetime.now(LONDON).tzname() or "UK time"


def duration_words(seconds: float | None) -> str:
    """A duration as a person says it: "45 seconds", "3 minutes 20 seconds", "2 hours 5
    minutes", "3 days 4 hours"; "" when not known."""
    if seconds is None:
        return ""
    if seconds < 0:
        return "before (" + duration_words(-seconds) + " earlier)"
    total = round(seconds)
    if total < 60:
        return _unit(total, "second")
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return _unit(minutes, "minute") + (f" {_unit(secs, 'second')}" if secs else "")
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return _unit(hours, "hour") + (f" {_unit(minutes, 'minute')}" if minutes else "")
    days, hours = divmod(hours, 24)
    return _unit(days, "day") + (f" {_unit(hours, 'hour')}" if hours else "")


def _unit(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


ACTION_WORDS = {
    "alert.drafted": "Drafted",
    "alert.edited": "Edited",
    "alert.submitted": "Submitted for approval",
    "alert.approval_given": "Approval given",
    "alert.approved": "Approved",
    "alert.sent": "Sent",
    "alert.rejected": "Rejected",
    "alert.revised": "New version started",
    "alert.withdrawal_requested": "Withdrawal requested",
    "alert.withdrawn": "Withdrawn",
    "alert.expired": "Expired",
    "alert.review_reminder": "Review reminder sent",
}
DETAIL_LABELS = {
    "version": "Version",
    "from_version": "From version",
    "revision": "Revision",
    "title": "Title",
    "exercise": "Exercise",
    "purpose": "Purpose",
    "approvals": "Approvals",
    "required": "Approvals needed",
    "deliveries": "Messages queued",
    "cancelled_deliveries": "Queued messages cancelled",
    "approvals_voided": "Approvals made void",
    "reason": "Reason",
    "expires_at": "Expiry",
    "review_by": "Review by",
    "panel_members": "Panel members reminded",
}


def _shown(value: Any) -> str:
    if value is None or value == "":
        return "(none)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_shown(v) for v in value) or "(none)"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_shown(v)}" for k, v in value.items())
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and "T" in value:
        shown = uk_time(value)
        return f"{shown} (UK time)" if shown != value else value
    return str(value)


def detail_lines(detail: dict[str, Any] | None) -> list[str]:
    """An audit event's details as lines: "Reason: ...", and each change as
    "fields.summary: old -> new"."""
    lines: list[str] = []
    known = list(DETAIL_LABELS)
    ordered = sorted(
        (detail or {}).items(),
        key=lambda item: (known.index(item[0]) if item[0] in known else len(known), item[0]),
    )
    for key, value in ordered:
        if key == "changes" and isinstance(value, dict):
            for path, change in value.items():
                if isinstance(change, dict) and set(change) == {"from", "to"}:
                    lines.append(f"{path}: {_shown(change['from'])} -> {_shown(change['to'])}")
                else:
                    lines.append(f"{path}: {_shown(change)}")
            if not value:
                lines.append("No changes")
            continue
        if key == "purpose":
            value = PURPOSE_WORDS.get(str(value), value)
        lines.append(
            f"{DETAIL_LABELS.get(key, key.replace('_', ' ').capitalize())}: {_shown(value)}"
        )
    return lines
