"""Reading the recipients CSV: the file (encoding, header), each row checked with the same
rules as the API, row numbers as a spreadsheet shows them, and the export's own format."""

from __future__ import annotations

from datetime import time

import pytest

from ldis.domain.errors import ValidationFailed
from ldis.domain.recipients_csv import (
    COLUMNS,
    ContactRow,
    ParsedFile,
    Reference,
    export_phone,
    format_quiet_hours,
    parse_file,
    parse_quiet_hours,
    render,
    split_list,
)

REFERENCE = Reference(
    area_codes=frozenset({"YORK-C", "YORK-W", "SELBY"}),
    service_types={"pharmacy": True, "outreach": True, "prison": False},
)
HEADER = ",".join(COLUMNS)
GOOD = "NSP-1,York NSP,pharmacy,YORK-C;YORK-W,,,Jo Bloggs,primary,jo@example.org,07700 900123,sms;email,22:00-07:00"


def parse(*rows: str, header: str = HEADER, bom: bool = False) -> ParsedFile:
    text = "\r\n".join([header, *rows]) + "\r\n"
    return parse_file((b"\xef\xbb\xbf" if bom else b"") + text.encode(), REFERENCE)


def errors(parsed: ParsedFile) -> list[tuple[int, str]]:
    return [(e.row, e.field) for e in parsed.errors]


def file_error(data: bytes) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as caught:
        parse_file(data, REFERENCE)
    return caught.value.fields


def test_a_good_row_gives_a_service_and_a_contact_in_stored_form() -> None:
    parsed = parse(GOOD)
    assert parsed.errors == [] and parsed.rows == 1
    (service,) = parsed.services
    assert (service.ref, service.name, service.type) == ("NSP-1", "York NSP", "pharmacy")
    assert service.areas == ("YORK-C", "YORK-W")
    assert service.alert_levels == ("professional", "public")  # blank: both
    assert service.alert_kinds == ()  # blank: every kind
    assert parsed.contacts == [
        ContactRow(
            row=2,
            service_ref="NSP-1",
            name="Jo Bloggs",
            role="primary",
            email="jo@example.org",
            phone="+447700900123",
            channels=("sms", "email"),
            quiet_start=time(22, 0),
            quiet_end=time(7, 0),
        )
    ]
    assert len(parsed.sha256) == 64


def test_bom_whitespace_case_and_list_order_do_not_matter() -> None:
    plain = parse(GOOD)
    messy = parse(
        " NSP-1 , York NSP ,PHARMACY, york-w ; York-C ;, Public;PROFESSIONAL ,,  Jo Bloggs ,"
        "Primary, jo@example.org ,+44 7700 900123,EMAIL; sms;,22:00 - 07:00",
        header=" " + HEADER.upper().replace(",", " , "),
        bom=True,
    )
    assert messy.errors == []
    assert messy.services == plain.services
    assert messy.contacts == plain.contacts


def test_lists_split_on_semicolons_and_drop_blanks() -> None:
    assert split_list(" a ;b;; ;c ") == ["a", "b", "c"]
    assert split_list("") == []


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("22:00-07:00", time(22), time(7)),
        ("22.00 - 07.30", time(22), time(7, 30)),
        ("22:00 to 07:00", time(22), time(7)),
        ("22:00\u201307:00", time(22), time(7)),  # the en dash a spreadsheet may put in
        ("2200-0700", time(22), time(7)),
        ("22-7", time(22), time(7)),
        ("9:15-17:45", time(9, 15), time(17, 45)),
    ],
)
def test_quiet_hours_formats(text: str, start: time, end: time) -> None:
    assert parse_quiet_hours(text) == (start, end)
    assert format_quiet_hours(start, end) == f"{start:%H:%M}-{end:%H:%M}"


@pytest.mark.parametrize(
    "text", ["22:00", "25:00-07:00", "22:61-07:00", "late", "22:00-07:00-08:00"]
)
def test_bad_quiet_hours_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="like 22:00-07:00"):
        parse_quiet_hours(text)


def test_a_service_row_without_a_contact_is_allowed() -> None:
    parsed = parse("NSP-2,Selby NSP,outreach,SELBY,professional,drug_alert;cluster,,,,,,")
    assert parsed.errors == [] and parsed.contacts == []
    assert parsed.services[0].alert_levels == ("professional",)
    assert parsed.services[0].alert_kinds == ("drug_alert", "cluster")


@pytest.mark.parametrize(
    ("row", "field", "reason"),
    [
        (",York NSP,pharmacy,YORK-C,,,,,,,,", "service_ref", "is required"),
        ("NSP 1,York NSP,pharmacy,YORK-C,,,,,,,,", "service_ref", "only letters, digits"),
        ("NSP-1,,pharmacy,YORK-C,,,,,,,,", "service_name", "is required"),
        ("NSP-1,York NSP,,YORK-C,,,,,,,,", "service_type", "is required"),
        (
            "NSP-1,York NSP,barber,YORK-C,,,,,,,,",
            "service_type",
            "'barber' is not a service type; use one of: outreach, pharmacy",
        ),
        ("NSP-1,York NSP,prison,YORK-C,,,,,,,,", "service_type", "'prison' is retired"),
        ("NSP-1,York NSP,pharmacy,,,,,,,,,", "service_areas", "at least one area code"),
        (
            "NSP-1,York NSP,pharmacy,YORK-C;LEEDS;HULL,,,,,,,,",
            "service_areas",
            "unknown area codes: LEEDS, HULL",
        ),
        (
            "NSP-1,York NSP,pharmacy,YORK-C,profesional,,,,,,,",
            "alert_levels",
            "'profesional': should be",
        ),
        ("NSP-1,York NSP,pharmacy,YORK-C,,gossip,,,,,,", "alert_kinds", "'gossip': should be"),
        (
            "NSP-1,York NSP,pharmacy,YORK-C,,,,,jo@example.org,,email,",
            "contact_name",
            "is required when a row has contact details",
        ),
        (
            "NSP-1,York NSP,pharmacy,YORK-C,,,Jo,boss,jo@example.org,,email,",
            "contact_role",
            "'boss': should be 'primary' or 'backup'",
        ),
        ("NSP-1,York NSP,pharmacy,YORK-C,,,Jo,,jo@,,email,", "email", "@-sign"),
        (
            "NSP-1,York NSP,pharmacy,YORK-C,,,Jo,,,0113 496 0000,sms,",
            "phone",
            "landlines cannot receive",
        ),
        (
            "NSP-1,York NSP,pharmacy,YORK-C,,,Jo,,,+33 6 12 34 56 78,sms,",
            "phone",
            "must be a UK mobile",
        ),
        ("NSP-1,York NSP,pharmacy,YORK-C,,,Jo,,,call me,sms,", "phone", "is not a phone number"),
        (
            "NSP-1,York NSP,pharmacy,YORK-C,,,Jo,,jo@example.org,,,",
            "channels",
            "is required: give sms, email or both",
        ),
        (
            "NSP-1,York NSP,pharmacy,YORK-C,,,Jo,,jo@example.org,,fax,",
            "channels",
            "'fax': should be 'sms' or 'email'",
        ),
        (
            "NSP-1,York NSP,pharmacy,YORK-C,,,Jo,,jo@example.org,,sms,",
            "channels",
            "sms needs a mobile number in the phone column",
        ),
        (
            "NSP-1,York NSP,pharmacy,YORK-C,,,Jo,,,07700 900123,email,",
            "channels",
            "email needs an address in the email column",
        ),
        (
            "NSP-1,York NSP,pharmacy,YORK-C,,,Jo,,jo@example.org,,email,late",
            "quiet_hours",
            "like 22:00-07:00",
        ),
        (
            "NSP-1,York NSP,pharmacy,YORK-C,,,Jo,,jo@example.org,,email,22:00-22:00",
            "quiet_hours",
            "must differ",
        ),
        (
            "NSP-1,York NSP,pharmacy,YORK-C,,,Jo,,jo@example.org,email",
            "row",
            "has 10 cells; the header has 12",
        ),
        (f"NSP-1,{'x' * 201},pharmacy,YORK-C,,,,,,,,", "service_name", "200 characters or fewer"),
    ],
)
def test_each_kind_of_bad_row_names_its_column_and_the_fix(
    row: str, field: str, reason: str
) -> None:
    parsed = parse(row)
    assert [(e.row, e.field) for e in parsed.errors if e.field == field] == [(2, field)]
    message = next(e.message for e in parsed.errors if e.field == field)
    assert reason in message
    assert parsed.contacts == []


def test_every_problem_on_a_row_is_reported_at_once() -> None:
    parsed = parse("NSP-1,York NSP,prison,NOWHERE,,,Jo,boss,bad,0113 496 0000,sms;fax,late")
    assert errors(parsed) == [
        (2, "service_type"),
        (2, "service_areas"),
        (2, "contact_role"),
        (2, "email"),
        (2, "phone"),
        (2, "channels"),
        (2, "quiet_hours"),
    ]


def test_rows_of_one_service_must_agree_on_the_service_columns() -> None:
    parsed = parse(
        GOOD,
        "NSP-1,York NSP,pharmacy,YORK-W;YORK-C,,,Al,backup,al@example.org,,email,",  # same
        "NSP-1,York needle exchange,outreach,YORK-C,,,Bo,,bo@example.org,,email,",
    )
    assert errors(parsed) == [(4, "service_name"), (4, "service_type"), (4, "service_areas")]
    assert "differs from row 2 ('York NSP')" in parsed.errors[0].message
    assert [s.ref for s in parsed.services] == ["NSP-1"]


def test_the_same_contact_twice_in_a_service_is_refused() -> None:
    parsed = parse(
        GOOD,
        "NSP-1,York NSP,pharmacy,YORK-C;YORK-W,,,Jo B,backup,JO@example.org,,email,",
        "NSP-1,York NSP,pharmacy,YORK-C;YORK-W,,,Jo C,backup,,+447700900123,sms,",
        "NSP-2,Selby NSP,outreach,SELBY,,,Jo Bloggs,,jo@example.org,07700 900123,sms,",  # fine
    )
    assert errors(parsed) == [(3, "email"), (4, "phone")]
    assert parsed.errors[0].message.startswith("is also on row 2 for this service")
    assert [c.row for c in parsed.contacts] == [2, 5]


def test_row_numbers_are_the_spreadsheets_even_with_blank_rows_and_line_breaks() -> None:
    parsed = parse(
        'NSP-1,"York\nNSP",pharmacy,YORK-C,,,,,,,,',  # one row, two lines
        ",,,,,,,,,,,",  # a blank row Excel leaves: skipped but counted
        "",
        "NSP-2,Selby NSP,outreach,NOWHERE,,,,,,,,",
    )
    assert errors(parsed) == [(5, "service_areas")]
    assert parsed.rows == 2


def test_a_formula_guard_quote_is_taken_off() -> None:
    parsed = parse("NSP-1,'=York NSP,pharmacy,YORK-C,,,'+Jo,,,'+447700900123,sms,")
    assert parsed.errors == []
    assert parsed.services[0].name == "=York NSP"
    assert parsed.contacts[0].name == "+Jo"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "is empty; it needs a header row: service_ref,service_name"),
        (b"\xef\xbb\xbf\r\n  \r\n", "is empty"),
        (
            (HEADER + "\nNSP-1,Caf\u00e9 \u00a35,pharmacy,YORK-C,,,,,,,,\n").encode("cp1252"),
            "is not UTF-8: byte 0xE9 on line 2 cannot be read",
        ),
        ("\ufeff".encode("utf-16-le") + HEADER.encode("utf-16-le"), "is UTF-16 text"),
        (b"PK\x03\x04\x14\x00\x06\x00", "is an Excel workbook"),
        (HEADER.encode() + b"\nNSP\x00-1", "NUL bytes"),
    ],
)
def test_files_that_are_not_utf8_csv_get_one_clear_error(data: bytes, reason: str) -> None:
    fields = file_error(data)
    assert list(fields) == ["file"]
    assert reason in fields["file"]
    if reason != "is empty":
        assert "CSV UTF-8" in fields["file"] or "empty" in fields["file"]


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (HEADER.replace(",phone", ""), "missing columns: phone"),
        (HEADER.replace("phone", "mobile"), "unknown columns: mobile; missing columns: phone"),
        (HEADER + ",email", "repeated columns: email"),
        (HEADER + ",", "unknown columns: (blank, column 13)"),
        ("name,number", "missing columns: service_ref, service_name"),
    ],
)
def test_wrong_header_columns_are_named(header: str, reason: str) -> None:
    fields = file_error((header + "\n" + GOOD + "\n").encode())
    assert list(fields) == ["header"]
    assert reason in fields["header"]
    assert "The columns are: service_ref,service_name" in fields["header"]


def test_a_file_separated_by_semicolons_is_told_how_to_save_it() -> None:
    fields = file_error((HEADER.replace(",", ";") + "\n").encode())
    assert fields == {
        "header": "the columns are separated by semicolons, not commas; open it in your "
        'spreadsheet, choose "Save As" and the type "CSV UTF-8 (Comma delimited)", then '
        "upload that file"
    }


def test_export_phone_keeps_a_spreadsheet_from_mangling_the_number() -> None:
    assert export_phone("+447700900123") == "07700 900123"
    assert export_phone(None) == ""


def test_render_writes_the_header_a_bom_and_guards_formulas() -> None:
    data = render([{"service_ref": "A", "service_name": "=cmd()", "contact_name": "-Jo"}])
    assert data.startswith(b"\xef\xbb\xbf" + HEADER.encode() + b"\r\n")
    assert b"A,'=cmd(),,,,,'-Jo,,,,," in data
