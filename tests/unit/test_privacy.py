"""Privacy guard: finds what identifies a person, leaves drug report language alone."""

from __future__ import annotations

import string

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from ldis.domain.privacy import describe, find_personal_identifiers, nhs_number_is_valid


def kinds(text: str) -> list[str]:
    return [finding.kind for finding in find_personal_identifiers(text)]


def excerpts(text: str) -> list[str]:
    return [finding.excerpt for finding in find_personal_identifiers(text)]


@pytest.mark.parametrize(
    ("text", "kind", "excerpt"),
    [
        ("Seen with Mr Smith at the hostel", "name_after_title", "Mr Smith"),
        ("Mrs. Jones found him", "name_after_title", "Mrs. Jones"),
        ("Dr Jane Patel attended", "name_after_title", "Dr Jane Patel"),
        ("Mx Taylor reported it", "name_after_title", "Mx Taylor"),
        ("Miss Khan, Sir Lancelot and Lady Grey", "name_after_title", "Miss Khan"),
        ("friend Mrs O\u2019Brien-Smith called", "name_after_title", "Mrs O\u2019Brien-Smith"),
        ("MR JOHN SMITH", "name_after_title", "MR JOHN SMITH"),
        ("Mr Blue", "name_after_title", "Mr Blue"),  # a bare logo name is flagged
        ("DOB 01/02/1990", "date_of_birth", "DOB 01/02/1990"),
        ("d.o.b: 3rd March 1985", "date_of_birth", "d.o.b: 3rd March 1985"),
        ("D.O.B. 1.2.90", "date_of_birth", "D.O.B. 1.2.90"),
        ("date of birth 1990-02-01", "date_of_birth", "date of birth 1990-02-01"),
        ("born on the 3rd of May 1990", "date_of_birth", "born on the 3rd of May 1990"),
        ("born in March 1990", "date_of_birth", "born in March 1990"),
        ("born in 1990", "date_of_birth", "born in 1990"),
        ("01/02/1990 (DOB)", "date_of_birth", "01/02/1990 (DOB)"),
        ("call 07911 123456 if seen", "phone_number", "07911 123456"),
        ("+44 7911 123456", "phone_number", "+44 7911 123456"),
        ("tel 0113 496 0000", "phone_number", "0113 496 0000"),
        ("(01904) 551234", "phone_number", "(01904) 551234"),
        ("on 21/11/2026 07911 123456", "phone_number", "07911 123456"),  # right after a date
        ("at 23:40 07911 123456", "phone_number", "07911 123456"),
        ("07700 900123", "phone_number", "07700 900123"),  # Ofcom drama number
        ("+44 7700 900 123", "phone_number", "+44 7700 900 123"),
        ("01632 960123", "phone_number", "01632 960123"),
        ("mail joe.bloggs+x@nhs.net.", "email_address", "joe.bloggs+x@nhs.net"),
        ("NHS no 943 476 5919", "nhs_number", "943 476 5919"),
        ("NHS no 9434765919", "nhs_number", "9434765919"),
        ("NHS no 943-476-5919", "nhs_number", "943-476-5919"),
        ("lives at YO1 7HH", "postcode", "YO1 7HH"),
        ("LS1 4AP", "postcode", "LS1 4AP"),
        ("SW1A 1AA", "postcode", "SW1A 1AA"),
        ("m1 1ae in lower case", "postcode", "m1 1ae"),
        ("EC1A1BB", "postcode", "EC1A1BB"),
    ],
)
def test_each_kind_is_found(text: str, kind: str, excerpt: str) -> None:
    findings = find_personal_identifiers(text)
    assert (findings[0].kind, findings[0].excerpt) == (kind, excerpt)
    assert text[findings[0].start : findings[0].end] == excerpt


@pytest.mark.parametrize(
    "text",
    [
        "Sample obtained on 21/11/2026 at 23:40, tested 2026-11-22.",
        "Green round tablet, markings OC 80, 0.25 g, sold as oxycodone.",
        "LC-MS: metonitazene (primary), caffeine (trace). MS Confirmed.",
        "GC-MS and FTIR agree; purity 78%, 12 mg per tablet, 3 x 0.5 ml.",
        "Seen in YO1 and LS6 this week; clusters in the HU area.",
        "sold as Mr Blue pills",
        "Mr Blue Punisher tablets again",
        "Dr Pepper logo, pink, 350 mg",
        "logo: Dr Pepper",
        "stamped with Mr Bean",
        "\u201cDr Pepper\u201d pills",
        "Blue Punisher, Tesla and Rolex logos",
        "born in York; dob unknown; date of birth not given",
        "naloxone 2 doses at 23:40 on 21/11/2026, batch 12345678",
        "vitamin b12 2nd dose",
        "ms readings every 500 ms",
        "943 476 5918 is not a valid NHS number",
        "0000000000",
        "Rf 0.35, m/z 337.2, pH 7.4",
    ],
)
def test_drug_report_language_is_not_flagged(text: str) -> None:
    assert find_personal_identifiers(text) == []


def test_spans_point_into_the_text_and_text_is_unchanged() -> None:
    text = "Mr Smith (DOB 01/02/1990) 07911 123456 joe@example.com YO1 7HH 943 476 5919"
    before = str(text)
    findings = find_personal_identifiers(text)
    assert text == before
    assert [f.kind for f in findings] == [
        "name_after_title",
        "date_of_birth",
        "phone_number",
        "email_address",
        "postcode",
        "nhs_number",
    ]
    for finding in findings:
        assert text[finding.start : finding.end] == finding.excerpt


def test_overlaps_are_named_once_by_the_most_specific_rule() -> None:
    assert kinds("contact bob07911123456@example.com") == ["email_address"]
    assert kinds("NHS 712 345 6785") == kinds("7123456785") == ["nhs_number"]


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("9434765919", True),
        ("9434765918", False),
        ("4010232137", True),
        ("4010232138", False),
        ("1111111111", False),  # passes the sum, but a placeholder
        ("123456789", False),
        ("12345678901", False),
        ("94347659l9", False),
        ("1000000010", False),  # check digit would be 10: never issued
    ],
)
def test_nhs_check_digit(number: str, valid: bool) -> None:
    assert nhs_number_is_valid(number) is valid


def test_describe_says_what_to_remove() -> None:
    text = "call 07911 123456, lives YO1 7HH"
    message = describe(find_personal_identifiers(text))
    assert message.startswith(
        "remove the phone number '07911 123456' and the full postcode 'YO1 7HH'"
    )
    assert "'YO1'" in message  # the part that may stay


def test_describe_lists_three_or_more_and_hints_at_logos() -> None:
    message = describe(find_personal_identifiers("Mr Blue, joe@example.com, DOB 1/2/90"))
    assert message.startswith(
        "remove the name 'Mr Blue', the e-mail address 'joe@example.com' and the date of "
        "birth 'DOB 1/2/90'"
    )
    assert "logo" in message


def test_describe_names_each_thing_once_and_nothing_for_nothing() -> None:
    findings = find_personal_identifiers("07911 123456 or 07911 123456")
    assert describe(findings) == "remove the phone number '07911 123456'"
    assert describe([]) == ""


# --- properties ----------------------------------------------------------------------------

LAB_WORDS = [
    "LC-MS",
    "GC-MS",
    "FTIR",
    "trace",
    "primary",
    "0.25 g",
    "23:40",
    "OC 80",
    "obtained on 21/11/2026",
    "tested 2026-11-22",
    "12 mg",
    "95%",
    "YO1",
    "LS6",
    "metonitazene",
    "5F-MDMB-PICA",
    "MDMB-4en-PINACA",
    "1P-LSD",
    "3-MMC",
    "Tesla",
    "Blue Punisher",
    "sold as Mr Blue pills",
    "pH 7.4",
    "m/z 337.2",
    "x 2",
    "naloxone 2 doses",
    ",",
    ".",
]
LOWER_WORDS = st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=12)
PROSE = st.lists(st.one_of(LOWER_WORDS, st.sampled_from(LAB_WORDS)), max_size=25).map(" ".join)


@given(st.text())
def test_never_raises_on_arbitrary_text(text: str) -> None:
    for finding in find_personal_identifiers(text):
        assert text[finding.start : finding.end] == finding.excerpt


@given(PROSE)
def test_letters_and_lab_words_find_nothing(text: str) -> None:
    assert find_personal_identifiers(text) == []


def _with_check_digit(first_nine: list[int]) -> str | None:
    total = sum(digit * weight for digit, weight in zip(first_nine, range(10, 1, -1), strict=True))
    check = (11 - total % 11) % 11
    return None if check == 10 else "".join(map(str, first_nine)) + str(check)


@given(
    st.lists(st.integers(0, 9), min_size=9, max_size=9),
    st.sampled_from(["", " ", "-"]),
    PROSE,
    PROSE,
)
def test_any_valid_nhs_number_in_prose_is_found(
    first_nine: list[int], separator: str, before: str, after: str
) -> None:
    number = _with_check_digit(first_nine)
    assume(number is not None and len(set(number)) > 1)
    assert number is not None
    written = separator.join([number[:3], number[3:6], number[6:]])
    text = f"{before} {written} {after}"
    found = [f for f in find_personal_identifiers(text) if f.kind == "nhs_number"]
    assert [f.excerpt for f in found] == [written]
