"""The audience query: which services, contacts and channels an alert reaches, and which
services it would miss. One source of truth: the panel's preview and the approval's
delivery rows (`ldis.services.outbox_writer`) both call `resolve`.

Four small queries, whatever the size: the area tree (id, parent) and the neighbour links,
from which the domain computes the set of area ids in scope; the services in scope; and one
join of their contacts, channels and unsubscriptions. The rules themselves are in
`ldis.domain.audience`.
"""

from __future__ import annotations

import functools
import json
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, String, and_, cast, exists, func, not_, or_, select
from sqlalchemy.orm import Session, aliased

from ldis.domain import audience as rules
from ldis.domain.audience import (
    Audience,
    AudienceQuery,
    MissedService,
    MissReason,
    ReachedContact,
    ReachedService,
)
from ldis.domain.errors import ValidationFailed
from ldis.domain.masking import mask_email, mask_phone
from ldis.domain.principal import Principal
from ldis.domain.roles import Role
from ldis.domain.validation import parse
from ldis.store.db import Database
from ldis.store.models import (
    Area,
    AreaNeighbour,
    Contact,
    ContactChannel,
    ContactUnsubscription,
    Service,
    ServiceArea,
    ServiceType,
)


def _area_tree(
    session: Session, query: AudienceQuery
) -> tuple[dict[int, int | None], dict[int, str], list[int]]:
    """(parent_of, code_of, chosen ids) from one scan; ValidationFailed naming unknown codes."""
    parent_of: dict[int, int | None] = {}
    code_of: dict[int, str] = {}
    for area_id, code, parent_id in session.execute(select(Area.id, Area.code, Area.parent_id)):
        parent_of[area_id] = parent_id
        code_of[area_id] = code
    id_of = {code: area_id for area_id, code in code_of.items()}
    missing = {
        f"areas.{i}": f"unknown area code {code!r}"
        for i, code in enumerate(query.areas)
        if code not in id_of
    }
    if missing:
        raise ValidationFailed(missing)
    return parent_of, code_of, [id_of[code] for code in query.areas]


def _neighbours(session: Session, area_ids: list[int]) -> dict[int, list[int]]:
    found: dict[int, list[int]] = {}
    rows = session.execute(
        select(AreaNeighbour.area_id, AreaNeighbour.neighbour_id).where(
            AreaNeighbour.area_id.in_(area_ids)
        )
    )
    for area_id, neighbour_id in rows:
        found.setdefault(area_id, []).append(neighbour_id)
    return found


@functools.lru_cache(maxsize=256)
def _json_list(raw: str | None) -> tuple[str, ...]:
    value = json.loads(raw) if raw else None
    return tuple(value) if isinstance(value, list) else ()


def resolve(session: Session, query: AudienceQuery) -> Audience:
    """Everything an alert with `query`'s areas, types, level and kind would reach."""
    parent_of, code_of, chosen = _area_tree(session, query)
    neighbours = _neighbours(session, chosen) if query.include_neighbours else {}
    alert_areas = rules.alert_area_ids(chosen, neighbours, query.include_neighbours)
    in_scope = rules.overlapping_area_ids(alert_areas, parent_of)

    # Services in scope (by area and type); a semi-join, so several areas never repeat one.
    covering = select(ServiceArea.service_id).where(ServiceArea.area_id.in_(sorted(in_scope)))
    scope: ColumnElement[bool] = Service.id.in_(covering)
    if query.service_types:
        scope = and_(scope, Service.type.in_(query.service_types))
    services = sorted(
        session.connection().execute(
            select(
                Service.id,
                Service.name,
                Service.type,
                # As text: thousands of services share a few distinct lists, parsed once each.
                cast(Service.alert_levels, String),
                cast(Service.alert_kinds, String),
            ).where(scope)
        ),
        # By name as people read it, whatever the database's collation.
        key=lambda row: (row.name.casefold(), row.id),
    )
    level, kind = query.level.value, query.kind.value
    wanting = {
        row[0]: row
        for row in services
        if rules.service_wants(_json_list(row[3]), _json_list(row[4]), level, kind)
    }
    reached, missed, by_channel = _contacts(session, scope, wanting, kind)
    neighbour_ids = alert_areas - set(chosen)
    return Audience(
        query=query,
        alert_areas=sorted(code_of[a] for a in alert_areas),
        neighbour_areas=sorted(code_of[a] for a in neighbour_ids),
        services=reached,
        missed=missed,
        excluded_by_choice=len(services) - len(wanting),
        by_channel=by_channel,
    )


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


def _channel_facts(channel: Any, kind: str | None = None) -> dict[str, ColumnElement[bool]]:
    """The facts of a `contact_channels` row (or alias); `kind` when it is known to be one."""
    addresses = rules.ADDRESS_FIELD if kind is None else {kind: rules.ADDRESS_FIELD[kind]}
    return {
        "verified": channel.verified_at.is_not(None),
        "opted_out": channel.opted_out_at.is_not(None),
        "failed": channel.failed_at.is_not(None),
        "addressed": or_(
            *(
                and_(channel.channel == name, _filled(getattr(Contact, field)))
                for name, field in addresses.items()
            )
        ),
    }


def _contacts(
    session: Session, scope: ColumnElement[bool], wanting: dict[int, Any], kind: str
) -> tuple[list[ReachedService], list[MissedService], dict[str, int]]:
    """The reachable contacts of the services that want the alert, with their channels.

    One row per willing contact, with a yes/no column per channel kind (each kind its own
    join on the channels' primary key): no grouping or sorting in the database, and only
    what is reached crosses to Python.
    """
    if not wanting:
        return [], [], {}
    kinds = list(rules.ADDRESS_FIELD)
    joined = {name: aliased(ContactChannel, name=f"channel_{name}") for name in kinds}
    usable = {
        name: _exactly(rules.USABLE_CHANNEL, _channel_facts(alias, name))
        for name, alias in joined.items()
    }
    statement = select(
        Contact.service_id,
        Contact.id,
        Contact.name,
        Contact.role,
        Contact.email,
        Contact.phone,
        Contact.quiet_start,
        Contact.quiet_end,
        *(func.coalesce(usable[name], False) for name in kinds),
    )
    for name, alias in joined.items():
        statement = statement.outerjoin(
            alias, and_(alias.contact_id == Contact.id, alias.channel == name)
        )
    rows = (
        session.connection()  # Core, not ORM: many plain rows, read once
        .execute(
            statement.where(
                # The scope again as a subquery, not thousands of ids; services that chose
                # not to receive this level or kind are skipped below.
                Contact.service_id.in_(select(Service.id).where(scope)),
                _exactly(rules.WILLING_CONTACT, _contact_facts(kind)),
                or_(*usable.values()),
            )
        )
        .all()
    )
    names: dict[tuple[bool, ...], tuple[str, ...]] = {}  # (sms?, email?) -> ("sms", ...)
    combos: dict[tuple[str, ...], int] = {}
    contacts_of: dict[int, list[ReachedContact]] = {}
    for row in rows:
        service_id = row[0]
        if service_id not in wanting:
            continue
        flags = tuple(row[8:])
        channels = names.get(flags)
        if channels is None:
            channels = names[flags] = tuple(
                sorted(k for k, on in zip(kinds, flags, strict=True) if on)
            )
        combos[channels] = combos.get(channels, 0) + 1
        contacts_of.setdefault(service_id, []).append(ReachedContact(*row[1:8], channels))
    by_channel: dict[str, int] = {}
    for channels, count in combos.items():
        for channel in channels:
            by_channel[channel] = by_channel.get(channel, 0) + count

    reached: list[ReachedService] = []
    missing: list[int] = []
    for service_id, row in wanting.items():  # already in name order
        found = contacts_of.get(service_id)
        if found is None:
            missing.append(service_id)
            continue
        # Primary contacts first, then by name as people read it.
        found.sort(key=lambda c: (c.role != "primary", c.name.casefold(), c.contact_id))
        reached.append(ReachedService(service_id, row.name, row.type, found))
    reasons = _miss_reasons(session, missing, kind)
    missed = [
        MissedService(sid, wanting[sid].name, wanting[sid].type, reasons[sid]) for sid in missing
    ]
    return reached, missed, by_channel


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
            select(ContactChannel.contact_id, *_channel_facts(ContactChannel).values())
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


# --- the preview use case -----------------------------------------------------------------


def _check_types(session: Session, query: AudienceQuery) -> None:
    if not query.service_types:
        return
    known = set(session.scalars(select(ServiceType.code)))
    unknown = {
        f"service_types.{i}": f"unknown service type {code!r}; use one of: "
        + ", ".join(sorted(known))
        for i, code in enumerate(query.service_types)
        if code not in known
    }
    if unknown:
        raise ValidationFailed(unknown)


def preview(
    db: Database, actor: Principal, body: Any, *, limit: int | None = None
) -> dict[str, Any]:
    """The panel's preview of an alert's audience, with addresses partly hidden."""
    actor.require(Role.panel, Role.admin)
    query = parse(AudienceQuery, body)
    errors: dict[str, str] = {}
    with db.transaction() as session:
        try:
            _check_types(session, query)
        except ValidationFailed as exc:
            errors = exc.fields
        try:
            result = resolve(session, query)
        except ValidationFailed as exc:
            errors |= exc.fields  # unknown areas and types named together
    if errors:
        raise ValidationFailed(errors)
    return audience_view(result, limit=limit)


def _masked(contact: ReachedContact, channel: str) -> str:
    if channel == "sms" and contact.phone:
        return mask_phone(contact.phone)
    if channel == "email" and contact.email:
        return mask_email(contact.email)
    return ""


def audience_view(result: Audience, *, limit: int | None = None) -> dict[str, Any]:
    """The result as JSON: names and channel kinds, addresses only partly shown. `limit`
    caps the services listed in full (a page), never the totals."""
    query = result.query
    shown = result.services if limit is None else result.services[:limit]
    return {
        "query": query.model_dump(mode="json"),
        "alert_areas": result.alert_areas,
        "neighbour_areas": result.neighbour_areas,
        "totals": {
            "services": len(result.services),
            "contacts": result.contact_count,
            "messages": result.message_count,
            "by_channel": dict(sorted(result.by_channel.items())),
            "missed": len(result.missed),
            "excluded_by_choice": result.excluded_by_choice,
        },
        "services": [
            {
                "id": service.service_id,
                "name": service.name,
                "type": service.type,
                "contacts": [
                    {
                        "id": contact.contact_id,
                        "name": contact.name,
                        "role": contact.role,
                        "channels": [
                            {"channel": channel, "address": _masked(contact, channel)}
                            for channel in contact.channels
                        ],
                    }
                    for contact in service.contacts
                ],
            }
            for service in shown
        ],
        "services_listed": len(shown),
        "missed": [
            {
                "id": missed.service_id,
                "name": missed.name,
                "type": missed.type,
                "reason": missed.reason.value,
                "why": rules.MISS_REASON_TEXT[missed.reason],
            }
            for missed in result.missed
        ],
        "excluded_by_choice": result.excluded_by_choice,
    }


def form_choices(db: Database, actor: Principal) -> dict[str, list[tuple[str, str]]]:
    """Areas (indented under their parents) and service types, for the preview form."""
    actor.require(Role.panel, Role.admin)
    with db.transaction() as session:
        areas = session.execute(select(Area.id, Area.code, Area.name, Area.parent_id)).all()
        types = session.execute(
            select(ServiceType.code, ServiceType.label).order_by(ServiceType.label)
        ).all()
    parent_of = {a.id: a.parent_id for a in areas}
    by_id = {a.id: a for a in areas}

    def path(area_id: int) -> list[str]:
        return [by_id[a].name for a in reversed(rules.ancestry(area_id, parent_of))]

    ordered = sorted(areas, key=lambda a: [n.lower() for n in path(a.id)])
    area_choices = [(a.code, f"{'— ' * (len(path(a.id)) - 1)}{a.name} ({a.code})") for a in ordered]
    return {"areas": area_choices, "service_types": [(t.code, t.label) for t in types]}
