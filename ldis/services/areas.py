"""Areas: the hierarchy, boundaries, neighbours, and which areas contain a point.

Admins change them; the panel, admins and service managers read them; `locate` (and the batch
`Locator`) is what report intake and the cluster detectors use to find a point's area.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, null, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ldis.domain import geo
from ldis.domain.areas import AreaUpdate, NeighbourInput, depths, tree_order, would_cycle
from ldis.domain.errors import Conflict, NotFound, ValidationFailed
from ldis.domain.principal import Principal
from ldis.domain.recipients import AreaInput
from ldis.domain.roles import Role
from ldis.domain.validation import parse
from ldis.services import audit
from ldis.services.recipients import areas_by_code
from ldis.store.db import Database
from ldis.store.models import Area, AreaNeighbour

READERS = (Role.panel, Role.admin, Role.service_manager)
LOCATORS = (Role.reporter, Role.panel, Role.admin)


def area_view(area: Area) -> dict[str, Any]:
    return {
        "id": area.id,
        "code": area.code,
        "name": area.name,
        "parent": area.parent.code if area.parent else None,
        "has_boundary": area.boundary is not None,
    }


def _area(session: Session, code: str) -> Area:
    area = session.scalar(select(Area).where(Area.code == code.strip().upper()))
    if area is None:
        raise NotFound(f"No area {code}.")
    return area


def _parents(session: Session, *, lock: bool = False) -> dict[int, int | None]:
    query = select(Area.id, Area.parent_id)
    if lock:
        # Two parent changes at once could each pass the cycle check and together make a
        # loop: the second waits for the first (PostgreSQL; SQLite has one writer anyway).
        query = query.with_for_update()
    return {area_id: parent_id for area_id, parent_id in session.execute(query)}


def _neighbours(session: Session, area_id: int | None = None) -> dict[int, list[str]]:
    query = (
        select(AreaNeighbour.area_id, Area.code)
        .join(Area, Area.id == AreaNeighbour.neighbour_id)
        .order_by(Area.code)
    )
    if area_id is not None:
        query = query.where(AreaNeighbour.area_id == area_id)
    found: dict[int, list[str]] = {}
    for owner, code in session.execute(query):
        found.setdefault(owner, []).append(code)
    return found


def create_area(db: Database, actor: Principal, body: Any) -> dict[str, Any]:
    actor.require(Role.admin)
    data = parse(AreaInput, body)
    with db.transaction() as session:
        if session.scalar(select(Area.id).where(Area.code == data.code)) is not None:
            raise Conflict(f"Area {data.code} already exists.", {"code": "is already used"})
        parent = areas_by_code(session, [data.parent], "parent")[0] if data.parent else None
        area = Area(code=data.code, name=data.name, parent=parent)
        session.add(area)
        try:
            session.flush()
        except IntegrityError:
            # Codes are unique across the deployment: another partnership's (which this
            # actor cannot see) or one added a moment ago.
            raise Conflict(
                f"Area {data.code} already exists.", {"code": "is already used"}
            ) from None
        audit.record(
            session, actor_id=actor.db_id, action="area.created", entity="area", entity_id=area.id
        )
        return {**area_view(area), "neighbours": []}


def list_areas(db: Database, actor: Principal) -> list[dict[str, Any]]:
    """Every area in tree order (each followed by its sub-areas), with its depth."""
    actor.require(*READERS)
    with db.transaction() as session:
        areas = {a.id: a for a in session.scalars(select(Area))}
        parents = {a.id: a.parent_id for a in areas.values()}
        neighbours = _neighbours(session)
        ordered = tree_order(parents, lambda i: (areas[i].name.lower(), areas[i].code))
        return [
            {**area_view(areas[i]), "depth": depth, "neighbours": neighbours.get(i, [])}
            for i, depth in ordered
        ]


def _detail(session: Session, area: Area) -> dict[str, Any]:
    parents = _parents(session)
    children = session.scalars(
        select(Area.code).where(Area.parent_id == area.id).order_by(Area.name, Area.code)
    )
    has_box = area.min_lon is not None
    return {
        **area_view(area),
        "depth": depths(parents)[area.id],
        "neighbours": _neighbours(session, area.id).get(area.id, []),
        "children": list(children),
        "bbox": [area.min_lon, area.min_lat, area.max_lon, area.max_lat] if has_box else None,
    }


def get_area(db: Database, actor: Principal, code: str) -> dict[str, Any]:
    actor.require(*READERS)
    with db.transaction() as session:
        return _detail(session, _area(session, code))


def update_area(db: Database, actor: Principal, code: str, body: Any) -> dict[str, Any]:
    """Rename an area or move it under another (or to the top); a loop is refused."""
    actor.require(Role.admin)
    data = parse(AreaUpdate, body)
    with db.transaction() as session:
        area = _area(session, code)
        changed: list[str] = []
        if data.name is not None and data.name != area.name:
            area.name = data.name
            changed.append("name")
        if data.changes_parent:
            parent = areas_by_code(session, [data.parent], "parent")[0] if data.parent else None
            new_parent_id = parent.id if parent else None
            if would_cycle(_parents(session, lock=True), area.id, new_parent_id):
                assert parent is not None
                where = "itself" if parent.id == area.id else f"{parent.code}, one of its sub-areas"
                raise ValidationFailed(
                    {
                        "parent": f"{area.code} cannot sit under {where}: that would make a loop; "
                        "choose an area above it or none"
                    }
                )
            if new_parent_id != area.parent_id:
                area.parent = parent
                changed.append("parent")
        if changed:
            area.updated_at = datetime.now(UTC)
            session.flush()
            audit.record(
                session,
                actor_id=actor.db_id,
                action="area.updated",
                entity="area",
                entity_id=area.id,
                changed=changed,
                parent=area.parent.code if area.parent else None,
            )
        return _detail(session, area)


def set_boundary(db: Database, actor: Principal, code: str, body: Any) -> dict[str, Any]:
    """Store a checked boundary and its box; a bad one is refused and nothing changes."""
    actor.require(Role.admin)
    boundary = geo.parse_boundary(body)
    with db.transaction() as session:
        area = _area(session, code)
        replaced = area.boundary is not None
        area.boundary = boundary.geometry
        area.min_lon, area.min_lat, area.max_lon, area.max_lat = boundary.bbox
        area.updated_at = datetime.now(UTC)
        session.flush()
        audit.record(
            session,
            actor_id=actor.db_id,
            action="area.boundary_set",
            entity="area",
            entity_id=area.id,
            type=boundary.geometry["type"],
            positions=boundary.positions,
            replaced=replaced,
        )
        return _detail(session, area)


def boundary_feature(area: Area) -> dict[str, Any]:
    return {
        "type": "Feature",
        "bbox": [area.min_lon, area.min_lat, area.max_lon, area.max_lat],
        "properties": {"code": area.code, "name": area.name},
        "geometry": area.boundary,
    }


def get_boundary(db: Database, actor: Principal, code: str) -> dict[str, Any]:
    """The boundary as a GeoJSON Feature; NotFound when the area has none."""
    actor.require(*READERS)
    with db.transaction() as session:
        area = _area(session, code)
        if area.boundary is None:
            raise NotFound(f"Area {area.code} has no boundary.")
        return boundary_feature(area)


def clear_boundary(db: Database, actor: Principal, code: str) -> None:
    actor.require(Role.admin)
    with db.transaction() as session:
        area = _area(session, code)
        if area.boundary is None:
            raise NotFound(f"Area {area.code} has no boundary.")
        session.execute(
            update(Area)
            .where(Area.id == area.id)
            # SQL NULL, not JSON null, so "no boundary" is one thing in the database.
            .values(
                boundary=null(),
                min_lon=None,
                min_lat=None,
                max_lon=None,
                max_lat=None,
                updated_at=datetime.now(UTC),
            )
        )
        audit.record(
            session,
            actor_id=actor.db_id,
            action="area.boundary_removed",
            entity="area",
            entity_id=area.id,
        )


def link_neighbour(
    db: Database, actor: Principal, code: str, body: Any
) -> tuple[dict[str, Any], bool]:
    """Link two areas both ways; (area detail, whether a new link was made)."""
    actor.require(Role.admin)
    data = parse(NeighbourInput, body)
    with db.transaction() as session:
        area = _area(session, code)
        other = areas_by_code(session, [data.code], "code")[0]
        if other.id == area.id:
            raise ValidationFailed(
                {"code": f"an area cannot be its own neighbour; give another area than {area.code}"}
            )
        existing = session.get(AreaNeighbour, (area.id, other.id))
        if existing is None:
            session.add_all(
                [
                    AreaNeighbour(area_id=area.id, neighbour_id=other.id),
                    AreaNeighbour(area_id=other.id, neighbour_id=area.id),
                ]
            )
            session.flush()
            audit.record(
                session,
                actor_id=actor.db_id,
                action="area.neighbour_linked",
                entity="area",
                entity_id=area.id,
                neighbour=other.code,
            )
        return _detail(session, area), existing is None


def unlink_neighbour(db: Database, actor: Principal, code: str, other_code: str) -> None:
    actor.require(Role.admin)
    with db.transaction() as session:
        area = _area(session, code)
        other = _area(session, other_code)
        removed = session.execute(
            delete(AreaNeighbour).where(
                ((AreaNeighbour.area_id == area.id) & (AreaNeighbour.neighbour_id == other.id))
                | ((AreaNeighbour.area_id == other.id) & (AreaNeighbour.neighbour_id == area.id))
            )
        )
        if not getattr(removed, "rowcount", 0):
            raise NotFound(f"{area.code} and {other.code} are not linked as neighbours.")
        audit.record(
            session,
            actor_id=actor.db_id,
            action="area.neighbour_unlinked",
            entity="area",
            entity_id=area.id,
            neighbour=other.code,
        )


class Locator:
    """The areas containing each of many points (a batch of reports, one run's clusters):
    one query for the boundaries whose box overlaps the points' box, then an R-tree in
    memory. Most specific first: deepest in the hierarchy, then smallest."""

    def __init__(self, session: Session, points: Iterable[tuple[float, float]]) -> None:
        wanted = list(points)
        self._areas: dict[int, Area] = {}
        if wanted:
            lats = [lat for lat, _ in wanted]
            lons = [lon for _, lon in wanted]
            query = select(Area).where(
                Area.min_lon <= max(lons),
                Area.max_lon >= min(lons),
                Area.min_lat <= max(lats),
                Area.max_lat >= min(lats),
            )
            self._areas = {a.id: a for a in session.scalars(query) if a.boundary is not None}
        depth = depths(_parents(session)) if self._areas else {}
        self._index = geo.PointIndex(
            [(a.id, depth[a.id], a.boundary or {}) for a in self._areas.values()]
        )

    def containing(self, lat: float, lon: float) -> list[Area]:
        return [self._areas[i] for i in self._index.containing(lat, lon)]

    def most_specific(self, lat: float, lon: float) -> Area | None:
        found = self._index.containing(lat, lon)
        return self._areas[found[0]] if found else None


def locate(session: Session, lat: float, lon: float) -> list[Area]:
    """The areas whose boundary contains the point (or has it on its edge), most specific
    first."""
    return Locator(session, [(lat, lon)]).containing(lat, lon)


def locate_view(db: Database, actor: Principal, lat: Any, lon: Any) -> list[dict[str, Any]]:
    actor.require(*LOCATORS)
    point_lat, point_lon = geo.parse_point(lat, lon)
    with db.transaction() as session:
        found = locate(session, point_lat, point_lon)
        depth = depths(_parents(session)) if found else {}
        return [{**area_view(a), "depth": depth[a.id]} for a in found]
