"""Comparing a recipients CSV with the database: which services and contacts the file
would create, update or leave unchanged, and which are not in it. Read-only: the use cases
in `recipients_bulk` run it, and the apply writes what it found."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ldis.domain.recipients_csv import (
    ContactRow,
    ParsedFile,
    Reference,
    RowError,
    ServiceRow,
    format_quiet_hours,
    parse_file,
)
from ldis.services.contacts import is_removed
from ldis.store.models import Area, Contact, Service, ServiceType

CREATE, UPDATE, UNCHANGED, NOT_IN_FILE = "create", "update", "unchanged", "not_in_file"
ACTIONS = (CREATE, UPDATE, UNCHANGED, NOT_IN_FILE)


@dataclass
class ServiceChange:
    action: str
    ref: str | None
    name: str
    row: int | None = None
    target: ServiceRow | None = None
    existing: Service | None = None
    fields: dict[str, Any] = field(default_factory=dict)

    def view(self) -> dict[str, Any]:
        view: dict[str, Any] = {"entity": "service", "action": self.action, "row": self.row}
        view |= {"service_ref": self.ref, "service_name": self.name}
        if self.target is not None and self.action == CREATE:
            view["fields"] = _service_values(self.target)
        elif self.fields:
            view["fields"] = self.fields
        return view


@dataclass
class ContactChange:
    action: str
    service_ref: str | None
    row: int | None = None
    target: ContactRow | None = None
    existing: Contact | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    # Channels this import leaves unverified: new ones, and those whose address changed.
    awaiting_verification: list[str] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        view: dict[str, Any] = {"entity": "contact", "action": self.action, "row": self.row}
        view["service_ref"] = self.service_ref
        if self.action == NOT_IN_FILE and self.existing is not None:
            # Named so the admin can tell who it is; their addresses are never echoed.
            view |= {"contact_id": self.existing.id, "contact_name": self.existing.name}
        if self.target is not None and self.action == CREATE:
            view["fields"] = {
                "contact_role": self.target.role,
                "channels": list(self.target.channels),
            }
        elif self.fields:
            view["fields"] = self.fields
        if self.awaiting_verification:
            view["awaiting_verification"] = self.awaiting_verification
        return view


@dataclass
class Plan:
    file: ParsedFile
    errors: list[RowError]
    services: list[ServiceChange] = field(default_factory=list)
    contacts: list[ContactChange] = field(default_factory=list)

    @property
    def writes(self) -> bool:
        actions = [c.action for c in self.services] + [c.action for c in self.contacts]
        return CREATE in actions or UPDATE in actions

    def changes(self) -> list[dict[str, Any]]:
        """Each service followed by its contacts, in file order; those not in it last."""
        by_ref: dict[str | None, list[ContactChange]] = defaultdict(list)
        for contact in self.contacts:
            by_ref[contact.service_ref].append(contact)
        views = []
        for service in self.services:
            views.append(service.view())
            views.extend(c.view() for c in by_ref.pop(service.ref, []))
        views.extend(c.view() for group in by_ref.values() for c in group)
        return views

    def summary(self) -> dict[str, Any]:
        def counts(changes: list[ServiceChange] | list[ContactChange]) -> dict[str, int]:
            return {a: sum(1 for c in changes if c.action == a) for a in ACTIONS}

        return {
            "rows": self.file.rows,
            "bad_rows": len({e.row for e in self.errors}),
            "services": counts(self.services),
            "contacts": counts(self.contacts),
            "awaiting_verification": sum(len(c.awaiting_verification) for c in self.contacts),
        }

    def fingerprint(self) -> str:
        """Names this exact set of changes, so an apply can insist on what was previewed."""
        data = json.dumps(self.changes(), sort_keys=True, default=str).encode()
        return hashlib.sha256(data).hexdigest()

    def view(self, *, applied: bool) -> dict[str, Any]:
        return {
            "applied": applied,
            "file_sha256": self.file.sha256,
            "plan": self.fingerprint(),
            "summary": self.summary(),
            "errors": [e.view() for e in self.errors],
            "changes": self.changes(),
        }


def _service_values(row: ServiceRow) -> dict[str, Any]:
    return {
        "service_name": row.name,
        "service_type": row.type,
        "service_areas": list(row.areas),
        "alert_levels": list(row.alert_levels),
        "alert_kinds": list(row.alert_kinds),
    }


def _service_fields(service: Service, row: ServiceRow) -> dict[str, Any]:
    now: dict[str, Any] = {
        "service_ref": service.ref,
        "service_name": service.name,
        "service_type": service.type,
        "service_areas": sorted(a.code for a in service.areas),
        "alert_levels": list(service.alert_levels),
        "alert_kinds": list(service.alert_kinds),
    }
    wanted: dict[str, Any] = {"service_ref": row.ref, **_service_values(row)}
    changed: dict[str, Any] = {}
    for column, new in wanted.items():
        old = now[column]
        same = set(old) == set(new) if isinstance(new, list) else old == new
        if not same:
            changed[column] = {"old": old, "new": new}
    return changed


def fold(value: str | None) -> str:
    return (value or "").casefold()


def _address_change(old: str | None, new: str | None) -> str | None:
    """How an address changes, in words that do not repeat it (it is personal data)."""
    if fold(old) == fold(new):
        return None
    return "added" if old is None else "removed" if new is None else "changed"


def _contact_fields(contact: Contact, row: ContactRow) -> tuple[dict[str, Any], list[str]]:
    fields: dict[str, Any] = {}
    if contact.name != row.name:
        fields["contact_name"] = "changed"
    if contact.role != row.role:
        fields["contact_role"] = {"old": contact.role, "new": row.role}
    for column, old, new in (
        ("email", contact.email, row.email),
        ("phone", contact.phone, row.phone),
    ):
        if how := _address_change(old, new):
            fields[column] = how
    had = [c.channel for c in contact.channels]
    if set(had) != set(row.channels):
        fields["channels"] = {"old": sorted(had), "new": list(row.channels)}
    quiet_old = format_quiet_hours(contact.quiet_start, contact.quiet_end)
    quiet_new = format_quiet_hours(row.quiet_start, row.quiet_end)
    if quiet_old != quiet_new:
        fields["quiet_hours"] = {"old": quiet_old or None, "new": quiet_new or None}
    moved = {"sms": "phone" in fields, "email": "email" in fields}
    awaiting = [ch for ch in row.channels if ch not in had or moved[ch]]
    return fields, awaiting


def _reference(session: Session) -> Reference:
    return Reference(
        area_codes=frozenset(session.scalars(select(Area.code))),
        service_types={
            code: active
            for code, active in session.execute(select(ServiceType.code, ServiceType.active))
        },
    )


def _match_service(
    row: ServiceRow, by_ref: dict[str, Service], unkeyed: dict[str, list[Service]], taken: set[int]
) -> Service | RowError | None:
    """The service a row updates: the one with its ref, else the one service without a ref
    that has the same name (so adding refs to an export, then importing it, adopts the
    services instead of doubling them)."""
    if row.ref in by_ref:
        return by_ref[row.ref]
    candidates = [s for s in unkeyed.get(fold(row.name), []) if s.id not in taken]
    if len(candidates) > 1:
        return RowError(
            row.row,
            "service_ref",
            f"{len(candidates)} services named {row.name!r} have no service_ref, so this row "
            "cannot tell which one it means; give them refs one at a time first",
        )
    return candidates[0] if candidates else None


def _plan_contacts(plan: Plan, ref: str, existing: list[Contact], rows: list[ContactRow]) -> None:
    by_email = {fold(c.email): c for c in existing if c.email}
    by_phone = {c.phone: c for c in existing if c.phone}
    matched: dict[int, int] = {}  # contact id -> row
    pairs: list[tuple[ContactRow, Contact | None]] = []
    for row in rows:
        match = by_email.get(fold(row.email)) if row.email else None
        if match is None and row.phone:
            match = by_phone.get(row.phone)
        if match is not None and match.id in matched:
            column = "email" if row.email and by_email.get(fold(row.email)) else "phone"
            plan.errors.append(
                RowError(
                    row.row,
                    column,
                    f"belongs to the contact already matched by row {matched[match.id]}; "
                    "put each person on one row",
                )
            )
            continue
        if match is not None:
            matched[match.id] = row.row
        pairs.append((row, match))
    for row, match in pairs:
        # An address may move between contacts in the file, but not onto one left alone.
        for column, holder in (
            ("email", by_email.get(fold(row.email)) if row.email else None),
            ("phone", by_phone.get(row.phone) if row.phone else None),
        ):
            if holder is not None and holder is not match and holder.id not in matched:
                plan.errors.append(
                    RowError(
                        row.row,
                        column,
                        "another contact of this service that is not in the file has it; "
                        "add that contact to the file too, or change one of them",
                    )
                )
        if match is None:
            plan.contacts.append(
                ContactChange(CREATE, ref, row.row, row, None, {}, list(row.channels))
            )
            continue
        fields, awaiting = _contact_fields(match, row)
        action = UPDATE if fields else UNCHANGED
        plan.contacts.append(ContactChange(action, ref, row.row, row, match, fields, awaiting))
    plan.contacts.extend(
        ContactChange(NOT_IN_FILE, ref, existing=c)
        for c in sorted(existing, key=lambda c: c.id)
        if c.id not in matched
    )


def build_plan(session: Session, data: bytes) -> Plan:
    parsed = parse_file(data, _reference(session))
    plan = Plan(file=parsed, errors=list(parsed.errors))
    services = list(session.scalars(select(Service).order_by(Service.id)))
    by_ref = {s.ref: s for s in services if s.ref}
    unkeyed: dict[str, list[Service]] = defaultdict(list)
    for service in services:
        if not service.ref:
            unkeyed[fold(service.name)].append(service)
    rows_by_ref: dict[str, list[ContactRow]] = defaultdict(list)
    for contact in parsed.contacts:
        rows_by_ref[contact.service_ref].append(contact)
    taken: set[int] = set()
    for row in parsed.services:
        match = _match_service(row, by_ref, unkeyed, taken)
        if isinstance(match, RowError):
            plan.errors.append(match)
            continue
        if match is None:
            plan.services.append(ServiceChange(CREATE, row.ref, row.name, row.row, row))
            _plan_contacts(plan, row.ref, [], rows_by_ref[row.ref])
            continue
        taken.add(match.id)
        fields = _service_fields(match, row)
        action = UPDATE if fields else UNCHANGED
        plan.services.append(ServiceChange(action, row.ref, row.name, row.row, row, match, fields))
        live = [c for c in match.contacts if not is_removed(c)]  # removed: a tombstone
        _plan_contacts(plan, row.ref, live, rows_by_ref[row.ref])
    plan.services.extend(
        ServiceChange(NOT_IN_FILE, s.ref, s.name, existing=s) for s in services if s.id not in taken
    )
    plan.errors.sort(key=lambda e: e.row)
    return plan


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return ";".join(value) or "(all)"
    return "(none)" if value is None else str(value)


def plan_lines(view: dict[str, Any]) -> list[str]:
    """The plan as lines of text for the command line."""
    lines = [f"row {e['row']}, {e['field']}: {e['message']}" for e in view["errors"]]
    for change in view["changes"]:
        if change["action"] == UNCHANGED:
            continue
        where = f" (row {change['row']})" if change.get("row") else ""
        if change["entity"] == "service":
            what = f"service {change['service_ref'] or change['service_name']}{where}"
        elif change["action"] == NOT_IN_FILE:
            what = f"contact {change['contact_name']!r} of {change['service_ref'] or 'a service'}"
        else:
            what = f"contact of {change['service_ref']}{where}"
        detail = ", ".join(
            f"{name} {_shown(value['old'])} -> {_shown(value['new'])}"
            if isinstance(value, dict)
            else f"{name} {value}"
            for name, value in (change.get("fields") or {}).items()
            if change["action"] == UPDATE
        )
        if change.get("awaiting_verification"):
            detail += ("; " if detail else "") + (
                "awaiting verification: " + ", ".join(change["awaiting_verification"])
            )
        label = {NOT_IN_FILE: "not in file (left alone)"}.get(change["action"], change["action"])
        lines.append(f"{label}: {what}" + (f": {detail}" if detail else ""))
    s, c = view["summary"]["services"], view["summary"]["contacts"]
    lines.append(
        f"services: {s[CREATE]} to create, {s[UPDATE]} to update, {s[UNCHANGED]} unchanged, "
        f"{s[NOT_IN_FILE]} not in file; contacts: {c[CREATE]} to create, {c[UPDATE]} to update, "
        f"{c[UNCHANGED]} unchanged, {c[NOT_IN_FILE]} not in file; "
        f"{view['summary']['bad_rows']} bad rows"
    )
    return lines
