"""One HTML form per report kind. Each builds the same body the JSON API takes, so the use
case (`intake.file_report`) is the single place that decides what is valid; its errors, by
dotted path, are mapped back to the field they belong to."""

from __future__ import annotations

from typing import Any

from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    Field,
    Form,
    FormField,
    SelectField,
    StringField,
    TextAreaField,
)

from ldis.domain.reports import DrugCheckingReport, NearMissReport, SubstanceResult
from ldis.web.forms import WebForm, blank_to_none, friendly, london_to_utc

# Choices as {value: label}: WTForms 3.3's shorthand (tuples are deprecated there).
Choices = dict[str, str]
SOURCE_TYPES: Choices = {
    "": "Choose the kind of source",
    "drug_checking_service": "Drug checking service or lab",
    "outreach": "Outreach or harm-reduction team",
    "treatment_service": "Drug treatment service",
    "needle_exchange": "Needle and syringe programme",
    "pharmacy": "Pharmacy",
    "hospital": "Hospital or emergency department",
    "ambulance": "Ambulance service",
    "police": "Police",
    "custody_healthcare": "Custody or prison healthcare",
    "other": "Other",
}


# Labels where the stored value does not read well capitalised.
LABELS = {
    "lc-ms": "LC-MS",
    "gc-ms": "GC-MS",
    "ftir": "FTIR",
    "immunoassay strip": "Immunoassay test strip",
    "reagent": "Reagent test",
    "recovered_on_scene": "Recovered on scene",
    "hospital": "Taken to hospital",
}


def _choices(values: list[str], blank: str) -> Choices:
    """Choices from a domain enum, so a new value appears on the form by itself."""
    return {"": blank, **{v: LABELS.get(v, v.replace("_", " ").capitalize()) for v in values}}


def _select(label: str, choices: Choices, default: str = "") -> SelectField:
    return SelectField(label, choices=choices, default=default, validate_choice=False)


class ReportForm(WebForm):
    """Fields every kind has. Subclasses set `kind` and add their own."""

    kind = ""
    area = _select("Area", {})
    source_type = _select("Source type", SOURCE_TYPES)
    source_name = StringField("Source name")
    source_reference = StringField("Source's own reference")
    notes = TextAreaField("Notes")

    # dotted path in the body -> form field (paths not listed: "a.b" -> "a_b" when it exists)
    paths: dict[str, str] = {"source": "source_type", "location": "lat"}
    # The fields in the order the page shows them, so the error summary reads top to bottom.
    layout: tuple[str, ...] = ()
    SOURCE = ("source_type", "source_name", "source_reference")

    def set_areas(self, areas: list[tuple[str, str]], blank: str = "Choose an area") -> None:
        self.area.choices = {"": blank, **dict(areas)}

    def _common(self) -> dict[str, Any]:
        source = _put(
            {},
            type=self.source_type.data,
            name=self.source_name.data,
            reference=self.source_reference.data,
        )
        body: dict[str, Any] = {"kind": self.kind, "source": source}
        return _put(body, area=self.area.data, notes=self.notes.data)

    def body(self) -> dict[str, Any]:
        return self._common()

    def field_for(self, path: str) -> Field | None:
        name = self.paths.get(path) or path.replace(".", "_")
        if name not in self._fields and "." in path:
            name = self.paths.get(path.split(".", 1)[0], "")
        field: Field | None = self._fields.get(name)
        return field

    def map_errors(self, fields: dict[str, str]) -> tuple[dict[str, str], list[tuple[str, str]]]:
        """({field id: message beside it}, [(field id or "", message)] for the summary)."""
        beside: dict[str, str] = {}
        loose: list[tuple[str, str]] = []
        for path, message in fields.items():
            field = self.field_for(path)
            if field is None:
                loose.append(("", friendly("This report", message)))
                continue
            text = friendly(str(field.label.text), message, choose=isinstance(field, SelectField))
            beside.setdefault(field.id, text)
        order = [field.id for field in _walk(self, self.layout)]
        summary = [(fid, beside[fid]) for fid in order if fid in beside]
        return beside, summary + loose


def _walk(form: Form, layout: tuple[str, ...] = ()) -> list[Field]:
    """Every field, sub-forms' fields included: those in `layout` first, in its order."""
    names = [*layout, *(name for name in form._fields if name not in layout)]
    out: list[Field] = []
    for field in (form._fields[name] for name in names):
        out.extend(_walk(field.form) if isinstance(field, FormField) else [field])
    return out


def _put(body: dict[str, Any], **values: Any) -> dict[str, Any]:
    """Add the values that are not blank: a blank is "not given", as in the JSON API."""
    for key, value in values.items():
        if isinstance(value, (list, dict)) and value:
            body[key] = value
        elif not isinstance(value, (list, dict)) and blank_to_none(value) is not None:
            body[key] = value.strip() if isinstance(value, str) else value
    return body


def _location(lat: str | None, lon: str | None) -> dict[str, Any] | None:
    found = _put({}, lat=lat, lon=lon)
    return found or None


NO_RESULTS = "Give at least one result: the substance found and the method used"


class ResultRow(Form):
    """One row of results: a sub-form (the outer form carries the CSRF token)."""

    substance = StringField("Substance")
    method = _select("Method", _choices([m.value for m in SubstanceResult.Method], "Choose"))
    abundance = _select("Amount", {"primary": "Main substance", "trace": "Trace"}, "primary")


class DrugCheckingForm(ReportForm):
    kind = "drug_checking"
    sample_obtained_on = StringField("Date the sample was obtained")
    sold_as = StringField("Sold as")
    sample_form = _select(
        "Form", _choices([f.value for f in DrugCheckingReport.Form], "Choose a form")
    )
    appearance_colour = StringField("Colour")
    appearance_shape = StringField("Shape")
    appearance_markings = StringField("Markings or logo")
    appearance_weight_mg = StringField("Weight in milligrams")
    # Three fixed rows (a FieldList would renumber the rows sent and show one twice).
    result1 = FormField(ResultRow)
    result2 = FormField(ResultRow)
    result3 = FormField(ResultRow)
    harms_reported = TextAreaField("Harms reported")
    photo = FileField("Photo of the sample or packaging")
    source_type = _select("Source type", SOURCE_TYPES, default="drug_checking_service")
    paths = {**ReportForm.paths, "form": "sample_form"}
    layout = (
        "sample_obtained_on",
        "area",
        "sold_as",
        "sample_form",
        "appearance_colour",
        "appearance_shape",
        "appearance_markings",
        "appearance_weight_mg",
        "result1",
        "result2",
        "result3",
        "harms_reported",
        *ReportForm.SOURCE,
        "notes",
        "photo",
    )

    def result_rows(self) -> list[FormField[ResultRow]]:
        return [self.result1, self.result2, self.result3]

    def rows(self) -> list[tuple[int, dict[str, Any]]]:
        """(row number on the form, result) for each row that is not blank."""
        filled = []
        for number, entry in enumerate(self.result_rows()):
            row = entry.form
            if blank_to_none(row.substance.data) or blank_to_none(row.method.data):
                filled.append(
                    (
                        number,
                        _put(
                            {},
                            substance=row.substance.data,
                            method=row.method.data,
                            abundance=row.abundance.data,
                        ),
                    )
                )
        return filled

    def body(self) -> dict[str, Any]:
        appearance = _put(
            {},
            colour=self.appearance_colour.data,
            shape=self.appearance_shape.data,
            markings=self.appearance_markings.data,
            weight_mg=self.appearance_weight_mg.data,
        )
        return _put(
            self._common(),
            sample_obtained_on=self.sample_obtained_on.data,
            sold_as=self.sold_as.data,
            form=self.sample_form.data,
            appearance=appearance,
            results=[result for _, result in self.rows()],
            harms_reported=self.harms_reported.data,
        )

    def field_for(self, path: str) -> Field | None:
        parts = path.split(".")
        if parts[0] != "results":
            return super().field_for(path)
        rows = [number for number, _ in self.rows()]
        if len(parts) == 1 or not parts[1].isdigit() or int(parts[1]) >= len(rows):
            return self.result1.form.substance  # "give at least one result"
        row = self.result_rows()[rows[int(parts[1])]].form
        field: Field = row._fields.get(parts[2] if len(parts) > 2 else "", row.substance)
        return field

    def map_errors(self, fields: dict[str, str]) -> tuple[dict[str, str], list[tuple[str, str]]]:
        beside, summary = super().map_errors(fields)
        first = self.result1.form.substance.id
        if "results" in fields and not self.rows():
            beside[first] = NO_RESULTS
        named = []
        for fid, message in summary:
            if fid == first and beside[fid] == NO_RESULTS:
                message = NO_RESULTS
            elif fid.startswith("result") and fid[6:7].isdigit():
                number = int(fid[6])
                message = f"Result {number}: {message[0].lower()}{message[1:]}"
            named.append((fid, message))
        return beside, named


class NearMissForm(ReportForm):
    kind = "near_miss"
    occurred_at = StringField("Date and time it happened")
    lat = StringField("Latitude")
    lon = StringField("Longitude")
    suspected_substances = StringField("Substances suspected")
    naloxone_doses = StringField("Naloxone doses given")
    outcome = _select(
        "Outcome", _choices([o.value for o in NearMissReport.Outcome], "Choose an outcome")
    )
    setting = StringField("Setting")
    source_type = _select("Source type", SOURCE_TYPES, default="outreach")
    paths = {**ReportForm.paths, "location.lat": "lat", "location.lon": "lon"}
    layout = (
        "occurred_at",
        "area",
        "suspected_substances",
        "naloxone_doses",
        "outcome",
        "setting",
        "lat",
        "lon",
        *ReportForm.SOURCE,
        "notes",
    )

    def body(self) -> dict[str, Any]:
        when = blank_to_none(self.occurred_at.data)
        names = [n.strip() for n in (self.suspected_substances.data or "").split(",")]
        return _put(
            self._common(),
            occurred_at=london_to_utc(when) if when else None,
            location=_location(self.lat.data, self.lon.data),
            suspected_substances=[n for n in names if n],
            naloxone_doses=self.naloxone_doses.data,
            outcome=self.outcome.data,
            setting=self.setting.data,
        )

    def field_for(self, path: str) -> Field | None:
        if path.startswith("suspected_substances"):
            return self.suspected_substances
        return super().field_for(path)


class CalloutForm(ReportForm):
    kind = "callout"
    occurred_on = StringField("Date of the call-out")
    occurred_time = StringField("Time of the call-out (if known)")
    lat = StringField("Latitude")
    lon = StringField("Longitude")
    naloxone_given = _select("Naloxone given", {"": "Not known", "yes": "Yes", "no": "No"})
    source_type = _select("Source type", SOURCE_TYPES, default="ambulance")
    paths = {
        **ReportForm.paths,
        "location.lat": "lat",
        "location.lon": "lon",
        "occurred_at": "occurred_on",
        "time_known": "occurred_time",
    }
    layout = (
        "occurred_on",
        "occurred_time",
        "area",
        "naloxone_given",
        "lat",
        "lon",
        *ReportForm.SOURCE,
        "notes",
    )

    def body(self) -> dict[str, Any]:
        day = blank_to_none(self.occurred_on.data)
        clock = blank_to_none(self.occurred_time.data)
        when = london_to_utc(f"{day}T{clock}") if day and clock else day
        given = {"yes": True, "no": False}.get(self.naloxone_given.data or "")
        return _put(
            self._common(),
            occurred_at=when,
            location=_location(self.lat.data, self.lon.data),
            naloxone_given=given,
        )


FORMS: dict[str, type[ReportForm]] = {
    form.kind: form for form in (DrugCheckingForm, NearMissForm, CalloutForm)
}


class FilterForm(WebForm):
    """The reports list's filters (GET: no CSRF token needed, nothing changes)."""

    kind = _select("Kind", {})
    area = _select("Area", {})
    substance = StringField("Substance")
    since = StringField("From")
    until = StringField("To")
    red_list = BooleanField("Red-list substances only")
