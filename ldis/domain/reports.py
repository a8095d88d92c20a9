"""Report kinds: each kind is one pydantic model registered under its name.

Adding a kind means one model here (or in its own module) and one `register` line; the API,
the forms and storage read the choices from `REPORT_KINDS`.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from ldis.domain.errors import ValidationFailed
from ldis.domain.validation import parse

EARLIEST = date(2000, 1, 1)
# Clocks drift; a report a few minutes "in the future" is a clock, not a lie.
CLOCK_SKEW = timedelta(minutes=10)

_MARKUP = re.compile(r"<\s*[a-zA-Z/!?]")


def plain_text(value: str) -> str:
    # Reports are shown to the panel and copied into alerts: refuse markup at the door
    # (pages escape output too; this keeps the stored record clean).
    if _MARKUP.search(value):
        raise ValueError("must not contain HTML or script tags; write plain text")
    return value


Text = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(plain_text),
]
LongText = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=4000), AfterValidator(plain_text)
]
AreaCode = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40, to_upper=True)
]


class Source(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Text
    name: Text | None = None
    # The source's own reference (lab sample id, ambulance incident number): a second report
    # with the same one from the same source is the same report, not a new one.
    reference: Text | None = None


class Location(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)

    def rounded(self) -> Location:
        # Three decimals is about 110 m of latitude: enough for clusters, too coarse for a door.
        return Location(lat=round(self.lat, 3), lon=round(self.lon, 3))


def _check_moment(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("must include a time zone, e.g. 2026-11-21T23:40:00Z")
    if value.date() < EARLIEST:
        raise ValueError("must be on or after 2000-01-01")
    if value > datetime.now(UTC) + CLOCK_SKEW:
        raise ValueError("must not be in the future")
    return value.astimezone(UTC)


def _check_day(value: date) -> date:
    if value < EARLIEST:
        raise ValueError("must be on or after 2000-01-01")
    if value > (datetime.now(UTC) + CLOCK_SKEW).date():
        raise ValueError("must not be in the future")
    return value


class ReportBody(BaseModel):
    """Fields every kind shares."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    kind_name: ClassVar[str]

    kind: str
    area: AreaCode | None = None
    source: Source
    notes: LongText = ""

    # Fields a person types freely: checked for personal identifiers before storing.
    free_text_fields: ClassVar[tuple[str, ...]] = ("notes",)
    # Whether the report must end up in an area: when only a location is given, intake looks
    # up the area whose boundary contains it, and refuses the report if none does.
    needs_area: ClassVar[bool] = True

    @model_validator(mode="after")
    def _area_needed(self) -> ReportBody:
        if self.area is None and self.location_point() is None:
            raise ValueError("area: give the area code (or a location)")
        return self

    def location_point(self) -> Location | None:
        return None

    def event_time(self) -> datetime | None:
        """When the thing reported happened, for windows and clusters (None when unknown)."""
        return None

    def free_text(self) -> dict[str, str]:
        return {name: getattr(self, name) or "" for name in self.free_text_fields}

    def substance_names(self) -> list[tuple[str, str]]:
        """(field path, name as written) for every substance the report names."""
        return []

    def stored_data(self) -> dict[str, Any]:
        """What is kept: the body without the fields stored in their own columns."""
        return self.model_dump(mode="json", exclude={"kind", "area"})

    def dedupe_key(self) -> str | None:
        """Same kind, same source, same source reference: the same report."""
        if not self.source.reference:
            return None
        parts = [self.kind, self.source.type.lower(), (self.source.name or "").lower()]
        return _digest([*parts, self.source.reference])

    def content_hash(self) -> str:
        """A fingerprint of what was reported, to spot a resend within minutes."""
        return _digest([json.dumps(self.model_dump(mode="json"), sort_keys=True)])


def _digest(parts: list[str]) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


class SubstanceResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    class Method(StrEnum):
        lc_ms = "lc-ms"
        gc_ms = "gc-ms"
        ftir = "ftir"
        immunoassay_strip = "immunoassay strip"
        reagent = "reagent"
        other = "other"

    class Abundance(StrEnum):
        primary = "primary"
        trace = "trace"

    substance: Text
    method: Method
    abundance: Abundance = Abundance.primary


class Appearance(BaseModel):
    model_config = ConfigDict(extra="forbid")

    colour: Text | None = None
    shape: Text | None = None
    markings: Text | None = None
    weight_mg: float | None = Field(default=None, gt=0, le=1_000_000)


class DrugCheckingReport(ReportBody):
    kind_name = "drug_checking"

    class Form(StrEnum):
        tablet = "tablet"
        powder = "powder"
        crystal = "crystal"
        liquid = "liquid"
        blotter = "blotter"
        herbal = "herbal"
        resin = "resin"
        vape = "vape"
        other = "other"

    area: AreaCode
    sample_obtained_on: date
    sold_as: Text
    form: Form
    appearance: Appearance = Field(default_factory=Appearance)
    results: list[SubstanceResult] = Field(min_length=1, max_length=50)
    harms_reported: LongText = ""

    free_text_fields: ClassVar[tuple[str, ...]] = ("notes", "harms_reported")
    _obtained = field_validator("sample_obtained_on")(_check_day)

    def substance_names(self) -> list[tuple[str, str]]:
        return [(f"results.{i}.substance", r.substance) for i, r in enumerate(self.results)]

    def event_time(self) -> datetime | None:
        return datetime.combine(self.sample_obtained_on, datetime.min.time(), tzinfo=UTC)


class NearMissReport(ReportBody):
    kind_name = "near_miss"

    class Outcome(StrEnum):
        recovered_on_scene = "recovered_on_scene"
        hospital = "hospital"
        died = "died"
        unknown = "unknown"

    # Or a location alone: intake fills the area from the boundaries (ldis.services.areas).
    area: AreaCode | None = None
    occurred_at: datetime
    location: Location | None = None
    suspected_substances: list[Text] = Field(default_factory=list, max_length=50)
    naloxone_doses: int = Field(default=0, ge=0, le=50)
    outcome: Outcome = Outcome.unknown
    setting: Text | None = None

    free_text_fields: ClassVar[tuple[str, ...]] = ("notes", "setting")
    _occurred = field_validator("occurred_at")(_check_moment)
    _rounded = field_validator("location")(lambda value: value.rounded() if value else None)

    def location_point(self) -> Location | None:
        return self.location

    def event_time(self) -> datetime | None:
        return self.occurred_at

    def substance_names(self) -> list[tuple[str, str]]:
        return [(f"suspected_substances.{i}", n) for i, n in enumerate(self.suspected_substances)]


_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _date_only_is_midnight_utc(value: Any) -> Any:
    # Ambulance extracts often give the day alone; it is kept as 00:00 UTC that day and
    # marked `time_known: false`, rather than refused.
    if isinstance(value, str) and _DATE_ONLY.match(value.strip()):
        return value.strip() + "T00:00:00Z"
    return value


def _blank_is_unknown(value: Any) -> Any:
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("", "unknown", "na", "n/a", "null", "none"):
            return None
        if lowered in ("true", "yes", "y", "1"):
            return True
        if lowered in ("false", "no", "n", "0"):
            return False
    return value


class CalloutReport(ReportBody):
    """One ambulance call-out to a suspected overdose; arrives in batches and from CSV."""

    kind_name = "callout"
    # Call-outs arrive by the thousand from wherever the ambulance went: one outside every
    # boundary is kept without an area and still counts towards the location clusters.
    needs_area: ClassVar[bool] = False

    occurred_at: Annotated[datetime, BeforeValidator(_date_only_is_midnight_utc)]
    time_known: bool = True
    location: Location | None = None
    naloxone_given: Annotated[bool | None, BeforeValidator(_blank_is_unknown)] = None

    _occurred = field_validator("occurred_at")(_check_moment)
    _rounded = field_validator("location")(lambda value: value.rounded() if value else None)

    @model_validator(mode="before")
    @classmethod
    def _mark_date_only(cls, data: Any) -> Any:
        if isinstance(data, dict) and "time_known" not in data:
            raw = data.get("occurred_at")
            if isinstance(raw, str) and _DATE_ONLY.match(raw.strip()):
                data = {**data, "time_known": False}
        return data

    def location_point(self) -> Location | None:
        return self.location

    def event_time(self) -> datetime | None:
        return self.occurred_at


REPORT_KINDS: dict[str, type[ReportBody]] = {}


def register(kind: type[ReportBody]) -> type[ReportBody]:
    REPORT_KINDS[kind.kind_name] = kind
    return kind


register(DrugCheckingReport)
register(NearMissReport)
register(CalloutReport)


def parse_report(body: Any) -> ReportBody:
    """Validate a report body of any kind; raise ValidationFailed naming each bad field."""
    if not isinstance(body, dict):
        raise ValidationFailed({"body": "must be a JSON object"})
    kind = body.get("kind")
    if not isinstance(kind, str) or kind not in REPORT_KINDS:
        allowed = ", ".join(sorted(REPORT_KINDS))
        raise ValidationFailed({"kind": f"must be one of: {allowed}"})
    return parse(REPORT_KINDS[kind], body)
