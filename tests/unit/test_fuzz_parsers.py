"""Fuzzing the parsers that read what people and other systems send: whatever arrives, each
one either returns or raises the error it documents (ValidationFailed for request bodies,
query strings and files; ValueError for single values), never anything else, so bad input
can never become a 500 or a crashed import. Where a parser has an inverse, it round-trips.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import string
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from ldis.domain import geo, inbound, privacy, recipients_csv, rules, sms
from ldis.domain.alerts import AlertDraft
from ldis.domain.areas import AreaUpdate, NeighbourInput
from ldis.domain.audience import AudienceQuery
from ldis.domain.errors import ValidationFailed
from ldis.domain.grading import DecisionInput, GradeInput
from ldis.domain.recipients import (
    AreaInput,
    ContactInput,
    ContactUpdate,
    ManagerInput,
    QuietHours,
    ServiceInput,
    ServiceTypeInput,
    ServiceTypeUpdate,
    ServiceUpdate,
    normalise_email,
    normalise_phone,
)
from ldis.domain.reports import REPORT_KINDS, parse_report
from ldis.domain.validation import parse
from ldis.services import csv_import, intake, report_queries

FUZZ = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

INPUT_MODELS: list[type[BaseModel]] = [
    *REPORT_KINDS.values(),
    AlertDraft,
    AudienceQuery,
    GradeInput,
    DecisionInput,
    AreaInput,
    AreaUpdate,
    NeighbourInput,
    ServiceTypeInput,
    ServiceTypeUpdate,
    ServiceInput,
    ServiceUpdate,
    ManagerInput,
    ContactInput,
    ContactUpdate,
    QuietHours,
    report_queries.ReportFilter,
]

# Text with the characters that break naive code: NUL, surrogate-free astral, RTL marks,
# spreadsheet formula starts, quotes and separators.
awkward_text = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from(list("\x00\r\n\t\"',;=+-@'\u2013\u200f\ufeff£é€😀")),
    ),
    max_size=60,
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),  # NaN and infinities too: Python's json module reads them
    awkward_text,
    st.dates().map(str),
    st.datetimes().map(lambda d: d.isoformat()),
)
# Aware times at the edges: year 1 or 9999 with an offset overflows when made UTC.
edge_moments = st.one_of(
    st.builds(
        lambda d, minutes: d.replace(tzinfo=timezone(timedelta(minutes=minutes))).isoformat(),
        st.datetimes(),
        st.integers(-(24 * 60 - 1), 24 * 60 - 1),
    ),
    st.dates().map(str),
    st.sampled_from(["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "9999-12-31"]),
)
scalars = st.one_of(scalars, edge_moments)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(awkward_text, children, max_size=4),
    ),
    max_leaves=12,
)


def near_miss_of(model: type[BaseModel]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects using the model's own field names with arbitrary values: deeper than noise."""
    names = sorted(model.model_fields)
    return st.dictionaries(st.sampled_from(names), json_values, max_size=len(names))


def _only_validation_failed(call: Any, *args: Any) -> Any:
    try:
        return call(*args)
    except ValidationFailed as exc:
        assert exc.fields, "a refusal names at least one field"
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in exc.fields.items())
        return None


# --- request bodies -----------------------------------------------------------------------


def _storable(value: Any) -> None:
    """What the database will be given: moments that convert to UTC, local times of day."""
    if isinstance(value, BaseModel):
        value = dict(value)
    if isinstance(value, dict):
        for child in value.values():
            _storable(child)
    elif isinstance(value, list | tuple):
        for child in value:
            _storable(child)
    elif isinstance(value, datetime):
        if value.tzinfo is not None:
            value.astimezone(UTC)  # raises OverflowError at the edges of time
    elif isinstance(value, time):
        assert value.tzinfo is None, "a time of day is stored without a zone"
    elif isinstance(value, date):
        assert 1 <= value.year <= 9999


@pytest.mark.parametrize("model", INPUT_MODELS, ids=lambda m: m.__name__)
@FUZZ
@given(data=st.data())
def test_parse_refuses_anything_with_validation_failed(model: type[BaseModel], data: Any) -> None:
    body = data.draw(st.one_of(json_values, near_miss_of(model)))
    parsed = _only_validation_failed(parse, model, body)
    if parsed is not None:
        _storable(parsed)


@FUZZ
@given(
    body=st.one_of(
        json_values,
        st.builds(
            lambda kind, rest: {**rest, "kind": kind},
            st.one_of(st.sampled_from(sorted(REPORT_KINDS)), json_values),
            st.dictionaries(
                st.sampled_from(sorted({f for m in REPORT_KINDS.values() for f in m.model_fields})),
                json_values,
            ),
        ),
    )
)
@example(body={"kind": []})  # an unhashable kind once escaped as TypeError
@example(body={"kind": {"a": 1}})
def test_report_kinds_refuse_anything_with_validation_failed(body: Any) -> None:
    _only_validation_failed(parse_report, body)
    # The privacy guard runs on what parsed: it must not raise either.
    _only_validation_failed(intake.validate, body)


VALID_DRAFT = {
    "title": "Nitazenes in fake oxycodone",
    "areas": ["YORK-C"],
    "fields": {"summary": "Green tablets.", "advice": "Carry naloxone."},
}


@FUZZ
@given(field=st.sampled_from(["expires_at", "review_by"]), when=edge_moments)
def test_alert_dates_parse_to_moments_the_database_can_store(field: str, when: str) -> None:
    parsed = _only_validation_failed(parse, AlertDraft, {**VALID_DRAFT, field: when})
    if parsed is not None:
        _storable(parsed)


@FUZZ
@given(field=st.sampled_from(["since", "until"]), when=edge_moments)
def test_report_filter_dates_leave_room_for_the_whole_day(field: str, when: str) -> None:
    parsed = _only_validation_failed(report_queries.parse_filter, {field: when})
    moment = getattr(parsed, field) if parsed is not None else None
    if moment is not None:
        moment.astimezone(UTC)
        moment + timedelta(days=1)  # `until` as a date means the whole of that day


@FUZZ
@given(
    args=st.dictionaries(
        st.sampled_from(
            ["kind", "area", "substance", "since", "until", "red_list", "limit", "offset", "x"]
        ),
        st.one_of(awkward_text, st.dates().map(str), st.integers().map(str)),
    )
)
@example(args={"until": "9999-12-31"})
@example(args={"since": "2026-11-21T23:40:00+23:59"})
def test_report_filters_refuse_anything_with_validation_failed(args: dict[str, str]) -> None:
    _only_validation_failed(report_queries.parse_filter, args)


# --- single values ------------------------------------------------------------------------


@FUZZ
@given(raw=awkward_text)
@example(raw="+447700900123")
@example(raw="07700 900123")
def test_phone_numbers_normalise_or_raise_value_error(raw: str) -> None:
    try:
        e164 = normalise_phone(raw)
    except ValueError:
        return
    assert e164.startswith("+44")
    assert normalise_phone(e164) == e164  # idempotent


@FUZZ
@given(raw=st.one_of(awkward_text, st.emails()))
def test_email_addresses_normalise_or_raise_value_error(raw: str) -> None:
    try:
        address = normalise_email(raw)
    except ValueError:
        return
    assert normalise_email(address) == address


@FUZZ
@given(lat=st.one_of(st.none(), awkward_text, st.floats().map(str)), lon=st.none() | awkward_text)
def test_points_parse_or_refuse(lat: Any, lon: Any) -> None:
    point = _only_validation_failed(geo.parse_point, lat, lon)
    if point is not None:
        assert all(math.isfinite(v) for v in point)


@FUZZ
@given(
    value=st.one_of(
        json_values,
        st.fixed_dictionaries(
            {
                "type": st.sampled_from(["Polygon", "MultiPolygon", "Feature", "Point"]),
                "coordinates": json_values,
            }
        ),
        st.fixed_dictionaries(
            {
                "type": st.just("Polygon"),
                "coordinates": st.lists(
                    st.lists(
                        st.lists(st.floats(-200, 200) | st.integers(), min_size=2, max_size=3),
                        max_size=6,
                    ),
                    max_size=2,
                ),
            }
        ),
    )
)
def test_boundaries_parse_or_refuse(value: Any) -> None:
    _only_validation_failed(geo.parse_boundary, value)


# --- the recipients CSV -------------------------------------------------------------------

REFERENCE = recipients_csv.Reference(
    area_codes=frozenset({"YORK-C", "YORK-W"}),
    service_types={"pharmacy": True, "hostel": False},
)
cells = st.one_of(
    awkward_text,
    st.sampled_from(
        [
            "NSP-1",
            "York NSP",
            "pharmacy",
            "YORK-C",
            "professional;public",
            "primary",
            "a@example.org",
            "07700 900123",
            "sms;email",
            "22:00-07:00",
            "'=1+1",
            "",
        ]
    ),
)


def _csv_bytes(rows: list[list[str]], *, bom: bool) -> bytes:
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return (b"\xef\xbb\xbf" if bom else b"") + out.getvalue().encode()


@FUZZ
@given(
    data=st.one_of(
        st.binary(max_size=300),
        st.builds(
            lambda rows, bom: _csv_bytes([list(recipients_csv.COLUMNS), *rows], bom=bom),
            st.lists(st.lists(cells, min_size=11, max_size=13), max_size=4),
            st.booleans(),
        ),
    )
)
@example(data=b"PK\x03\x04rest")
@example(data=b"\xff\xfes\x00")
def test_recipients_csv_parses_or_refuses_the_file(data: bytes) -> None:
    parsed = _only_validation_failed(recipients_csv.parse_file, data, REFERENCE)
    if parsed is None:
        return
    for error in parsed.errors:
        assert error.row >= 2 and error.message
    assert len(parsed.contacts) <= parsed.rows


@FUZZ
@given(value=awkward_text)
@example(value="22:00-07:00")
@example(value="2200 to 0700")
@example(value="25:00-07:00")
def test_quiet_hours_cells_parse_or_raise_value_error(value: str) -> None:
    try:
        start, end = recipients_csv.parse_quiet_hours(value)
    except ValueError:
        return
    text = recipients_csv.format_quiet_hours(start, end)
    assert recipients_csv.parse_quiet_hours(text) == (start, end)


plain_cells = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30
).map(str.strip)


@FUZZ
@given(
    records=st.lists(
        st.fixed_dictionaries({column: plain_cells for column in recipients_csv.COLUMNS}),
        max_size=3,
    )
)
def test_the_export_reads_back_as_the_same_cells(records: list[dict[str, str]]) -> None:
    # A cell that itself starts with a quote and a formula character ("'=x") is the one
    # value the export cannot tell from an escaped one; spreadsheets do the same.
    assume(
        not any(
            v.startswith("'") and v[1:].startswith(recipients_csv.FORMULA_START)
            for r in records
            for v in r.values()
        )
    )
    text = recipients_csv.decode(recipients_csv.render(records))
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == list(recipients_csv.COLUMNS)
    read_back = [
        {c: recipients_csv.cell(row[i]) for i, c in enumerate(recipients_csv.COLUMNS)}
        for row in rows[1:]
    ]
    assert read_back == records


# --- the call-out CSV (`ldis import-callouts`) --------------------------------------------

HEADER = ["incident_date", "latitude", "longitude", "narcan_given", "area", "reference"]
MAPPING = {
    "occurred_at": "incident_date",
    "lat": "latitude",
    "lon": "longitude",
    "naloxone_given": "narcan_given",
    "area": "area",
    "reference": "reference",
}
callout_cells = st.one_of(
    awkward_text,
    st.sampled_from(["2026-11-01", "2026-11-01T02:10:00Z", "53.96", "-1.08", "yes", "Y", ""]),
    st.floats().map(str),
)


@FUZZ
@given(rows=st.lists(st.lists(callout_cells, min_size=5, max_size=7), max_size=5))
def test_callout_rows_become_bodies_that_validate_or_refuse(rows: list[list[str]]) -> None:
    text = io.StringIO(newline="")
    csv.writer(text).writerows([HEADER, *rows])
    reader = csv.reader(io.StringIO(text.getvalue(), newline=""))
    header = next(reader)
    for line, body, problems in csv_import._rows(reader, header, MAPPING):
        assert line >= 2
        if body is None:
            assert problems
            continue
        reference = body.pop("reference")
        body = {
            **body,
            "kind": "callout",
            "source": {"type": "ambulance", "name": "test", "reference": reference},
        }
        _only_validation_failed(intake.validate, body)


@FUZZ
@given(pairs=st.lists(awkward_text, max_size=4))
@example(pairs=["lat=latitude"])
def test_column_mappings_parse_or_raise_value_error(pairs: list[str]) -> None:
    try:
        mapping = csv_import.parse_mapping(pairs)
    except ValueError:
        return
    assert set(mapping) <= set(csv_import.OUR_FIELDS)


# --- inbound texts ------------------------------------------------------------------------

noise = st.text(alphabet=" .,!-_'\t\n", max_size=3)


@FUZZ
@given(body=awkward_text)
def test_any_text_is_a_keyword_an_acknowledgement_or_neither(body: str) -> None:
    word = inbound.keyword(body)
    assert word is None or isinstance(word, inbound.Keyword)
    ack = inbound.acknowledgement(body)
    assert ack is None or isinstance(ack, inbound.AckRequest)


@FUZZ
@given(
    word=st.sampled_from(sorted(inbound.KEYWORDS)),
    before=noise,
    after=noise,
    lower=st.booleans(),
)
def test_keywords_read_through_case_and_punctuation(
    word: str, before: str, after: str, lower: bool
) -> None:
    written = before + (word.lower() if lower else word) + after
    assert inbound.keyword(written) is inbound.KEYWORDS[word]


@FUZZ
@given(
    alert=st.integers(1, 999_999_999),
    version=st.none() | st.integers(1, 9999),
    form=st.sampled_from(
        ["ACK LDIS-{a}{v}", "ack ldis {a}{v}", "LDIS-{a}{v}", "Acknowledged {a}{v}"]
    ),
)
def test_acknowledgements_round_trip_the_reference(
    alert: int, version: int | None, form: str
) -> None:
    suffix = f"-v{version}" if version is not None else ""
    ack = inbound.acknowledgement(form.format(a=alert, v=suffix))
    assert ack == inbound.AckRequest(alert, version)


@FUZZ
@given(code=st.integers(100_000, 999_999))
def test_a_verification_code_is_never_an_acknowledgement(code: int) -> None:
    assert inbound.acknowledgement(str(code)) is None


# --- SMS segments -------------------------------------------------------------------------

gsm_text = st.text(alphabet=sorted(sms.GSM7_BASIC | sms.GSM7_EXTENDED), max_size=500)


@FUZZ
@given(text=st.one_of(awkward_text, gsm_text, st.text(max_size=400)))
def test_segments_are_consistent_with_units(text: str) -> None:
    length = sms.sms_length(text)
    single, part = (
        (sms.SINGLE_GSM7, sms.PART_GSM7)
        if length.encoding is sms.SmsEncoding.gsm7
        else (sms.SINGLE_UCS2, sms.PART_UCS2)
    )
    assert (length.segments == 0) == (text == "")
    if 0 < length.units <= single:
        assert length.segments == 1
    elif length.units > single:
        assert math.ceil(length.units / part) <= length.segments <= length.units
    assert (length.encoding is sms.SmsEncoding.ucs2) == bool(length.non_gsm)
    assert all(c in text for c in length.non_gsm)


@FUZZ
@given(text=gsm_text, more=gsm_text)
def test_gsm_text_never_gets_cheaper_when_it_grows(text: str, more: str) -> None:
    before, after = sms.sms_length(text), sms.sms_length(text + more)
    assert after.encoding is sms.SmsEncoding.gsm7
    assert after.units == before.units + sms.sms_length(more).units
    assert after.segments >= before.segments


# --- the privacy guard --------------------------------------------------------------------


@FUZZ
@given(text=st.one_of(awkward_text, st.text(max_size=300)))
def test_findings_are_ordered_non_overlapping_excerpts(text: str) -> None:
    findings = privacy.find_personal_identifiers(text)
    for finding in findings:
        assert text[finding.start : finding.end] == finding.excerpt
    for first, second in itertools.pairwise(findings):
        assert first.end <= second.start
    message = privacy.describe(findings)
    assert (message == "") == (not findings)


def _nhs_number(nine: str) -> str | None:
    total = sum(int(d) * w for d, w in zip(nine, range(10, 1, -1), strict=True))
    check = (11 - total % 11) % 11
    return None if check == 10 else nine + str(check)


@FUZZ
@given(
    nine=st.text(alphabet=string.digits, min_size=9, max_size=9),
    before=st.sampled_from(["", "NHS no ", "patient ", "(", "ref: "]),
    after=st.sampled_from(["", " seen", ".", ")"]),
)
def test_a_valid_nhs_number_is_always_found(nine: str, before: str, after: str) -> None:
    number = _nhs_number(nine)
    assume(number is not None and len(set(number)) > 1)
    assert number is not None
    assert privacy.nhs_number_is_valid(number)
    findings = privacy.find_personal_identifiers(f"{before}{number}{after}")
    assert any(number in f.excerpt for f in findings)


# --- keys derived from what reporters write -----------------------------------------------


@FUZZ
@given(
    colour=st.none() | awkward_text | st.text(min_size=150, max_size=400),
    markings=st.none() | awkward_text | st.text(min_size=150, max_size=400),
)
def test_appearance_keys_fit_their_column_and_stay_distinct(
    colour: str | None, markings: str | None
) -> None:
    key = rules.appearance_key(colour, markings)
    if key is None:
        return
    assert len(key) <= rules.APPEARANCE_KEY_MAX
    assert key == rules.appearance_key(colour, markings)
    assert rules.appearance_key((colour or "") + "x", markings) != key
