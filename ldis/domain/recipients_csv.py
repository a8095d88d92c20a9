"""The recipients CSV: services and their contacts, one row per contact (see
docs/recipients-csv.md). Decoding, the header, and every row checked with the same input
models the API uses (`ServiceInput`, `ContactInput`), so a row is valid here exactly when
the same service or contact would be accepted one at a time. Pure: the area codes and
service types to check against are passed in."""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import time
from typing import Any

import phonenumbers
from pydantic import ValidationError

from ldis.domain.alerts import AlertKind, AlertLevel
from ldis.domain.deliveries import Channel
from ldis.domain.errors import ValidationFailed
from ldis.domain.recipients import ContactInput, ServiceInput

SERVICE_COLUMNS = (
    "service_ref",
    "service_name",
    "service_type",
    "service_areas",
    "alert_levels",
    "alert_kinds",
)
CONTACT_COLUMNS = (
    "contact_name",
    "contact_role",
    "email",
    "phone",
    "channels",
    "quiet_hours",
)
COLUMNS = SERVICE_COLUMNS + CONTACT_COLUMNS
SAVE_AS = (
    'open it in your spreadsheet, choose "Save As" and the type "CSV UTF-8 (Comma delimited)", '
    "then upload that file"
)
# Spreadsheets run a cell that starts with one of these as a formula; the export puts a
# quote in front of such a cell, and the import takes it off again (see `cell`).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_QUIET = re.compile(
    r"^(\d{1,2})(?:[:.]?(\d{2}))?\s*(?:-|\u2013|\u2014|to)\s*(\d{1,2})(?:[:.]?(\d{2}))?$",
    re.IGNORECASE,
)
# Model field -> the column that holds it, so an error names what the person can see.
_SERVICE_FIELDS = {
    "ref": "service_ref",
    "name": "service_name",
    "type": "service_type",
    "areas": "service_areas",
    "alert_levels": "alert_levels",
    "alert_kinds": "alert_kinds",
}
_CONTACT_FIELDS = {
    "name": "contact_name",
    "role": "contact_role",
    "email": "email",
    "phone": "phone",
    "channels": "channels",
    "quiet_hours": "quiet_hours",
}
_PATTERN_HINTS = {
    "service_ref": "may hold only letters, digits and . _ : / -, e.g. NSP-SELBY",
    "service_areas": "area codes hold only letters, digits and . _ -, e.g. YORK-C",
    "service_type": "service type codes hold only letters, digits and _, e.g. pharmacy",
}


@dataclass(frozen=True)
class RowError:
    row: int  # as a spreadsheet numbers it: the header is row 1
    field: str  # the column, or "row" for the row as a whole
    message: str

    def view(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "message": self.message}


@dataclass(frozen=True)
class ServiceRow:
    row: int  # the first row that names this service
    ref: str
    name: str
    type: str
    areas: tuple[str, ...]  # sorted, so order in the cell does not matter
    alert_levels: tuple[str, ...]
    alert_kinds: tuple[str, ...]  # empty: every kind

    def same_as(self, other: ServiceRow) -> dict[str, tuple[Any, Any]]:
        """The columns where `other` differs from this row, as (ours, theirs)."""
        pairs = {
            "service_name": (self.name, other.name),
            "service_type": (self.type, other.type),
            "service_areas": (self.areas, other.areas),
            "alert_levels": (self.alert_levels, other.alert_levels),
            "alert_kinds": (self.alert_kinds, other.alert_kinds),
        }
        return {column: pair for column, pair in pairs.items() if pair[0] != pair[1]}


@dataclass(frozen=True)
class ContactRow:
    row: int
    service_ref: str
    name: str
    role: str
    email: str | None
    phone: str | None  # E.164
    channels: tuple[str, ...]
    quiet_start: time | None
    quiet_end: time | None


@dataclass(frozen=True)
class Reference:
    """What the rows are checked against: known area codes and service types (code -> active)."""

    area_codes: frozenset[str]
    service_types: Mapping[str, bool]


@dataclass
class ParsedFile:
    sha256: str
    rows: int = 0  # data rows that are not blank
    services: list[ServiceRow] = field(default_factory=list)  # valid ones, file order
    contacts: list[ContactRow] = field(default_factory=list)  # valid ones, file order
    errors: list[RowError] = field(default_factory=list)


def decode(data: bytes) -> str:
    """The file as text: UTF-8 with or without a byte-order mark, nothing else."""
    if not data.strip(b"\xef\xbb\xbf \t\r\n"):
        raise ValidationFailed({"file": f"is empty; it needs a header row: {','.join(COLUMNS)}"})
    if data.startswith(b"PK\x03\x04"):
        raise ValidationFailed({"file": f"is an Excel workbook, not a CSV file; {SAVE_AS}"})
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ValidationFailed({"file": f"is UTF-16 text, not UTF-8; {SAVE_AS}"})
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ValidationFailed(
            {
                "file": f"is not UTF-8: byte 0x{data[exc.start]:02X} on line {line} cannot be "
                f"read (a £, é or curly quote saved in another encoding); {SAVE_AS}"
            }
        ) from None
    if "\x00" in text:
        raise ValidationFailed(
            {"file": f"holds NUL bytes, so it is not a CSV text file; {SAVE_AS}"}
        )
    return text


def header_positions(cells: list[str]) -> dict[str, int]:
    """Column name -> position; ValidationFailed naming every missing, unknown or repeated one."""
    names = [c.strip().lower() for c in cells]
    if len(names) == 1 and (";" in names[0] or "\t" in names[0]):
        separator = "semicolons" if ";" in names[0] else "tabs"
        raise ValidationFailed(
            {"header": f"the columns are separated by {separator}, not commas; {SAVE_AS}"}
        )
    problems = []
    repeated = sorted({n for n in names if names.count(n) > 1 and n})
    if repeated:
        problems.append(f"repeated columns: {', '.join(repeated)}")
    unknown = [n or f"(blank, column {i + 1})" for i, n in enumerate(names) if n not in COLUMNS]
    if unknown:
        problems.append(f"unknown columns: {', '.join(unknown)}")
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        problems.append(f"missing columns: {', '.join(missing)}")
    if problems:
        raise ValidationFailed(
            {"header": "; ".join(problems) + f". The columns are: {','.join(COLUMNS)}"}
        )
    return {name: i for i, name in enumerate(names)}


def cell(raw: str) -> str:
    value = raw.strip()
    if value.startswith("'") and value[1:].startswith(FORMULA_START):
        return value[1:]
    return value


def split_list(value: str) -> list[str]:
    """A ';'-separated cell as its non-blank items."""
    return [item.strip() for item in value.split(";") if item.strip()]


def parse_quiet_hours(value: str) -> tuple[time, time]:
    """ "22:00-07:00" (also 22.00 - 07.00, 22:00 to 07:00, 2200-0700, 22-7) as two times."""
    match = _QUIET.match(value.strip())
    if match:
        h1, m1, h2, m2 = match.groups()
        try:
            return time(int(h1), int(m1 or 0)), time(int(h2), int(m2 or 0))
        except ValueError:
            pass
    raise ValueError("write quiet hours as two UK times like 22:00-07:00, or leave it blank")


def format_quiet_hours(start: time | None, end: time | None) -> str:
    if start is None or end is None:
        return ""
    return f"{start:%H:%M}-{end:%H:%M}"


def _ordered(values: Iterable[str], order: Iterable[str]) -> tuple[str, ...]:
    chosen = set(values)
    return tuple(v for v in order if v in chosen)


def _messages(exc: ValidationError, columns: dict[str, str]) -> dict[str, str]:
    """Pydantic's errors per column, naming the bad value in a list cell."""
    found: dict[str, str] = {}
    for error in exc.errors():
        loc = error["loc"]
        message = error["msg"].removeprefix("Value error, ")
        if not loc:  # a whole-model check names its field as "field: message"
            head, _, message = message.partition(": ")
            column = columns.get(head, head)
            message = message.replace(" in phone", " in the phone column").replace(
                " in email", " in the email column"
            )
        else:
            column = columns.get(str(loc[0]), str(loc[0]))
            if error["type"] == "string_pattern_mismatch":
                message = _PATTERN_HINTS.get(column, message)
            elif error["type"] == "string_too_long":
                limit = (error.get("ctx") or {}).get("max_length")
                message = f"must be {limit} characters or fewer"
            if error["type"] == "enum" or (len(loc) > 1 and isinstance(loc[1], int)):
                message = f"{error['input']!r}: {message.replace('Input should', 'should')}"
        found.setdefault(column, message)
    return found


def _service(
    row: int, get: Mapping[str, str], ref_data: Reference
) -> tuple[ServiceRow | None, dict[str, str]]:
    problems: dict[str, str] = {}
    for column, what in (
        ("service_ref", "the key that finds this service again on the next import, e.g. NSP-SELBY"),
        ("service_name", "the service's name"),
        ("service_type", "one of the service types, e.g. pharmacy"),
        ("service_areas", "at least one area code; separate several with ';'"),
    ):
        if not get[column]:
            problems[column] = f"is required: give {what}"
    body: dict[str, Any] = {
        "ref": get["service_ref"] or None,
        "name": get["service_name"] or "-",
        "type": get["service_type"] or "x",
        "areas": split_list(get["service_areas"]) or ["X"],
        "alert_kinds": [k.lower() for k in split_list(get["alert_kinds"])],
    }
    if split_list(get["alert_levels"]):
        body["alert_levels"] = [v.lower() for v in split_list(get["alert_levels"])]
    try:
        data: ServiceInput | None = ServiceInput.model_validate(body)
    except ValidationError as exc:
        data = None
        for column, message in _messages(exc, _SERVICE_FIELDS).items():
            problems.setdefault(column, message)
    # Checked against the database's lists even when another column is wrong, so one
    # pass shows everything to fix on the row.
    codes = [code.upper() for code in split_list(get["service_areas"])]
    unknown = [code for code in dict.fromkeys(codes) if code not in ref_data.area_codes]
    if unknown and "service_areas" not in problems:
        problems["service_areas"] = f"unknown area codes: {', '.join(unknown)}"
    kind = get["service_type"].lower()
    if kind and "service_type" not in problems and not ref_data.service_types.get(kind, False):
        state = "is retired" if kind in ref_data.service_types else "is not a service type"
        active = sorted(code for code, on in ref_data.service_types.items() if on)
        problems["service_type"] = f"{kind!r} {state}; use one of: {', '.join(active)}"
    if problems or data is None or data.ref is None:
        return None, problems
    return ServiceRow(
        row=row,
        ref=data.ref,
        name=data.name,
        type=data.type,
        areas=tuple(sorted(data.areas)),
        alert_levels=_ordered(data.alert_levels, [m.value for m in AlertLevel]),
        alert_kinds=_ordered(data.alert_kinds, [m.value for m in AlertKind]),
    ), {}


def _contact(
    row: int, ref: str, get: Mapping[str, str]
) -> tuple[ContactRow | None, dict[str, str]]:
    problems: dict[str, str] = {}
    if not get["contact_name"]:
        problems["contact_name"] = (
            "is required when a row has contact details; leave every contact column blank "
            "for a service with no contacts"
        )
    if not get["channels"]:
        problems["channels"] = "is required: give sms, email or both, separated by ';'"
    body: dict[str, Any] = {
        "name": get["contact_name"] or "-",
        "channels": [c.lower() for c in split_list(get["channels"])] or ["email"],
        "email": get["email"] or None,
        "phone": get["phone"] or None,
    }
    if get["contact_role"]:
        body["role"] = get["contact_role"].lower()
    if get["quiet_hours"]:
        try:
            start, end = parse_quiet_hours(get["quiet_hours"])
            body["quiet_hours"] = {"start": start, "end": end}
        except ValueError as exc:
            problems["quiet_hours"] = str(exc)
    try:
        data = ContactInput.model_validate(body)
    except ValidationError as exc:
        for column, message in _messages(exc, _CONTACT_FIELDS).items():
            problems.setdefault(column, message)
        return None, problems
    if problems:
        return None, problems
    quiet = data.quiet_hours
    return ContactRow(
        row=row,
        service_ref=ref,
        name=data.name,
        role=data.role.value,
        email=data.email,
        phone=data.phone,
        channels=_ordered(data.channels, [m.value for m in Channel]),
        quiet_start=quiet.start if quiet else None,
        quiet_end=quiet.end if quiet else None,
    ), {}


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    """(row number as a spreadsheet shows it, cells); a quoted line break stays in its row."""
    reader = csv.reader(io.StringIO(text, newline=""))
    number = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ValidationFailed({"file": f"row {number} cannot be read as CSV: {exc}"}) from None
        yield number, cells
        number += 1


def parse_file(data: bytes, ref_data: Reference) -> ParsedFile:
    """Every row checked; file-level problems (encoding, header) raise ValidationFailed."""
    parsed = ParsedFile(sha256=hashlib.sha256(data).hexdigest())
    records = _records(decode(data))
    _, header = next(records, (1, []))
    positions = header_positions(header)
    first: dict[str, ServiceRow | None] = {}  # ref -> its first row (None: that one was bad)
    seen: dict[tuple[str, str], int] = {}  # (ref, "email:..."/"phone:...") -> row
    for row, cells in records:
        if not any(c.strip() for c in cells):
            continue
        parsed.rows += 1
        if len(cells) != len(positions):
            message = (
                f"has {len(cells)} cells; the header has {len(positions)}. A value with a comma "
                "in it must be inside double quotes"
            )
            parsed.errors.append(RowError(row, "row", message))
            continue
        get = {name: cell(cells[i]) for name, i in positions.items()}
        service, problems = _service(row, get, ref_data)
        ref = get["service_ref"]
        if service is not None and ref in first:
            earlier = first[ref]
            if earlier is not None:
                for column, (ours, _theirs) in earlier.same_as(service).items():
                    shown = ";".join(ours) if isinstance(ours, tuple) else ours
                    problems[column] = (
                        f"differs from row {earlier.row} ({shown!r}) of the same service_ref; "
                        "every row of a service must repeat its service columns"
                    )
        elif ref and ref not in first:
            first[ref] = service
            if service is not None:
                parsed.services.append(service)
        contact = None
        if any(get[c] for c in CONTACT_COLUMNS):
            contact, contact_problems = _contact(row, ref, get)
            problems.update(contact_problems)
        if contact is not None and ref:
            for key, column in ((contact.email, "email"), (contact.phone, "phone")):
                if key is None:
                    continue
                where = (ref, f"{column}:{key.casefold()}")
                if where in seen:
                    problems[column] = (
                        f"is also on row {seen[where]} for this service: put each person on one row"
                    )
                else:
                    seen[where] = row
        parsed.errors.extend(
            RowError(row, column, message)
            for column, message in sorted(problems.items(), key=lambda p: _column_order(p[0]))
        )
        if contact is not None and not problems:
            parsed.contacts.append(contact)
    return parsed


def _column_order(column: str) -> int:
    return COLUMNS.index(column) if column in COLUMNS else len(COLUMNS)


def export_phone(e164: str | None) -> str:
    """A UK number as a spreadsheet keeps it (07700 900123): "+44..." would be read as a
    formula or a number, and a bare 07700900123 would lose its leading zero."""
    if not e164:
        return ""
    number = phonenumbers.parse(e164, None)
    if number.country_code == 44:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    return e164


def _safe(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_START) else value


def render(records: Iterable[Mapping[str, str]]) -> bytes:
    """The export: a header and one row per record, UTF-8 with a byte-order mark so that
    Excel reads £ and é correctly (the import accepts it with or without)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for record in records:
        writer.writerow([_safe(record.get(column, "")) for column in COLUMNS])
    return b"\xef\xbb\xbf" + out.getvalue().encode()
