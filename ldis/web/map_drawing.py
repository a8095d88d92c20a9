"""The board's map as server-side inline SVG: area boundaries shaded by how many reports
each had, every located report as a dot coloured by its kind (red-list ones ringed red),
cluster signals as dashed red circles of their radius (or a dashed red outline for a
cluster of an area's counts). No scripts, no network: drawn in Web Mercator so optional
tiles (LDIS_MAP_TILE_URL) line up beneath it when configured.

Every shape has a <title> (a tooltip, and what a screen reader reads); the page shows the
same numbers as a table beneath, so nothing is in the picture alone."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from markupsafe import Markup, escape

from ldis.domain.geo import outline
from ldis.domain.web_mercator import Frame, fit, metres_per_pixel
from ldis.services.map_view import MapData

INK = "#0b0c0c"
RED = "#d4351c"
# Shades for 0 reports, then rising counts (GOV.UK blue tints; ink stays readable on all).
SHADES = ("#f3f2f1", "#d2e2f1", "#a5c5e3", "#77a9d5", "#4a8cc7")
KIND_COLOURS = {
    "drug_checking": "#1d70b8",
    "near_miss": "#f47738",
    "callout": "#0b0c0c",
}
OTHER_KIND = "#4c2c92"
WIDTH, HEIGHT = 640, 560


def kind_colour(kind: str) -> str:
    return KIND_COLOURS.get(kind, OTHER_KIND)


def shade(count: int, most: int) -> str:
    """The area's fill: none for 0, else one of four steps of the largest count."""
    if count <= 0 or most <= 0:
        return SHADES[0]
    step = min(4, 1 + (4 * (count - 1)) // most) if most > 1 else 4
    return SHADES[step]


def shade_steps(most: int) -> list[tuple[str, str]]:
    """The legend: (colour, "a to b reports") for each step used with this largest count."""
    if most <= 0:
        return [(SHADES[0], "No reports")]
    steps: dict[str, list[int]] = {}
    for count in range(1, most + 1):
        steps.setdefault(shade(count, most), []).append(count)
    legend = [(SHADES[0], "No reports")]
    for colour, counts in steps.items():
        low, high = counts[0], counts[-1]
        words = f"{low}" if low == high else f"{low} to {high}"
        legend.append((colour, f"{words} report{'s' if high != 1 else ''}"))
    return legend


@dataclass(frozen=True)
class Tiles:
    url: str
    attribution: str

    @property
    def origin(self) -> str:
        parts = urlsplit(self.url.replace("{z}", "0").replace("{x}", "0").replace("{y}", "0"))
        return f"{parts.scheme}://{parts.netloc}"


def _n(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


Rings = list[list[tuple[float, float]]]


def _frame(data: MapData, shapes: dict[str, Rings]) -> Frame | None:
    lats: list[float] = []
    lons: list[float] = []
    for rings in shapes.values():
        for ring in rings:
            lons += [lon for lon, _ in ring]
            lats += [lat for _, lat in ring]
    for point in data.points:
        lats.append(point.lat)
        lons.append(point.lon)
    for cluster in data.clusters:
        if cluster.centre:
            lats.append(cluster.centre[0])
            lons.append(cluster.centre[1])
    if not lats:
        return None
    return fit(min(lats), min(lons), max(lats), max(lons), width=WIDTH, height=HEIGHT)


def draw_map(data: MapData, *, title: str, tiles: Tiles | None = None) -> Markup | None:
    """The picture, or None when there is nothing to place (no boundary, no location)."""
    shapes = {a.code: outline(a.boundary) for a in data.areas if a.boundary}
    frame = _frame(data, shapes)
    if frame is None:
        return None
    most = max((a.total for a in data.areas), default=0)
    parts: list[str] = []
    if tiles is not None:
        for zoom, column, row in frame.tiles():
            address = column % (1 << zoom)
            href = tiles.url.replace("{z}", str(zoom)).replace("{x}", str(address))
            href = href.replace("{y}", str(row))
            parts.append(
                f'<image href="{escape(href)}" x="{_n(column * 256 - frame.left)}" '
                f'y="{_n(row * 256 - frame.top)}" width="256" height="256" opacity="0.7"/>'
            )
    # Larger areas first, so an area inside another is drawn on top of it.
    for area in sorted(data.areas, key=lambda a: -_extent(shapes.get(a.code))):
        if area.code not in shapes:
            continue
        outline_d = _path(frame, shapes[area.code])
        red = f", {area.red_list} red-list" if area.red_list else ""
        label = (
            f"{area.name} ({area.code}): {area.total} report{'s' if area.total != 1 else ''}{red}"
        )
        fill = "none" if tiles is not None and area.total == 0 else shade(area.total, most)
        opacity = ' fill-opacity="0.75"' if tiles is not None else ""
        parts.append(
            f'<path d="{outline_d}" fill="{fill}"{opacity} fill-rule="evenodd" stroke="{INK}" '
            f'stroke-width="1.2" stroke-linejoin="round"><title>{escape(label)}</title></path>'
        )
    for cluster in data.clusters:
        label = escape(f"Cluster signal {cluster.signal_id}: {cluster.summary}")
        if cluster.centre is not None:
            x, y = frame.place(*cluster.centre)
            metres = cluster.radius_m or 500.0
            radius = max(metres / metres_per_pixel(cluster.centre[0], frame.zoom), 8.0)
            parts.append(
                f'<circle cx="{_n(x)}" cy="{_n(y)}" r="{_n(radius)}" fill="{RED}" '
                f'fill-opacity="0.08" stroke="{RED}" stroke-width="2.5" stroke-dasharray="6 4">'
                f"<title>{label}</title></circle>"
            )
        elif cluster.area_code in shapes:
            parts.append(
                f'<path d="{_path(frame, shapes[cluster.area_code])}" fill="none" stroke="{RED}" '
                f'stroke-width="3" stroke-dasharray="6 4"><title>{label}</title></path>'
            )
    for point in data.points:
        x, y = frame.place(point.lat, point.lon)
        if not (0 <= x <= frame.width and 0 <= y <= frame.height):
            continue
        ring = (
            f' stroke="{RED}" stroke-width="3"'
            if point.red_list
            else ' stroke="#fff" stroke-width="1.5"'
        )
        words = f"{point.reference}: {point.kind.replace('_', ' ')}"
        words += ", red-list substance" if point.red_list else ""
        parts.append(
            f'<circle cx="{_n(x)}" cy="{_n(y)}" r="5.5" fill="{kind_colour(point.kind)}"{ring}>'
            f"<title>{escape(words)}</title></circle>"
        )
    attribution = ""
    if tiles is not None and tiles.attribution:
        attribution = (
            f'<text x="{WIDTH - 4}" y="{HEIGHT - 5}" text-anchor="end" font-size="11" '
            f'fill="{INK}" stroke="#fff" stroke-width="3" paint-order="stroke">'
            f"{escape(tiles.attribution)}</text>"
        )
    description = (
        f"{len(data.points)} located report{'s' if len(data.points) != 1 else ''}, "
        f"{sum(a.total for a in data.areas)} in drawn areas, "
        f"{len(data.clusters)} cluster signal{'s' if len(data.clusters) != 1 else ''}. "
        "The table below the map gives the same numbers."
    )
    # Only numbers and escaped text go in: safe to mark as markup.
    return Markup(  # noqa: S704
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" '
        f'role="img" aria-labelledby="map-title map-desc" preserveAspectRatio="xMidYMid meet" '
        f'font-family="Arial, sans-serif">'
        f'<title id="map-title">{escape(title)}</title><desc id="map-desc">{escape(description)}</desc>'
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#fff"/>'
        + "".join(parts)
        + attribution
        + "</svg>"
    )


def _path(frame: Frame, rings: Rings) -> str:
    pieces = []
    for ring in rings:
        points = " L".join(
            f"{_n(x)},{_n(y)}" for x, y in (frame.place(lat, lon) for lon, lat in ring)
        )
        pieces.append(f"M{points}Z")
    return " ".join(pieces)


def _extent(rings: Rings | None) -> float:
    if not rings:
        return 0.0
    lons = [lon for ring in rings for lon, _ in ring]
    lats = [lat for ring in rings for _, lat in ring]
    return (max(lons) - min(lons)) * (max(lats) - min(lats))
