"""Report kinds: each kind is one pydantic model registered under its name.

Adding a kind means one model here (or in its own module) and one `register` line; the API,
the forms and storage read the choices from `REPORT_KINDS`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from ldis.domain.errors import ValidationFailed
from ldis.domain.validation import parse

EARLIEST = date(2000, 1, 1)
# Clocks drift; a report a few minutes "in the future" is a clock, not a lie.
CLOCK_SKEW = timedelta(minutes=10)

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=4000)]
AreaCode = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40, to_upper=True)
]


class Source(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Text
    name: Text | None = None


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
    area: AreaCode
    source: Source
    notes: LongText = ""

    def event_time(self) -> datetime | None:
        """When the thing reported happened, for windows and clusters (None when unknown)."""
        return None

    def stored_data(self) -> dict[str, Any]:
        """What is kept: the body without the fields stored in their own columns."""
        return self.model_dump(mode="json", exclude={"kind", "area"})


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

    sample_obtained_on: date
    sold_as: Text
    form: Form
    appearance: Appearance = Field(default_factory=Appearance)
    results: list[SubstanceResult] = Field(min_length=1, max_length=50)
    harms_reported: LongText = ""

    _obtained = field_validator("sample_obtained_on")(_check_day)

    def event_time(self) -> datetime | None:
        return datetime.combine(self.sample_obtained_on, datetime.min.time(), tzinfo=UTC)


class NearMissReport(ReportBody):
    kind_name = "near_miss"

    class Outcome(StrEnum):
        recovered_on_scene = "recovered_on_scene"
        hospital = "hospital"
        died = "died"
        unknown = "unknown"

    occurred_at: datetime
    location: Location | None = None
    suspected_substances: list[Text] = Field(default_factory=list, max_length=50)
    naloxone_doses: int = Field(default=0, ge=0, le=50)
    outcome: Outcome = Outcome.unknown
    setting: Text | None = None

    _occurred = field_validator("occurred_at")(_check_moment)

    @field_validator("location")
    @classmethod
    def _round_location(cls, value: Location | None) -> Location | None:
        return value.rounded() if value is not None else None

    def event_time(self) -> datetime | None:
        return self.occurred_at


REPORT_KINDS: dict[str, type[ReportBody]] = {}


def register(kind: type[ReportBody]) -> type[ReportBody]:
    REPORT_KINDS[kind.kind_name] = kind
    return kind


register(DrugCheckingReport)
register(NearMissReport)


def parse_report(body: Any) -> ReportBody:
    """Validate a report body of any kind; raise ValidationFailed naming each bad field."""
    if not isinstance(body, dict):
        raise ValidationFailed({"body": "must be a JSON object"})
    kind = body.get("kind")
    if kind not in REPORT_KINDS:
        allowed = ", ".join(sorted(REPORT_KINDS))
        raise ValidationFailed({"kind": f"must be one of: {allowed}"})
    return parse(REPORT_KINDS[kind], body)
