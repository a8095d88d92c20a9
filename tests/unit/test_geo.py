"""Boundaries: what is accepted, and that every refusal names the place and the fix."""

from __future__ import annotations

from typing import Any

import pytest

from ldis.domain.errors import ValidationFailed
from ldis.domain.geo import (
    MAX_POSITIONS,
    PointIndex,
    covers,
    outline,
    parse_boundary,
    parse_point,
)

# A box around central York, [lon, lat] as GeoJSON has it.
YORK = [[-1.10, 53.95], [-1.06, 53.95], [-1.06, 53.97], [-1.10, 53.97], [-1.10, 53.95]]
HOLE = [[-1.09, 53.955], [-1.07, 53.955], [-1.07, 53.965], [-1.09, 53.965], [-1.09, 53.955]]
SELBY = [[-1.08, 53.77], [-1.05, 53.77], [-1.05, 53.79], [-1.08, 53.79], [-1.08, 53.77]]


def polygon(*rings: list[list[float]]) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": list(rings)}


def refusal(value: Any) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as caught:
        parse_boundary(value)
    return caught.value.fields


def test_a_plain_polygon_is_accepted_with_its_box() -> None:
    boundary = parse_boundary(polygon(YORK))
    assert boundary.geometry == polygon(YORK)
    assert boundary.bbox == pytest.approx((-1.10, 53.95, -1.06, 53.97))
    assert boundary.positions == 5
    assert boundary.size == pytest.approx(0.04 * 0.02)


def test_a_polygon_with_a_hole_keeps_the_hole() -> None:
    boundary = parse_boundary(polygon(YORK, HOLE))
    assert boundary.geometry["coordinates"][1] == HOLE
    assert boundary.size == pytest.approx(0.04 * 0.02 - 0.02 * 0.01)
    assert not covers(boundary.geometry, 53.96, -1.08)  # in the hole
    assert covers(boundary.geometry, 53.952, -1.08)  # between hole and edge


def test_a_multipolygon_covers_both_parts() -> None:
    boundary = parse_boundary({"type": "MultiPolygon", "coordinates": [[YORK], [SELBY]]})
    assert boundary.bbox == pytest.approx((-1.10, 53.77, -1.05, 53.97))
    assert covers(boundary.geometry, 53.96, -1.08)
    assert covers(boundary.geometry, 53.78, -1.06)
    assert not covers(boundary.geometry, 53.88, -1.08)  # between the two


def test_altitude_is_dropped() -> None:
    ring = [[lon, lat, 12.5] for lon, lat in YORK]
    assert parse_boundary(polygon(ring)).geometry == polygon(YORK)


def test_a_bow_tie_is_refused_naming_where_it_crosses() -> None:
    bow_tie = [[-1.10, 53.95], [-1.06, 53.97], [-1.06, 53.95], [-1.10, 53.97], [-1.10, 53.95]]
    fields = refusal(polygon(bow_tie))
    assert list(fields) == ["boundary"]
    assert fields["boundary"].startswith("the boundary crosses itself")
    assert "near lon -1.08, lat 53.96" in fields["boundary"]
    assert "Fix Geometries" in fields["boundary"]


def test_a_hole_outside_its_ring_is_refused() -> None:
    outside = [[-1.0, 53.0], [-0.9, 53.0], [-0.9, 53.1], [-1.0, 53.0]]
    assert (
        "a hole lies outside its outer ring near lon -1, lat 53"
        in refusal(polygon(YORK, outside))["boundary"]
    )


def test_an_unclosed_ring_is_refused_quoting_the_first_position() -> None:
    fields = refusal(polygon([*YORK[:-1], [-1.10, 53.96]]))
    assert fields == {
        "boundary.coordinates.0": "is not closed: its last position must repeat the first, "
        "[-1.1, 53.95]"
    }


def test_a_ring_with_too_few_positions_is_refused() -> None:
    fields = refusal(polygon([[-1.10, 53.95], [-1.06, 53.95], [-1.10, 53.95]]))
    assert fields["boundary.coordinates.0"].startswith("has 3 positions; a ring needs at least 4")


@pytest.mark.parametrize(
    ("position", "message"),
    [
        ([-181.0, 53.95], "longitude -181 is outside -180 to 180"),
        ([-1.1, 91.0], "latitude 91 is outside -90 to 90"),
        ([-1.1], "must be a [longitude, latitude] pair of numbers"),
        (["-1.1", 53.95], "must be a [longitude, latitude] pair of numbers"),
        ([True, 53.95], "must be a [longitude, latitude] pair of numbers"),
        ([float("nan"), 53.95], "must be a [longitude, latitude] pair of numbers"),
        ([460000.0, 452000.0], "looks like metres"),
    ],
)
def test_a_bad_position_is_named_by_its_path(position: list[Any], message: str) -> None:
    ring = [*YORK[:3], position, YORK[4]]
    fields = refusal(polygon(ring))
    assert message in fields["boundary.coordinates.0.3"]


def test_every_bad_position_is_reported_at_once() -> None:
    ring = [YORK[0], [200.0, 53.0], YORK[2], [-1.0, 95.0], YORK[4]]
    assert set(refusal(polygon(ring))) == {"boundary.coordinates.0.1", "boundary.coordinates.0.3"}


def test_latitude_out_of_range_hints_at_swapped_order() -> None:
    # Somewhere with a longitude beyond 90: swapped, its "latitude" is out of range.
    ring = [[33.4, -111.9], [33.5, -111.9], [33.5, -111.8], [33.4, -111.9]]
    assert "are these swapped?" in refusal(polygon(ring))["boundary.coordinates.0.0"]


def test_uk_positions_written_latitude_first_are_refused_as_swapped() -> None:
    swapped = [[lat, lon] for lon, lat in YORK]
    message = refusal(polygon(swapped))["boundary.coordinates"]
    assert "look swapped" in message and "[-1.1, 53.95]" in message


def test_a_boundary_far_from_the_uk_is_not_mistaken_for_swapped() -> None:
    tempe = [[-111.95, 33.40], [-111.90, 33.40], [-111.90, 33.45], [-111.95, 33.40]]
    assert parse_boundary(polygon(tempe)).bbox[0] == pytest.approx(-111.95)


@pytest.mark.parametrize("kind", ["LineString", "Point", "GeometryCollection", "Polygonn"])
def test_a_geometry_that_is_not_an_area_is_refused(kind: str) -> None:
    fields = refusal({"type": kind, "coordinates": [YORK]})
    assert fields == {
        "boundary.type": f"must be Polygon or MultiPolygon (an area, not a line or point); got {kind}"
    }


def test_a_feature_is_unwrapped_and_errors_point_inside_it() -> None:
    feature = {"type": "Feature", "properties": {"name": "York"}, "geometry": polygon(YORK)}
    assert parse_boundary(feature).geometry == polygon(YORK)
    feature["geometry"] = polygon(YORK[:3])
    assert list(refusal(feature)) == ["boundary.geometry.coordinates.0"]
    feature["geometry"] = None
    assert "is missing" in refusal(feature)["boundary.geometry"]


def test_a_feature_collection_of_one_is_unwrapped() -> None:
    one = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "properties": {}, "geometry": polygon(YORK)}],
    }
    assert parse_boundary(one).geometry == polygon(YORK)
    two = {**one, "features": one["features"] * 2}
    assert "has 2 features; give exactly one" in refusal(two)["boundary.features"]
    assert "load-boundaries" in refusal(two)["boundary.features"]


@pytest.mark.parametrize("value", [[], "Polygon", None, 5])
def test_something_that_is_not_an_object_is_refused(value: Any) -> None:
    assert "must be a GeoJSON object" in refusal(value)["boundary"]


def test_a_multipolygon_with_no_polygons_is_refused() -> None:
    fields = refusal({"type": "MultiPolygon", "coordinates": []})
    assert "must be a list of polygons" in fields["boundary.coordinates"]


def test_a_huge_boundary_is_refused_with_how_to_simplify() -> None:
    steps = MAX_POSITIONS // 4 + 1
    ring = (
        [[-1.1 + 0.04 * i / steps, 53.95] for i in range(steps)]
        + [[-1.06, 53.95 + 0.02 * i / steps] for i in range(steps)]
        + [[-1.06 - 0.04 * i / steps, 53.97] for i in range(steps)]
        + [[-1.10, 53.97 - 0.02 * i / steps] for i in range(steps)]
        + [[-1.1, 53.95]]
    )
    message = refusal(polygon(ring))["boundary.coordinates"]
    assert "simplify it first" in message


@pytest.mark.parametrize(
    ("lat", "lon", "inside"),
    [(53.96, -1.08, True), (53.98, -1.08, False), (53.95, -1.08, True), (53.95, -1.10, True)],
    ids=["inside", "outside", "on-edge", "on-corner"],
)
def test_point_in_polygon(lat: float, lon: float, inside: bool) -> None:
    assert covers(polygon(YORK), lat, lon) is inside


def test_the_index_gives_the_deepest_then_smallest_area_first() -> None:
    county = [[-1.5, 53.5], [-0.5, 53.5], [-0.5, 54.5], [-1.5, 54.5], [-1.5, 53.5]]
    index = PointIndex(
        [
            ("NYORKS", 0, polygon(county)),
            ("YORK", 1, polygon(YORK)),
            ("SELBY", 1, polygon(SELBY)),
            ("BIG-DISTRICT", 1, polygon(county)),
        ]
    )
    assert index.containing(53.96, -1.08) == ["YORK", "BIG-DISTRICT", "NYORKS"]
    assert index.containing(53.60, -1.00) == ["BIG-DISTRICT", "NYORKS"]
    assert index.containing(51.5, -0.12) == []
    assert PointIndex([]).containing(53.96, -1.08) == []


def test_parse_point_names_each_bad_field() -> None:
    assert parse_point("53.96", " -1.08 ") == (53.96, -1.08)
    with pytest.raises(ValidationFailed) as caught:
        parse_point("north", None)
    assert caught.value.fields == {
        "lat": "give the latitude as a number, like 53.96",
        "lon": "give the longitude, like -1.08",
    }
    with pytest.raises(ValidationFailed) as caught:
        parse_point("95", "-200")
    assert caught.value.fields == {
        "lat": "latitude must be between -90 and 90",
        "lon": "longitude must be between -180 and 180",
    }


def test_outline_simplifies_large_boundaries_for_drawing() -> None:
    ring = [[-1.1 + 0.04 * i / 3000, 53.95 + 0.0001 * (i % 2)] for i in range(3000)]
    ring += [[-1.06, 53.97], [-1.10, 53.97], ring[0]]
    rings = outline(polygon(ring), max_positions=500)
    assert len(rings) == 1 and 4 <= len(rings[0]) <= 500
    assert outline(polygon(YORK, HOLE)) == [
        [tuple(p) for p in YORK],
        [tuple(p) for p in HOLE],
    ]


def test_overlapping_parts_of_a_multipolygon_are_refused() -> None:
    shifted = [[lon + 0.01, lat] for lon, lat in YORK]
    message = refusal({"type": "MultiPolygon", "coordinates": [[YORK], [shifted]]})["boundary"]
    assert message.startswith("the boundary crosses itself or two of its polygons overlap near")
