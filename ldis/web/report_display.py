"""Turning a report's view (intake.report_view) into what the pages show: everything filed,
in the order the kind's model declares it, with readable labels and UK times."""

from __future__ import annotations

from typing import Any

from ldis.domain.public_reports import EFFECT_LABELS, PUBLIC_KIND, Effect, PublicReport
from ldis.domain.reports import REPORT_KINDS, ReportBody
from ldis.web.forms import uk_time

KIND_TITLES = {
    "drug_checking": "Drug checking result",
    "near_miss": "Near miss",
    "callout": "Ambulance call-out",
    PUBLIC_KIND: "Public report",
}
KIND_HINTS = {
    "drug_checking": "What a lab or drug checking service found in a sample, with a photo.",
    "near_miss": "An overdose or bad reaction someone survived: when, where, what was suspected.",
    "callout": "One ambulance call-out to a suspected overdose.",
}
LABELS = {
    "sample_obtained_on": "Sample obtained on",
    "sold_as": "Sold as",
    "form": "Form",
    "appearance": "Appearance",
    "colour": "colour",
    "shape": "shape",
    "markings": "markings",
    "weight_mg": "weight (mg)",
    "harms_reported": "Harms reported",
    "occurred_at": "When (UK time)",
    "time_known": "Time known",
    "location": "Location (rounded to about 100 m)",
    "suspected_substances": "Substances suspected",
    "naloxone_doses": "Naloxone doses given",
    "naloxone_given": "Naloxone given",
    "outcome": "Outcome",
    "setting": "Setting",
    "source": "Source",
    "type": "type",
    "name": "name",
    "reference": "reference",
    "notes": "Notes",
    "packaging": "packaging",
    "effects": "What happened (ticked)",
    "what_happened": "What happened (in their words)",
}
# Shown elsewhere on the page, or stored in their own columns.
SHOWN_APART = {"kind", "area", "results"}


def kind_title(kind: str) -> str:
    return KIND_TITLES.get(kind, kind.replace("_", " ").capitalize())


def label(name: str) -> str:
    return LABELS.get(name, name.replace("_", " "))


# Values chosen from a list, stored as identifiers: shown with spaces.
CHOSEN = {"outcome", "form", "type"}


def _text(name: str, value: Any) -> str:
    if value is None or value == "":
        return "Not given"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "None"
    return str(value).replace("_", " ") if name in CHOSEN else str(value)


def rows(view: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) for every field the kind has, nested ones flattened."""
    model = REPORT_KINDS.get(view["kind"]) or (
        PublicReport if view["kind"] == PUBLIC_KIND else None
    )
    declared = list(model.model_fields if model else view)
    shared = [n for n in ReportBody.model_fields if n in declared]
    # The kind's own fields first, then where it came from and the notes.
    ordered = [n for n in declared if n not in shared] + shared
    names = [n for n in ordered if n not in SHOWN_APART]
    out: list[tuple[str, str]] = []
    for name in names:
        value = view.get(name)
        if name == "occurred_at":
            out.append((label(name), uk_time(value, with_time=view.get("time_known", True))))
        elif name == "location" and isinstance(value, dict):
            out.append((label(name), f"{value['lat']}, {value['lon']}"))
        elif isinstance(value, dict):
            parts = [(k, v) for k, v in value.items() if v not in (None, "")]
            if not parts:
                out.append((label(name), "Not given"))
            for key, inner in parts:
                out.append((f"{label(name)}: {label(key)}", _text(key, inner)))
        elif name == "effects" and isinstance(value, list):
            known = {effect.value for effect in Effect}
            said = [EFFECT_LABELS[Effect(v)] if v in known else str(v) for v in value]
            out.append((label(name), "; ".join(said) or "None ticked"))
        else:
            out.append((label(name), _text(name, value)))
    return out


def substances(view: dict[str, Any]) -> list[dict[str, Any]]:
    """Each substance named, with what the vocabulary knows and, for results, how found."""
    results = view.get("results") or []
    out = []
    for item in view.get("substances", []):
        found_by = ""
        parts = item["field"].split(".")
        if parts[0] == "results" and len(parts) > 1 and parts[1].isdigit():
            index = int(parts[1])
            if index < len(results):
                found_by = f"{results[index]['method']}, {results[index]['abundance']}"
        out.append({**item, "found_by": found_by})
    return out


def summary(view: dict[str, Any]) -> str:
    """The substances of a report in one line for the list: canonical names where known."""
    names = [s["canonical"] or s["written"] for s in view.get("substances", [])]
    return ", ".join(dict.fromkeys(names))


def when(view: dict[str, Any]) -> str:
    """When it happened, in UK time; the day alone when no time of day is known."""
    moment = view.get("occurred_at") or view.get("received_at")
    day_only = view["kind"] == "drug_checking" or view.get("time_known") is False
    return uk_time(moment, with_time=not day_only)
