"""An area's boundary drawn as server-side inline SVG: no scripts, no map tiles, no network.
Longitude is scaled by the cosine of the middle latitude so a UK area keeps its shape."""

from __future__ import annotations

import math
from typing import Any

from markupsafe import Markup, escape

from ldis.domain.geo import outline

INK, FILL = "#0b0c0c", "#cfe3f5"


def _n(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def boundary_svg(
    geometry: dict[str, Any],
    *,
    title: str,
    label_id: str = "boundary-title",
    width: int = 480,
    max_height: int = 480,
    pad: int = 8,
) -> Markup:
    """The outer rings filled and the holes left empty (even-odd), fitted into the box."""
    rings = outline(geometry)
    lons = [lon for ring in rings for lon, _ in ring]
    lats = [lat for ring in rings for _, lat in ring]
    min_lon, max_lon, min_lat, max_lat = min(lons), max(lons), min(lats), max(lats)
    squash = math.cos(math.radians((min_lat + max_lat) / 2))
    span_x = max((max_lon - min_lon) * squash, 1e-9)
    span_y = max(max_lat - min_lat, 1e-9)
    scale = min((width - 2 * pad) / span_x, (max_height - 2 * pad) / span_y)
    height = round(span_y * scale + 2 * pad)
    paths = []
    for ring in rings:
        points = " L".join(
            f"{_n(pad + (lon - min_lon) * squash * scale)},{_n(pad + (max_lat - lat) * scale)}"
            for lon, lat in ring
        )
        paths.append(f"M{points}Z")
    # Only numbers and escaped text go in: safe to mark as markup.
    return Markup(  # noqa: S704
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
        f'role="img" aria-labelledby="{escape(label_id)}" preserveAspectRatio="xMidYMid meet">'
        f'<title id="{escape(label_id)}">{escape(title)}</title>'
        f'<path d="{" ".join(paths)}" fill="{FILL}" fill-rule="evenodd" stroke="{INK}" '
        f'stroke-width="1.5" stroke-linejoin="round" vector-effect="non-scaling-stroke"/>'
        "</svg>"
    )
