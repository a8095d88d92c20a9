"""The contacts an alert reaches, and why the services it misses get nothing: the SQL half
of the audience query (`ldis.services.audience.resolve`), filtering by the domain's own
rules (`ldis.domain.audience`) so the database and Python can never disagree.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Integer,
    and_,
    any_,
    case,
    exists,
    func,
    literal,
    not_,
    or_,
    select,
)
from sqlalchemy.orm import InstrumentedAttribute, Session

from ldis.domain import audience as rules
from ldis.domain.audience import MissedService, MissReason, ReachedContact, ReachedService
from ldis.store.db import on_postgresql
from ldis.store.models import Contact, ContactChannel, ContactUnsubscription

# `reached_contacts` builds each ReachedContact as a bare tuple in this order (no per-row call
# checking its length), so a changed field list must fail loudly here, not misplace values.
_CONTACT_FIELDS = (
    "contact_id",
    "name",
    "role",
    "email",
    "phone",
    "quiet_start",
    "quiet_end",
    "channels",
)
if ReachedContact._fields != _CONTACT_FIELDS:
    raise RuntimeError(f"update reached_contacts for ReachedContact{ReachedContact._fields}")


def among(
    session: Session, column: InstrumentedAttribute[int], ids: Iterable[int]
) -> ColumnElement[bool]:
    """`column` is one of `ids`. On PostgreSQL one array parameter (`= ANY(...)`), not an
    `IN` list of a parameter each: the text stays the same whatever the count, so it is
    prepared once. SQLite (the embedded run) has no arrays and gets the `IN` list."""
    if on_postgresql(session):
        return column == any_(literal(sorted(ids), ARRAY(Integer)))
    return column.in_(sorted(ids))


def _exactly(facts: NamedTuple, sql: dict[str, ColumnElement[bool]]) -> ColumnElement[bool]:
    """SQL that holds when each fact is as the domain rule `facts` says (every fact named)."""
    wanted = facts._asdict()
    if set(wanted) != set(sql):
        raise ValueError(f"SQL for {sorted(wanted)} needed, got {sorted(sql)}")
    return and_(*(sql[name] if wanted[name] else not_(sql[name]) for name in wanted))


def _filled(column: Any) -> ColumnElement[bool]:
    return and_(column.is_not(None), column != "")


def _contact_facts(kind: str) -> dict[str, ColumnElement[bool]]:
    return {
        "opted_out": Contact.opted_out_at.is_not(None),
        "unsubscribed": exists().where(
            ContactUnsubscription.contact_id == Contact.id,
            ContactUnsubscription.alert_kind == kind,
        ),
    }


def _channel_facts() -> dict[str, ColumnElement[bool]]:
    """The facts of a `contact_channels` row, joined to its contact."""
    channel = ContactChannel
    return {
        "verified": channel.verified_at.is_not(None),
        "opted_out": channel.opted_out_at.is_not(None),
        "failed": channel.failed_at.is_not(None),
        "addressed": or_(
            *(
                and_(channel.channel == name, _filled(getattr(Contact, field)))
                for name, field in rules.ADDRESS_FIELD.items()
            )
        ),
    }


def reached_contacts(
    session: Session, wanting: dict[int, Any], kind: str
) -> tuple[list[ReachedService], list[MissedService], dict[str, int]]:
    """The reachable contacts of the services that want the alert, with their channels.

    One row per willing contact with a usable channel: the usable channels joined once and
    folded into one number per contact, a bit per channel kind. Rows cost more to carry
    into Python than to find, so only what is reached crosses over, as plain tuples, and
    each becomes its `ReachedContact` at once: few objects, so little garbage collection.
    """
    if not wanting:
        return [], [], {}
    kinds = list(rules.ADDRESS_FIELD)
    # A bit per channel kind the contact can be sent on (max() works on SQLite too).
    channel_set = functools.reduce(
        operator.add,
        (
            func.max(case((ContactChannel.channel == name, 1 << bit), else_=0))
            for bit, name in enumerate(kinds)
        ),
    )
    statement = (
        select(
            Contact.service_id,
            Contact.id,
            Contact.name,
            Contact.role,
            Contact.email,
            Contact.phone,
            Contact.quiet_start,
            Contact.quiet_end,
            channel_set,
        )
        .join(
            ContactChannel,
            and_(
                ContactChannel.contact_id == Contact.id,
                _exactly(rules.USABLE_CHANNEL, _channel_facts()),
            ),
        )
        .where(
            among(session, Contact.service_id, wanting),
            _exactly(rules.WILLING_CONTACT, _contact_facts(kind)),
        )
        .group_by(Contact.id)
    )
    # Each bit set -> its channel kinds, in name order.
    channels_of = [
        tuple(sorted(k for bit, k in enumerate(kinds) if mask >> bit & 1))
        for mask in range(1 << len(kinds))
    ]
    per_set = [0] * len(channels_of)
    contacts_of: dict[int, list[ReachedContact]] = {service_id: [] for service_id in wanting}
    make = tuple.__new__  # what ReachedContact._make does, without a Python call per row
    result = session.connection().execute(statement)
    rows: Sequence[Any]
    if on_postgresql(session):
        try:  # psycopg's own tuples, already the right types: no SQLAlchemy row for each
            rows = result.cursor.fetchall()
        finally:
            result.close()
    else:  # SQLite keeps times as text, which SQLAlchemy's rows convert
        rows = result.all()
    for service_id, contact_id, name, role, email, phone, start, end, mask in rows:
        per_set[mask] += 1
        contacts_of[service_id].append(
            make(
                ReachedContact,
                (contact_id, name, role, email, phone, start, end, channels_of[mask]),
            )
        )
    del rows
    by_channel: dict[str, int] = {}
    for channels, count in zip(channels_of, per_set, strict=True):
        for channel in channels:
            if count:
                by_channel[channel] = by_channel.get(channel, 0) + count

    reached: list[ReachedService] = []
    missing: list[int] = []
    for service_id, row in wanting.items():  # already in name order
        found = contacts_of[service_id]
        if found:
            found.sort(key=_contact_order)
            reached.append(ReachedService(service_id, row.name, row.type, found))
        else:
            missing.append(service_id)
    reasons = _miss_reasons(session, missing, kind)
    missed = [
        MissedService(sid, wanting[sid].name, wanting[sid].type, reasons[sid]) for sid in missing
    ]
    return reached, missed, by_channel


def _contact_order(contact: ReachedContact) -> tuple[bool, str, int]:
    """Primary contacts first, then by name as people read it."""
    return contact[2] != "primary", contact[1].casefold(), contact[0]


def _miss_reasons(session: Session, service_ids: list[int], kind: str) -> dict[int, MissReason]:
    """Why each of these services (which want the alert) would get nothing. Two indexed
    lookups (their contacts, then the willing ones' channels): these services are few and
    have few contacts, and a join would have the planner scan every channel."""
    if not service_ids:
        return {}
    contact_sql = _contact_facts(kind)
    contacts: dict[int, int] = {}
    willing: dict[int, int] = {}  # contact -> service
    for service_id, contact_id, *facts in session.connection().execute(
        select(Contact.service_id, Contact.id, *contact_sql.values()).where(
            Contact.service_id.in_(service_ids)
        )
    ):
        contacts[service_id] = contacts.get(service_id, 0) + 1
        if rules.contact_willing(rules.ContactFacts._make(facts)):
            willing[contact_id] = service_id
    verified: dict[int, int] = {}
    if willing:
        for contact_id, *facts in session.connection().execute(
            select(ContactChannel.contact_id, *_channel_facts().values())
            .join(Contact, Contact.id == ContactChannel.contact_id)
            .where(ContactChannel.contact_id.in_(list(willing)))
        ):
            channel = rules.ChannelFacts._make(facts)
            if channel.verified and channel.addressed:
                service_id = willing[contact_id]
                verified[service_id] = verified.get(service_id, 0) + 1
    willing_count: dict[int, int] = {}
    for service_id in willing.values():
        willing_count[service_id] = willing_count.get(service_id, 0) + 1
    return {
        sid: rules.miss_reason(
            contacts.get(sid, 0), willing_count.get(sid, 0), verified.get(sid, 0)
        )
        for sid in service_ids
    }
