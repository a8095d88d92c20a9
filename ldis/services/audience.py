"""The audience query: which services, contacts and channels an alert reaches, and which
services it would miss. One source of truth: the panel's preview and the approval's
delivery rows (`ldis.services.outbox_writer`) both call `resolve`.

Four small queries, whatever the size: the area tree (id, parent) and the neighbour links,
from which the domain computes the set of area ids in scope; the services in scope; and one
join of their contacts, channels and unsubscriptions (`ldis.services.audience_contacts`).
The rules themselves are in `ldis.domain.audience`.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from sqlalchemy import (
    ColumnElement,
    String,
    and_,
    cast,
    select,
)
from sqlalchemy.orm import Session

from ldis.domain import audience as rules
from ldis.domain.audience import (
    Audience,
    AudienceQuery,
    ReachedContact,
)
from ldis.domain.errors import ValidationFailed
from ldis.domain.masking import mask_email, mask_phone
from ldis.domain.principal import Principal
from ldis.domain.roles import Role
from ldis.domain.validation import parse
from ldis.services.audience_contacts import among, reached_contacts
from ldis.services.gc_pause import collection_paused
from ldis.store.db import Database
from ldis.store.models import (
    Area,
    AreaNeighbour,
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
    # A county-wide answer creates ~12,000 short-lived objects at once; a full garbage
    # collection in the middle of that costs ~100 ms and is what made the slow runs slow.
    with collection_paused():
        return _resolve(session, query)


def _resolve(session: Session, query: AudienceQuery) -> Audience:
    parent_of, code_of, chosen = _area_tree(session, query)
    neighbours = _neighbours(session, chosen) if query.include_neighbours else {}
    alert_areas = rules.alert_area_ids(chosen, neighbours, query.include_neighbours)
    in_scope = rules.overlapping_area_ids(alert_areas, parent_of)

    # Services in scope (by area and type); a semi-join, so several areas never repeat one.
    covering = select(ServiceArea.service_id).where(among(session, ServiceArea.area_id, in_scope))
    scope: ColumnElement[bool] = Service.id.in_(covering)
    if query.service_ids:
        scope = Service.id.in_(query.service_ids)
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
    reached, missed, by_channel = reached_contacts(session, wanting, kind)
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
