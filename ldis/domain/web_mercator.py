"""Web Mercator (EPSG:3857) in "world pixels": the projection every slippy-map tile server
uses, so a map drawn in it lines up with optional tiles, and without tiles keeps a UK
area's shape. At zoom z the whole world is 256 * 2**z pixels square, x east, y south."""

from __future__ import annotations

import math
from dataclasses import dataclass

TILE = 256
MAX_LAT = 85.05112878  # where Web Mercator squares the world; nothing in the UK is near it
MAX_ZOOM = 18


def project(lat: float, lon: float, zoom: int) -> tuple[float, float]:
    """(x, y) of a WGS84 position in world pixels at `zoom`."""
    size = TILE * (1 << zoom)
    lat = max(-MAX_LAT, min(MAX_LAT, lat))
    x = (lon + 180.0) / 360.0 * size
    sin = math.sin(math.radians(lat))
    y = (0.5 - math.log((1 + sin) / (1 - sin)) / (4 * math.pi)) * size
    return x, y


def metres_per_pixel(lat: float, zoom: int) -> float:
    """Ground distance of one world pixel at `lat` (the scale grows away from the equator)."""
    return 40_075_016.686 * math.cos(math.radians(lat)) / (TILE * (1 << zoom))


@dataclass(frozen=True)
class Frame:
    """The part of the world a map shows: a zoom and a box in its world pixels."""

    zoom: int
    left: float
    top: float
    width: float
    height: float

    def place(self, lat: float, lon: float) -> tuple[float, float]:
        """(x, y) within the frame, in pixels from its top-left corner."""
        x, y = project(lat, lon, self.zoom)
        return x - self.left, y - self.top

    def tiles(self) -> list[tuple[int, int, int]]:
        """(zoom, x, y) of every tile that covers the frame, row by row (x not wrapped round
        the antimeridian: take it modulo 2**zoom for the tile's address)."""
        first_x, last_x = int(self.left // TILE), int((self.left + self.width) // TILE)
        first_y, last_y = int(self.top // TILE), int((self.top + self.height) // TILE)
        count = 1 << self.zoom
        return [
            (self.zoom, x, y)
            for y in range(max(first_y, 0), min(last_y, count - 1) + 1)
            for x in range(first_x, last_x + 1)
        ]


def fit(
    min_lat: float,
    min_lon: float,
    max_lat: float,
    max_lon: float,
    *,
    width: int = 640,
    height: int = 560,
    pad: int = 16,
) -> Frame:
    """The deepest zoom at which the box fits in width x height pixels with `pad` around
    it, and the frame centred on the box at that zoom."""
    zoom = 0
    for candidate in range(MAX_ZOOM, -1, -1):
        left, bottom = project(min_lat, min_lon, candidate)
        right, top = project(max_lat, max_lon, candidate)
        if right - left <= width - 2 * pad and bottom - top <= height - 2 * pad:
            zoom = candidate
            break
    left, bottom = project(min_lat, min_lon, zoom)
    right, top = project(max_lat, max_lon, zoom)
    centre_x, centre_y = (left + right) / 2, (top + bottom) / 2
    return Frame(zoom, centre_x - width / 2, centre_y - height / 2, width, height)
