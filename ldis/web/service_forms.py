"""The forms of the service and contact pages. Each builds the body the JSON API takes, so
the use cases alone decide what is valid; their errors, by dotted path, come back here to
be shown beside the field they belong to, in the order the page shows the fields."""

from __future__ import annotations

from typing import Any

from wtforms import BooleanField, Field, SelectField, SelectMultipleField, StringField

from ldis.domain.alerts import ALERT_KIND_LABELS, AlertLevel
from ldis.domain.deliveries import Channel
from ldis.domain.recipients import ContactRole
from ldis.web.forms import WebForm, blank_to_none, friendly

LEVEL_LABELS = {
    AlertLevel.professional.value: "Professional alerts (for staff)",
    AlertLevel.public.value: "Public alerts (for people who use drugs)",
}
KIND_LABELS = {kind.value: label for kind, label in ALERT_KIND_LABELS.items()}
CHANNEL_LABELS = {Channel.sms.value: "Text message (SMS)", Channel.email.value: "E-mail"}
ROLE_LABELS = {
    ContactRole.primary.value: "Primary contact",
    ContactRole.backup.value: "Backup contact",
}
# Messages from the inputs that read badly in front of a person, by the start of the text.
PLAIN = {
    "Input should be in a valid time format": "must be a time like 22:00",
    "start and end must differ": "must differ from the start, e.g. 22:00 to 07:00",
}


def _multi(label: str, choices: dict[str, str]) -> SelectMultipleField:
    return SelectMultipleField(label, choices=choices, validate_choice=False)


class MappedForm(WebForm):
    """A form whose use-case errors are mapped back to its fields."""

    # dotted path (or its first part) in the body -> form field name
    paths: dict[str, str] = {}
    layout: tuple[str, ...] = ()
    # What to say when nothing was ticked in a list that needs at least one choice.
    at_least_one: dict[str, str] = {}

    def field_for(self, path: str) -> Field | None:
        name = self.paths.get(path) or self.paths.get(path.split(".", 1)[0]) or path
        name = name if name in self._fields else name.split(".", 1)[0]
        field: Field | None = self._fields.get(name)
        return field

    def map_errors(self, fields: dict[str, str]) -> tuple[dict[str, str], list[tuple[str, str]]]:
        """({field id: message beside it}, [(field id or "", message)] for the summary)."""
        beside: dict[str, str] = {}
        loose: list[tuple[str, str]] = []
        for path, message in fields.items():
            field = self.field_for(path)
            label = str(field.label.text) if field is not None else "This form"
            text = _plain(label, message, isinstance(field, SelectField | SelectMultipleField))
            if field is not None and message.startswith("List should have at least 1 item"):
                text = self.at_least_one.get(field.name, text)
            if field is None or field.name == "csrf_token":
                loose.append(("", text))
            else:
                beside.setdefault(field.id, text)
        order = [name for name in self.layout if name in self._fields]
        ids = [self._fields[name].id for name in order]
        return beside, [(i, beside[i]) for i in ids if i in beside] + loose


def _plain(label: str, message: str, choose: bool) -> str:
    for start, plain in PLAIN.items():
        if message.startswith(start):
            return f"{label} {plain}"
    return friendly(label, message, choose=choose)


class ServiceForm(MappedForm):
    name = StringField("Service name")
    type = SelectField("Type of service", choices={}, validate_choice=False)
    areas = _multi("Areas covered", {})
    ref = StringField("Reference")
    alert_levels = _multi("Alert levels", LEVEL_LABELS)
    alert_kinds = _multi("Kinds of alert", KIND_LABELS)
    layout = ("name", "type", "areas", "ref", "alert_levels", "alert_kinds")
    at_least_one = {
        "areas": "Select at least one area",
        "alert_levels": "Select at least one alert level",
        "alert_kinds": "Select at least one kind of alert",
    }

    def set_choices(
        self, types: list[dict[str, Any]], areas: list[tuple[str, str]], current: str = ""
    ) -> None:
        """Active types, plus the service's own type if it has since been retired."""
        choices = {"": "Choose a type"}
        for t in types:
            if t["active"] or t["code"] == current:
                choices[t["code"]] = t["label"] + ("" if t["active"] else " (retired)")
        self.type.choices = choices
        self.areas.choices = dict(areas)

    def fill(self, view: dict[str, Any]) -> None:
        self.name.data = view["name"]
        self.type.data = view["type"]
        self.areas.data = view["areas"]
        self.ref.data = view["ref"] or ""
        self.alert_levels.data = view["alert_levels"]
        # No kinds chosen means every kind, including any added later: shown as all ticked.
        self.alert_kinds.data = view["alert_kinds"] or list(KIND_LABELS)

    def body(self, *, with_ref: bool) -> dict[str, Any]:
        kinds = list(self.alert_kinds.data or [])
        body: dict[str, Any] = {
            "name": self.name.data or "",
            "type": self.type.data or "",
            "areas": list(self.areas.data or []),
            "alert_levels": list(self.alert_levels.data or []),
            # All ticked = every kind, so a kind added later reaches this service too.
            "alert_kinds": [] if set(kinds) >= set(KIND_LABELS) else kinds,
        }
        if with_ref:
            body["ref"] = blank_to_none(self.ref.data)
        return body

    def kinds_missing(self) -> dict[str, str]:
        if not self.alert_kinds.data:
            return {"alert_kinds": "List should have at least 1 item"}
        return {}


class ContactForm(MappedForm):
    name = StringField("Name")
    role = SelectField("Role", choices=ROLE_LABELS, default=ContactRole.primary.value)
    email = StringField("E-mail address")
    phone = StringField("Mobile number")
    channels = _multi("Send alerts by", CHANNEL_LABELS)
    quiet_start = StringField("Quiet from")
    quiet_end = StringField("Quiet until")
    verified = BooleanField("These addresses are already confirmed")
    paths = {"quiet_hours": "quiet_start", "quiet_hours.start": "quiet_start"}
    paths |= {"quiet_hours.end": "quiet_end"}
    layout = ("name", "role", "email", "phone", "channels", "quiet_start", "quiet_end")
    at_least_one = {"channels": "Select at least one way to send alerts"}

    def fill(self, view: dict[str, Any]) -> None:
        self.name.data = view["name"]
        self.role.data = view["role"]
        self.email.data = view["email"] or ""
        self.phone.data = view["phone"] or ""
        self.channels.data = view["channels"]
        quiet = view["quiet_hours"] or {}
        self.quiet_start.data = quiet.get("start", "")
        self.quiet_end.data = quiet.get("end", "")

    def _quiet(self) -> dict[str, str] | None:
        quiet = {}
        for key, value in (("start", self.quiet_start.data), ("end", self.quiet_end.data)):
            text = blank_to_none(value)
            if text is not None:
                quiet[key] = text
        return quiet or None

    def body(self, *, new: bool, with_verified: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": self.name.data or "",
            "role": self.role.data or ContactRole.primary.value,
            "email": blank_to_none(self.email.data),
            "phone": blank_to_none(self.phone.data),
            "channels": list(self.channels.data or []),
            "quiet_hours": self._quiet(),
        }
        if new:
            body = {k: v for k, v in body.items() if v is not None}
            if with_verified:
                body["verified"] = bool(self.verified.data)
        return body


class CodeForm(MappedForm):
    code = StringField("Code from the text message")
    layout = ("code",)


class ManagerForm(MappedForm):
    email = StringField("E-mail address of the user")
    layout = ("email",)


class TypeForm(MappedForm):
    code = StringField("Code")
    label = StringField("Name shown")
    layout = ("code", "label")


class FilterForm(WebForm):
    """The services list's filters (GET: no CSRF token needed, nothing changes)."""

    type = SelectField("Type of service", choices={}, validate_choice=False)
    area = SelectField("Area", choices={}, validate_choice=False)
