"""Report kinds: validation names each bad field; locations are rounded; dates are sane."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ldis.domain.errors import ValidationFailed
from ldis.domain.reports import REPORT_KINDS, NearMissReport, parse_report

NEAR_MISS: dict[str, Any] = {
    "kind": "near_miss",
    "area": "york-c",
    "occurred_at": "2026-11-21T23:40:00Z",
    "naloxone_doses": 2,
    "outcome": "hospital",
    "source": {"type": "outreach"},
}
DRUG_CHECK: dict[str, Any] = {
    "kind": "drug_checking",
    "area": "YORK-C",
    "sample_obtained_on": "2026-11-20",
    "sold_as": "oxycodone",
    "form": "tablet",
    "appearance": {"colour": "green", "shape": "round", "markings": "OC 80"},
    "results": [{"substance": "metonitazene", "method": "lc-ms", "abundance": "primary"}],
    "source": {"type": "drug_checking_service", "name": "Lab"},
}


def fails(body: Any) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as caught:
        parse_report(body)
    return caught.value.fields


def test_both_contract_examples_parse() -> None:
    near_miss = parse_report(NEAR_MISS)
    assert isinstance(near_miss, NearMissReport) and near_miss.area == "YORK-C"
    assert parse_report(DRUG_CHECK).kind == "drug_checking"
    assert set(REPORT_KINDS) >= {"near_miss", "drug_checking"}


def test_unknown_kind_and_non_object() -> None:
    assert "kind" in fails({**NEAR_MISS, "kind": "rumour"})
    assert fails([1, 2]) == {"body": "must be a JSON object"}


def test_each_bad_field_is_named_by_its_path() -> None:
    fields = fails(
        {**DRUG_CHECK, "form": "cake", "results": [{"substance": "", "method": "taste"}]}
    )
    assert set(fields) == {"form", "results.0.substance", "results.0.method"}


def test_missing_and_extra_fields() -> None:
    body = {k: v for k, v in NEAR_MISS.items() if k != "occurred_at"} | {"patient_name": "x"}
    fields = fails(body)
    assert fields["occurred_at"] == "Field required"
    assert "remove it" in fields["patient_name"]


def test_dates_must_be_after_2000_and_not_in_the_future() -> None:
    assert "2000" in fails({**NEAR_MISS, "occurred_at": "1999-12-31T23:00:00Z"})["occurred_at"]
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert "future" in fails({**NEAR_MISS, "occurred_at": future})["occurred_at"]
    assert "time zone" in fails({**NEAR_MISS, "occurred_at": "2026-11-21T23:40:00"})["occurred_at"]
    assert (
        "future" in fails({**DRUG_CHECK, "sample_obtained_on": "2999-01-01"})["sample_obtained_on"]
    )


def test_wrong_types_are_refused_not_coerced_silently() -> None:
    fields = fails({**NEAR_MISS, "naloxone_doses": "lots", "location": {"lat": 200, "lon": 0}})
    assert set(fields) == {"naloxone_doses", "location.lat"}


@given(lat=st.floats(-90, 90), lon=st.floats(-180, 180))
def test_locations_are_stored_no_finer_than_about_100_m(lat: float, lon: float) -> None:
    report = parse_report({**NEAR_MISS, "location": {"lat": lat, "lon": lon}})
    assert isinstance(report, NearMissReport) and report.location is not None
    assert abs(report.location.lat - lat) <= 0.0005 + 1e-9
    assert abs(report.location.lon - lon) <= 0.0005 + 1e-9
    assert round(report.location.lat, 3) == report.location.lat


@given(
    st.dictionaries(st.text(max_size=10), st.one_of(st.none(), st.integers(), st.text(max_size=20)))
)
def test_arbitrary_objects_never_crash_the_validator(body: dict[str, Any]) -> None:
    try:
        parse_report(body)
    except ValidationFailed as exc:
        assert exc.fields and all(isinstance(v, str) and v for v in exc.fields.values())
