"""Web Mercator against the slippy-map formula every tile server uses, the frame that fits
a box, and the shading steps of the board's map."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ldis.domain.web_mercator import TILE, fit, metres_per_pixel, project
from ldis.web.map_drawing import SHADES, shade, shade_steps


def osm_tile(lat: float, lon: float, zoom: int) -> tuple[int, int]:
    """The OpenStreetMap wiki's formula for the tile holding a position."""
    n = 2**zoom
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return x, y


@given(
    lat=st.floats(49.8, 60.9),  # the UK
    lon=st.floats(-8.7, 1.8),
    zoom=st.integers(0, 18),
)
def test_projection_puts_every_position_in_the_tile_servers_tile(
    lat: float, lon: float, zoom: int
) -> None:
    x, y = project(lat, lon, zoom)
    assert (int(x // TILE), int(y // TILE)) == osm_tile(lat, lon, zoom)


def test_known_places() -> None:
    # Greenwich lies on the prime meridian: the middle of the world's width.
    x, _ = project(51.4779, 0.0, 1)
    assert x == pytest.approx(256.0)
    assert project(0.0, 0.0, 0) == pytest.approx((128.0, 128.0))
    # About 2.4 m a pixel at zoom 16 on the equator, half that at 60 degrees north.
    assert metres_per_pixel(0.0, 16) == pytest.approx(2.3887, rel=1e-3)
    assert metres_per_pixel(60.0, 16) == pytest.approx(2.3887 / 2, rel=1e-3)


def test_fit_takes_the_deepest_zoom_that_holds_the_box_centred() -> None:
    york = (53.88, -1.25, 54.05, -0.9)  # min lat, min lon, max lat, max lon
    frame = fit(*york, width=640, height=560, pad=16)
    left, bottom = frame.place(york[0], york[1])
    right, top = frame.place(york[2], york[3])
    assert left >= 16 and right <= 640 - 16 and top >= 16 and bottom <= 560 - 16
    assert (left + right) / 2 == pytest.approx(320) and (top + bottom) / 2 == pytest.approx(280)
    deeper = fit(*york, width=640, height=560, pad=16).zoom + 1
    l2, b2 = project(york[0], york[1], deeper)
    r2, t2 = project(york[2], york[3], deeper)
    assert r2 - l2 > 640 - 32 or b2 - t2 > 560 - 32  # one zoom deeper would not fit
    # The tiles cover the frame exactly: the first holds its top-left corner.
    zoom, column, row = frame.tiles()[0]
    assert column * TILE <= frame.left < (column + 1) * TILE
    assert row * TILE <= frame.top < (row + 1) * TILE and zoom == frame.zoom


def test_a_single_point_still_gets_a_frame() -> None:
    frame = fit(53.96, -1.08, 53.96, -1.08)
    assert frame.zoom == 18 and frame.place(53.96, -1.08) == pytest.approx((320, 280))


def test_shading_rises_with_the_count_and_the_legend_names_every_step() -> None:
    assert shade(0, 10) == SHADES[0] and shade(10, 10) == SHADES[4]
    fills = [shade(n, 10) for n in range(1, 11)]
    assert [SHADES.index(f) for f in fills] == sorted(SHADES.index(f) for f in fills)
    legend = shade_steps(10)
    assert legend[0] == (SHADES[0], "No reports") and legend[-1][1].endswith("to 10 reports")
    assert {colour for colour, _ in legend[1:]} == set(fills)
    assert shade_steps(1) == [(SHADES[0], "No reports"), (SHADES[4], "1 report")]
    assert shade_steps(0) == [(SHADES[0], "No reports")]
