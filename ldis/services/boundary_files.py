"""Load many area boundaries at once from a GeoJSON FeatureCollection (e.g. ONS wards).

All or nothing: every feature is checked first, and if any is refused nothing is stored, so
a file can be fixed and loaded again without leaving half of it behind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ldis.domain import geo
from ldis.domain.errors import ValidationFailed
from ldis.domain.principal import Principal
from ldis.domain.recipients import AreaInput
from ldis.domain.roles import Role
from ldis.domain.validation import parse
from ldis.services import audit
from ldis.services.recipients import areas_by_code
from ldis.store.db import Database
from ldis.store.models import Area

# `ldis areas load-boundaries` acts as an admin: whoever can run it can change the database.
COMMAND_LINE_ADMIN = Principal(user_id=0, email="system", roles=frozenset({Role.admin}))


@dataclass(frozen=True)
class Refusal:
    index: int  # the feature's position in the file, from 0
    code: str | None
    reason: str


@dataclass
class LoadResult:
    features: int = 0
    loaded: int = 0  # existing areas given a boundary (or a new one)
    created: int = 0  # areas added with their boundary (--create)
    refused: list[Refusal] = field(default_factory=list)
    stored: bool = False


@dataclass(frozen=True)
class _Feature:
    index: int
    code: str
    name: str
    boundary: geo.Boundary


class _NothingStored(Exception):
    """Raised inside the transaction to roll it back when any feature was refused."""


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    text = str(value).strip()
    return text or None


def _check(
    index: int, feature: Any, code_property: str, name_property: str | None
) -> _Feature | Refusal:
    properties = feature.get("properties") if isinstance(feature, dict) else None
    properties = properties if isinstance(properties, dict) else {}
    raw_code = _text(properties.get(code_property))
    if raw_code is None:
        return Refusal(index, None, f"has no property {code_property!r} to give its area code")
    name = _text(properties.get(name_property)) if name_property else raw_code
    if name is None:
        return Refusal(index, raw_code, f"has no property {name_property!r} to give its name")
    try:
        data = parse(AreaInput, {"code": raw_code, "name": name})
        geometry, path = geo.unwrap_feature(feature, f"features.{index}")
        boundary = geo.parse_geometry(geometry, path)
    except ValidationFailed as exc:
        return Refusal(index, raw_code, "; ".join(f"{k}: {v}" for k, v in exc.fields.items()))
    return _Feature(index, data.code, data.name, boundary)


def load_boundaries(
    db: Database,
    actor: Principal,
    collection: Any,
    *,
    code_property: str,
    name_property: str | None = None,
    parent: str | None = None,
    create: bool = False,
) -> LoadResult:
    """Give each feature's area its boundary (creating missing areas when `create`)."""
    actor.require(Role.admin)
    features = collection.get("features") if isinstance(collection, dict) else None
    if not isinstance(collection, dict) or collection.get("type") != "FeatureCollection":
        raise ValidationFailed({"file": "must be a GeoJSON FeatureCollection"})
    if not isinstance(features, list) or not features:
        raise ValidationFailed({"file.features": "has no features to load"})
    result = LoadResult(features=len(features))
    checked: list[_Feature] = []
    seen: dict[str, int] = {}
    for index, feature in enumerate(features):
        outcome = _check(index, feature, code_property, name_property)
        if isinstance(outcome, Refusal):
            result.refused.append(outcome)
        elif outcome.code in seen:
            result.refused.append(
                Refusal(index, outcome.code, f"repeats the code of feature {seen[outcome.code]}")
            )
        else:
            seen[outcome.code] = index
            checked.append(outcome)
    try:
        with db.transaction() as session:
            _store(session, actor, checked, result, parent=parent, create=create)
            if result.refused:
                raise _NothingStored
    except _NothingStored:
        result.refused.sort(key=lambda r: r.index)
        return result
    result.stored = True
    return result


def _store(
    session: Session,
    actor: Principal,
    checked: list[_Feature],
    result: LoadResult,
    *,
    parent: str | None,
    create: bool,
) -> None:
    parent_area = areas_by_code(session, [parent.strip().upper()], "parent")[0] if parent else None
    codes = [f.code for f in checked]
    existing: dict[str, Area] = {}
    for start in range(0, len(codes), 1000):
        chunk = codes[start : start + 1000]
        existing.update(
            (a.code, a) for a in session.scalars(select(Area).where(Area.code.in_(chunk)))
        )
    now = datetime.now(UTC)
    for item in checked:
        area = existing.get(item.code)
        if area is None and not create:
            result.refused.append(
                Refusal(
                    item.index,
                    item.code,
                    f"no area has the code {item.code}; add it first, or load with --create",
                )
            )
            continue
        if area is None:
            area = Area(code=item.code, name=item.name, parent=parent_area)
            session.add(area)
            result.created += 1
        else:
            result.loaded += 1
        area.boundary = item.boundary.geometry
        area.min_lon, area.min_lat, area.max_lon, area.max_lat = item.boundary.bbox
        area.updated_at = now
    if result.refused:
        return
    session.flush()
    audit.record(
        session,
        actor_id=actor.db_id,
        action="areas.boundaries_loaded",
        entity="area",
        entity_id=None,
        loaded=result.loaded,
        created=result.created,
        parent=parent_area.code if parent_area else None,
    )
