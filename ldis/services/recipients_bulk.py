"""CSV import and export of services and contacts (docs/recipients-csv.md).

`plan_import` is the dry run: it reads the file (ldis.domain.recipients_csv) and compares it
with the database. `apply_import` takes a lock, plans again inside its own transaction and
writes only what differs, all or nothing, so re-running a file writes nothing and two
applies racing each other cannot both write. Contacts that are in the database but not in
the file are listed and left alone: removing a person is a deliberate single action.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ldis.domain.errors import Conflict
from ldis.domain.principal import Principal
from ldis.domain.recipients_csv import export_phone, format_quiet_hours, render
from ldis.domain.roles import Role
from ldis.services import audit, notices, verification
from ldis.services.contacts import is_removed
from ldis.services.recipients_plan import (
    CREATE,
    UNCHANGED,
    UPDATE,
    Plan,
    build_plan,
    fold,
    plan_lines,
)
from ldis.store.db import Database, on_postgresql
from ldis.store.models import Area, Contact, ContactChannel, Service

__all__ = ["COMMAND_LINE_ADMIN", "apply_import", "export_csv", "plan_import", "plan_lines"]
# The command line acts as an administrator who is no user (audited with no actor).
COMMAND_LINE_ADMIN = Principal(user_id=0, email="command line", roles=frozenset({Role.admin}))
# PostgreSQL advisory lock held by an apply for its transaction ("ldis" + issue 7).
APPLY_LOCK = 0x6C646973_0007


def plan_import(db: Database, actor: Principal, data: bytes) -> dict[str, Any]:
    """The dry run: what the file would change. Writes nothing."""
    actor.require(Role.admin)
    with db.transaction() as session:
        return build_plan(session, data).view(applied=False)


def _lock(session: Session) -> None:
    """Serialise applies: on PostgreSQL an advisory lock; on SQLite a write at once takes
    the database's single writer lock before anything is read."""
    if on_postgresql(session):
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": APPLY_LOCK})
    else:
        session.execute(text("UPDATE service_types SET code = code WHERE 1 = 0"))


def _restart(channel: ContactChannel) -> None:
    """As a single change does (ldis.services.contacts): a new address proves nothing yet,
    and the old one's STOP or failure is not its own (`verification.start` looks the new
    number up for a STOP of its own)."""
    channel.verified_at = None
    channel.opted_out_at = None
    channel.failed_at = None
    channel.failure_reason = None


def _write(session: Session, plan: Plan, now: datetime) -> list[tuple[Contact, str]]:
    """Write the plan; return the (contact, channel) pairs whose verification must start."""
    areas = {a.code: a for a in session.scalars(select(Area))}
    services: dict[str, Service] = {}
    for planned in plan.services:
        wanted, service = planned.target, planned.existing
        if wanted is None:
            continue
        if service is None:
            service = Service(ref=wanted.ref, name=wanted.name, type=wanted.type)
            session.add(service)
        if planned.action != UNCHANGED:
            service.ref, service.name, service.type = wanted.ref, wanted.name, wanted.type
            service.areas = [areas[code] for code in wanted.areas]
            service.alert_levels = list(wanted.alert_levels)
            service.alert_kinds = list(wanted.alert_kinds)
            service.updated_at = now if planned.action == UPDATE else None
        services[wanted.ref] = service
    session.flush()
    updates = [c for c in plan.contacts if c.action == UPDATE and c.existing and c.target]
    # Free every address that moves first: the unique (service, address) indexes would
    # otherwise refuse two contacts swapping, or one taking another's old address.
    for change in updates:
        assert change.existing is not None
        if "email" in change.fields:
            change.existing.email = None
        if "phone" in change.fields:
            change.existing.phone = None
    session.flush()
    to_verify: list[tuple[Contact, str]] = []
    for change in plan.contacts:
        row = change.target
        if row is None or change.action == UNCHANGED:
            continue
        contact = change.existing
        if contact is None:
            contact = Contact(service=services[change.service_ref or ""], channels=[])
            session.add(contact)
        else:
            contact.updated_at = now
        contact.name, contact.role = row.name, row.role
        contact.email, contact.phone = row.email, row.phone
        contact.quiet_start, contact.quiet_end = row.quiet_start, row.quiet_end
        kept = [c for c in contact.channels if c.channel in row.channels]
        for channel in kept:
            if channel.channel in change.awaiting_verification:
                _restart(channel)
        have = {c.channel for c in kept}
        contact.channels = kept + [
            ContactChannel(channel=ch) for ch in row.channels if ch not in have
        ]
        to_verify.extend((contact, ch) for ch in change.awaiting_verification)
    session.flush()
    return to_verify


def apply_import(
    db: Database,
    actor: Principal,
    data: bytes,
    *,
    sending: verification.Sending,
    expected_plan: str | None = None,
) -> dict[str, Any]:
    """Apply the file when it has no bad rows (else the plan comes back with `applied`
    false and nothing written). `expected_plan` is the fingerprint of the preview the
    person saw: if the records changed since, Conflict, unless nothing is left to do."""
    actor.require(Role.admin)
    try:
        with db.transaction() as session:
            _lock(session)
            plan = build_plan(session, data)
            if plan.errors:
                return plan.view(applied=False)
            if not plan.writes:
                return plan.view(applied=True)  # already as the file says: nothing written
            if expected_plan is not None and plan.fingerprint() != expected_plan:
                raise Conflict(
                    "The services or contacts changed after this file was previewed; preview "
                    "it again to see what it would change now."
                )
            view = plan.view(applied=True)
            now = datetime.now(UTC)
            # A code or link goes out for every new or changed address, as for one contact.
            sent = [
                verification.start(session, contact, channel, sending, now)
                for contact, channel in _write(session, plan, now)
            ]
            view["verification_sent"] = sum(1 for notice in sent if notice is not None)
            _audit(session, actor, plan, view)
    except IntegrityError:
        # A single change (another admin's form) took an address at the same moment.
        raise Conflict(
            "A service or contact changed while the file was being applied; nothing was "
            "changed. Preview the file again."
        ) from None
    notices.enqueue_quietly(sending.queue, sent)
    return view


def _audit(session: Session, actor: Principal, plan: Plan, view: dict[str, Any]) -> None:
    summary = view["summary"]
    # Counts only: the audit log is read more widely than the contact list.
    audit.record(
        session,
        actor_id=actor.db_id,
        action="recipients.imported",
        entity="recipients",
        entity_id=None,
        file_sha256=plan.file.sha256,
        rows=summary["rows"],
        services={a: summary["services"][a] for a in (CREATE, UPDATE, UNCHANGED)},
        contacts={a: summary["contacts"][a] for a in (CREATE, UPDATE, UNCHANGED)},
        awaiting_verification=summary["awaiting_verification"],
        verification_sent=view["verification_sent"],
    )


def _export_records(session: Session) -> list[dict[str, str]]:
    services = list(session.scalars(select(Service)))
    services.sort(key=lambda s: (s.ref is None, s.ref or "", fold(s.name), s.id))
    records = []
    for service in services:
        base = {
            "service_ref": service.ref or "",
            "service_name": service.name,
            "service_type": service.type,
            "service_areas": ";".join(sorted(a.code for a in service.areas)),
            "alert_levels": ";".join(service.alert_levels),
            "alert_kinds": ";".join(service.alert_kinds),
        }
        contacts = sorted(
            (c for c in service.contacts if not is_removed(c)),
            key=lambda c: (c.role != "primary", fold(c.name), fold(c.email), c.phone or "", c.id),
        )
        if not contacts:
            records.append(base)
        for contact in contacts:
            records.append(
                base
                | {
                    "contact_name": contact.name,
                    "contact_role": contact.role,
                    "email": contact.email or "",
                    "phone": export_phone(contact.phone),
                    "channels": ";".join(
                        ch for ch in ("sms", "email") if ch in {c.channel for c in contact.channels}
                    ),
                    "quiet_hours": format_quiet_hours(contact.quiet_start, contact.quiet_end),
                }
            )
    return records


def export_csv(db: Database, actor: Principal) -> bytes:
    """Every service and contact in the import's columns (no ids, verification or
    opt-outs), sorted stably, so exporting and importing the result changes nothing."""
    actor.require(Role.admin)
    with db.transaction() as session:
        return render(_export_records(session))
