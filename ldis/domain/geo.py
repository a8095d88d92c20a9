"""Area boundaries: GeoJSON checked before anything is stored, and point-in-area lookups.

A boundary is a GeoJSON Polygon or MultiPolygon in WGS84 longitude/latitude (RFC 7946), sent
bare, as a Feature, or as a FeatureCollection of one Feature. Every problem is reported as
{"dotted.path": "what is wrong and how to fix it"}, with the path into the document as sent
(e.g. "boundary.coordinates.0.3" is the fourth position of the outer ring). shapely does the
geometry (validity, bounds, containment); this module turns its findings into plain words.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import shapely
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from ldis.domain.errors import ValidationFailed

AREA_TYPES = ("Polygon", "MultiPolygon")
# A ward boundary at full resolution has a few thousand positions; this many is a country.
MAX_POSITIONS = 200_000
MAX_ERRORS = 20
# Roughly Great Britain, Northern Ireland and their seas: a boundary that lies nowhere near
# here, but would if each pair were swapped, was written latitude first.
UK_LON = (-11.0, 3.0)
UK_LAT = (49.0, 61.0)
FIX_TOOL = (
    "fix it in your mapping tool (QGIS: Vector > Geometry Tools > Fix Geometries) and try again"
)

REFUSED = "The boundary is not valid GeoJSON for an area; nothing was stored."

BBox = tuple[float, float, float, float]  # min_lon, min_lat, max_lon, max_lat


@dataclass(frozen=True)
class Boundary:
    """A checked boundary: the geometry to store (2-D, as sent), its box and size."""

    geometry: dict[str, Any]
    bbox: BBox
    positions: int
    # In square degrees: only ever compared between nearby areas, to put the smaller first.
    size: float


class _Problems:
    def __init__(self) -> None:
        self.fields: dict[str, str] = {}

    def add(self, path: str, message: str) -> None:
        if len(self.fields) < MAX_ERRORS:
            self.fields.setdefault(path, message)

    def raise_if_any(self) -> None:
        if self.fields:
            raise ValidationFailed(self.fields, REFUSED)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".")


def unwrap(value: Any, prefix: str = "boundary") -> tuple[dict[str, Any], str]:
    """The geometry inside a bare geometry, a Feature or a one-Feature FeatureCollection,
    and the path to it."""
    if not isinstance(value, dict):
        raise ValidationFailed(
            {prefix: "must be a GeoJSON object (Polygon, MultiPolygon or Feature)"}
        )
    kind = value.get("type")
    if kind == "FeatureCollection":
        features = value.get("features")
        if not isinstance(features, list) or len(features) != 1:
            count = len(features) if isinstance(features, list) else 0
            raise ValidationFailed(
                {
                    f"{prefix}.features": f"has {count} features; give exactly one for one area "
                    "(load many at once with `ldis areas load-boundaries`)"
                }
            )
        return unwrap_feature(features[0], f"{prefix}.features.0")
    if kind == "Feature":
        return unwrap_feature(value, prefix)
    return value, prefix


def unwrap_feature(value: Any, prefix: str) -> tuple[dict[str, Any], str]:
    if not isinstance(value, dict) or value.get("type") != "Feature":
        raise ValidationFailed({f"{prefix}.type": "must be a GeoJSON Feature"})
    geometry = value.get("geometry")
    if not isinstance(geometry, dict):
        raise ValidationFailed(
            {f"{prefix}.geometry": "is missing; a boundary needs a Polygon or MultiPolygon"}
        )
    return geometry, f"{prefix}.geometry"


def parse_boundary(value: Any, prefix: str = "boundary") -> Boundary:
    """Check a boundary sent bare, as a Feature or as a FeatureCollection of one."""
    try:
        geometry, path = unwrap(value, prefix)
        return parse_geometry(geometry, path)
    except ValidationFailed as exc:
        raise ValidationFailed(exc.fields, REFUSED) from None


def parse_geometry(geometry: dict[str, Any], prefix: str) -> Boundary:
    """Check a Polygon or MultiPolygon geometry; ValidationFailed names each problem."""
    kind = geometry.get("type")
    if kind not in AREA_TYPES:
        got = f"; got {kind}" if isinstance(kind, str) and kind else ""
        raise ValidationFailed(
            {
                f"{prefix}.type": f"must be Polygon or MultiPolygon (an area, not a line or point){got}"
            }
        )
    coordinates = geometry.get("coordinates")
    problems = _Problems()
    path = f"{prefix}.coordinates"
    polygons: list[tuple[str, Any]]
    if kind == "Polygon":
        polygons = [(path, coordinates)]
    elif not isinstance(coordinates, list) or not coordinates:
        raise ValidationFailed({path: "must be a list of polygons, each a list of rings"})
    else:
        polygons = [(f"{path}.{i}", polygon) for i, polygon in enumerate(coordinates)]
    clean: list[list[list[list[float]]]] = []
    for polygon_path, polygon in polygons:
        clean.append(_polygon(polygon, polygon_path, problems))
    problems.raise_if_any()
    positions = sum(len(ring) for polygon in clean for ring in polygon)
    if positions > MAX_POSITIONS:
        raise ValidationFailed(
            {
                path: f"has {positions:,} positions, more than {MAX_POSITIONS:,}; simplify it first "
                "(QGIS: Vector > Geometry Tools > Simplify, or mapshaper)"
            }
        )
    _check_not_swapped(clean, path)
    stored: dict[str, Any] = (
        {"type": "Polygon", "coordinates": clean[0]}
        if kind == "Polygon"
        else {"type": "MultiPolygon", "coordinates": clean}
    )
    built = shape(stored)
    _check_valid(built, prefix)
    min_lon, min_lat, max_lon, max_lat = built.bounds
    return Boundary(stored, (min_lon, min_lat, max_lon, max_lat), positions, float(built.area))


def _polygon(value: Any, path: str, problems: _Problems) -> list[list[list[float]]]:
    if not isinstance(value, list) or not value:
        problems.add(path, "must be a list of rings: the outer boundary first, then any holes")
        return []
    return [_ring(ring, f"{path}.{i}", problems) for i, ring in enumerate(value)]


def _ring(value: Any, path: str, problems: _Problems) -> list[list[float]]:
    if not isinstance(value, list):
        problems.add(path, "must be a list of [longitude, latitude] positions")
        return []
    ring = [p for p in (_position(p, f"{path}.{i}", problems) for i, p in enumerate(value)) if p]
    if len(ring) != len(value):
        return ring
    if len(ring) < 4:
        problems.add(
            path,
            f"has {len(ring)} positions; a ring needs at least 4 "
            "(3 corners, then the first repeated at the end)",
        )
    elif ring[0] != ring[-1]:
        first = f"[{_number(ring[0][0])}, {_number(ring[0][1])}]"
        problems.add(path, f"is not closed: its last position must repeat the first, {first}")
    return ring


def _position(value: Any, path: str, problems: _Problems) -> list[float] | None:
    if (
        not isinstance(value, list)
        or len(value) not in (2, 3)
        or not all(_is_number(n) and math.isfinite(n) for n in value)
    ):
        problems.add(path, "must be a [longitude, latitude] pair of numbers")
        return None
    lon, lat = float(value[0]), float(value[1])
    if abs(lon) > 1000 or abs(lat) > 1000:
        problems.add(
            path,
            f"[{_number(lon)}, {_number(lat)}] looks like metres (e.g. British National Grid, "
            "EPSG:27700); export the boundary in WGS84 longitude/latitude (EPSG:4326)",
        )
        return None
    if not -90 <= lat <= 90:
        swapped = " (GeoJSON puts longitude first: are these swapped?)" if abs(lon) <= 90 else ""
        problems.add(path, f"latitude {_number(lat)} is outside -90 to 90{swapped}")
        return None
    if not -180 <= lon <= 180:
        problems.add(path, f"longitude {_number(lon)} is outside -180 to 180")
        return None
    return [lon, lat]  # any altitude is dropped: areas are flat


def _in_uk(lon: float, lat: float) -> bool:
    return UK_LON[0] <= lon <= UK_LON[1] and UK_LAT[0] <= lat <= UK_LAT[1]


def _check_not_swapped(polygons: list[list[list[list[float]]]], path: str) -> None:
    points = [p for polygon in polygons for ring in polygon for p in ring]
    if not points or any(_in_uk(lon, lat) for lon, lat in points):
        return
    if all(_in_uk(lat, lon) for lon, lat in points):
        lon, lat = points[0]
        raise ValidationFailed(
            {
                path: f"the positions look swapped: [{_number(lon)}, {_number(lat)}] reads as "
                f"longitude {_number(lon)}, latitude {_number(lat)}, far from the UK; GeoJSON "
                f"puts longitude first, e.g. [{_number(lat)}, {_number(lon)}]"
            }
        )


_EXPLAINED = re.compile(r"^(?P<reason>[^\[]+)\[(?P<x>\S+) (?P<y>\S+)\]$")
_PLAIN = {
    "Self-intersection": "the boundary crosses itself",
    "Ring Self-intersection": "a ring touches itself",
    "Hole lies outside shell": "a hole lies outside its outer ring",
    "Nested holes": "one hole lies inside another",
    "Interior is disconnected": "the holes cut the area into pieces",
    "Nested shells": "one polygon lies inside another",
    "Duplicate Rings": "a ring is repeated",
    "Too few points in geometry component": "a ring has too few distinct points",
    "Invalid Coordinate": "a position is not a number",
}


def _check_valid(geometry: BaseGeometry, prefix: str) -> None:
    if geometry.is_valid and geometry.area > 0:
        return
    explained = explain_validity(geometry)
    match = _EXPLAINED.match(explained)
    if match is None:
        reason = _PLAIN.get(explained.strip(), explained.strip() or "the area is empty")
        raise ValidationFailed({prefix: f"{reason}; {FIX_TOOL}"})
    reason = _PLAIN.get(match["reason"].strip(), match["reason"].strip().lower())
    if geometry.geom_type == "MultiPolygon" and match["reason"] == "Self-intersection":
        reason += " or two of its polygons overlap"
    where = f"near lon {_number(float(match['x']))}, lat {_number(float(match['y']))}"
    raise ValidationFailed({prefix: f"{reason} {where}; {FIX_TOOL}"})


def parse_point(lat: Any, lon: Any) -> tuple[float, float]:
    """A point given as text or numbers (query strings, forms); ValidationFailed per field."""
    problems: dict[str, str] = {}
    values: dict[str, float] = {}
    for name, raw, limit, example in (("lat", lat, 90, "53.96"), ("lon", lon, 180, "-1.08")):
        label = "latitude" if name == "lat" else "longitude"
        try:
            value = float(str(raw).strip()) if raw is not None and str(raw).strip() else None
        except ValueError:
            value = None
            problems[name] = f"give the {label} as a number, like {example}"
            continue
        if value is None:
            problems[name] = f"give the {label}, like {example}"
        elif not math.isfinite(value) or not -limit <= value <= limit:
            problems[name] = f"{label} must be between -{limit} and {limit}"
        else:
            values[name] = value
    if problems:
        raise ValidationFailed(problems)
    return values["lat"], values["lon"]


def covers(geometry: dict[str, Any], lat: float, lon: float) -> bool:
    """Whether the point is inside the boundary or on its edge."""
    return bool(shape(geometry).covers(Point(lon, lat)))


K = TypeVar("K")


class PointIndex(Generic[K]):
    """Which of many areas contain a point, most specific first: deepest in the hierarchy,
    then smallest. Built once (an R-tree over the boundaries) and asked many times."""

    def __init__(self, regions: Sequence[tuple[K, int, dict[str, Any]]]) -> None:
        self._keys = [key for key, _, _ in regions]
        self._geometries = [shape(geometry) for _, _, geometry in regions]
        self._rank = [
            (-depth, float(g.area))
            for (_, depth, _), g in zip(regions, self._geometries, strict=True)
        ]
        shapely.prepare(self._geometries)
        self._tree = shapely.STRtree(self._geometries)

    def __len__(self) -> int:
        return len(self._keys)

    def containing(self, lat: float, lon: float) -> list[K]:
        if not self._keys:
            return []
        hits = self._tree.query(Point(lon, lat), predicate="covered_by")
        ordered = sorted((int(i) for i in hits), key=lambda i: (self._rank[i], i))
        return [self._keys[i] for i in ordered]


def outline(geometry: dict[str, Any], max_positions: int = 2000) -> list[list[tuple[float, float]]]:
    """The rings (outer and holes) as (lon, lat) lists, simplified for drawing when large."""
    built = shape(geometry)
    total = int(shapely.get_num_coordinates(built))
    if total > max_positions:
        min_lon, min_lat, max_lon, max_lat = built.bounds
        span = max(max_lon - min_lon, max_lat - min_lat)
        tolerance, simpler = span / 1000, built
        # Each pass doubles the tolerance: a few passes reach any size a drawing needs.
        while total > max_positions and tolerance < span:
            simpler = built.simplify(tolerance, preserve_topology=True)
            total = int(shapely.get_num_coordinates(simpler))
            tolerance *= 2
        built = simpler
    polygons = list(getattr(built, "geoms", [built]))
    rings: list[list[tuple[float, float]]] = []
    for polygon in polygons:
        for ring in (polygon.exterior, *polygon.interiors):
            rings.append([(float(x), float(y)) for x, y, *_ in ring.coords])
    return rings
