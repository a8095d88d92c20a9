"""Small server-side SVG drawings for the panel's pages: a daily-count timeline and a map of
plain points. No scripts, no tiles, no network: each function returns finished markup (any
text escaped), with a <title> for screen readers; the pages put a table of the same numbers
beneath each drawing."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

from markupsafe import Markup, escape

METRES_PER_DEGREE = 111_320.0
INK, MUTED, BAR, LINE, POINT = "#0b0c0c", "#505a5f", "#1d70b8", "#d4351c", "#d4351c"


def _n(value: float) -> str:
    """A coordinate with no more digits than a drawing needs."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _open(width: int, height: int, title: str, label_id: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-labelledby="{escape(label_id)}" '
        f'preserveAspectRatio="xMidYMid meet" font-family="Arial, Helvetica, sans-serif">'
        f'<title id="{escape(label_id)}">{escape(title)}</title>'
    )


def timeline_svg(
    days: list[tuple[date, int]],
    *,
    expected: float | None = None,
    title: str = "Reports per day",
    label_id: str = "timeline-title",
    width: int = 640,
    height: int = 220,
) -> Markup:
    """Bars of daily counts, and a dashed line at the expected daily count when given."""
    left, right, top, bottom = 36, 10, 12, 30
    inner_w, inner_h = width - left - right, height - top - bottom
    peak = max([count for _, count in days] + [expected or 0, 1])

    def y_of(value: float) -> float:
        return top + inner_h - (value / peak) * inner_h

    parts = [
        _open(width, height, title, label_id),
        f'<line x1="{left}" y1="{top + inner_h}" x2="{width - right}" y2="{top + inner_h}" '
        f'stroke="{INK}" stroke-width="1"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + inner_h}" '
        f'stroke="{INK}" stroke-width="1"/>',
        f'<text x="{left - 4}" y="{top + 4}" font-size="11" text-anchor="end" '
        f'fill="{MUTED}">{_n(peak)}</text>',
        f'<text x="{left - 4}" y="{top + inner_h}" font-size="11" text-anchor="end" '
        f'fill="{MUTED}">0</text>',
    ]
    if days:
        slot = inner_w / len(days)
        gap = min(2.0, slot * 0.2)
        for index, (day, count) in enumerate(days):
            x = left + index * slot + gap / 2
            y = y_of(count)
            parts.append(
                f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(max(slot - gap, 0.5))}" '
                f'height="{_n(top + inner_h - y)}" fill="{BAR}">'
                f"<title>{escape(day.isoformat())}: {count}</title></rect>"
            )
        for day, anchor, x in (
            (days[0][0], "start", left),
            (days[-1][0], "end", width - right),
        ):
            parts.append(
                f'<text x="{x}" y="{height - 10}" font-size="11" text-anchor="{anchor}" '
                f'fill="{MUTED}">{escape(day.strftime("%-d %b %Y"))}</text>'
            )
    if expected is not None and math.isfinite(expected) and expected >= 0:
        line_y = _n(y_of(expected))
        parts.append(
            f'<line x1="{left}" y1="{line_y}" x2="{width - right}" y2="{line_y}" stroke="{LINE}" '
            f'stroke-width="2" stroke-dasharray="6 4"><title>Expected: {_n(expected)} a day'
            f"</title></line>"
        )
    return _finish(parts)


@dataclass(frozen=True)
class MapPoint:
    lat: float
    lon: float
    label: str = ""


def map_svg(
    points: list[MapPoint],
    *,
    centre: tuple[float, float] | None = None,
    radius_m: float | None = None,
    title: str = "Map of reports",
    label_id: str = "map-title",
    width: int = 480,
    height: int = 360,
) -> Markup:
    """Points on a plain equirectangular projection fitted to their bounding box (and the
    signal's circle, when given), with padding; no background map."""
    pad = 24
    circle = centre is not None and radius_m is not None and radius_m > 0
    lats = [p.lat for p in points] + ([centre[0]] if centre and circle else [])
    lons = [p.lon for p in points] + ([centre[1]] if centre and circle else [])
    parts = [
        _open(width, height, title, label_id),
        f'<rect x="0.5" y="0.5" width="{width - 1}" height="{height - 1}" fill="#f3f2f1" '
        f'stroke="#b1b4b6"/>',
    ]
    if not lats:
        return _finish(parts)
    mid_lat = (min(lats) + max(lats)) / 2
    squash = max(math.cos(math.radians(mid_lat)), 0.01)  # degrees of longitude are shorter
    extra_deg = (radius_m or 0) / METRES_PER_DEGREE if circle else 0.0
    # Fit in "latitude degrees" on both axes, so a circle stays round.
    xs = [lon * squash for lon in lons]
    ys = lats
    min_x, max_x = min(xs) - extra_deg, max(xs) + extra_deg
    min_y, max_y = min(ys) - extra_deg, max(ys) + extra_deg
    span = 0.002  # about 200 m: one point alone still gets a sensible frame
    if max_x - min_x < span:
        min_x, max_x = (min_x + max_x - span) / 2, (min_x + max_x + span) / 2
    if max_y - min_y < span:
        min_y, max_y = (min_y + max_y - span) / 2, (min_y + max_y + span) / 2
    scale = min((width - 2 * pad) / (max_x - min_x), (height - 2 * pad) / (max_y - min_y))
    off_x = (width - (max_x - min_x) * scale) / 2
    off_y = (height - (max_y - min_y) * scale) / 2

    def project(lat: float, lon: float) -> tuple[float, float]:
        return off_x + (lon * squash - min_x) * scale, off_y + (max_y - lat) * scale

    if centre is not None and circle and radius_m is not None:
        cx, cy = project(*centre)
        parts.append(
            f'<circle cx="{_n(cx)}" cy="{_n(cy)}" r="{_n(radius_m / METRES_PER_DEGREE * scale)}" '
            f'fill="none" stroke="{INK}" stroke-width="1.5" stroke-dasharray="5 4">'
            f"<title>Cluster area: {_n(radius_m)} m around {centre[0]:.3f}, {centre[1]:.3f}"
            f"</title></circle>"
        )
    for point in points:
        x, y = project(point.lat, point.lon)
        label = escape(point.label or f"{point.lat:.3f}, {point.lon:.3f}")
        parts.append(
            f'<circle cx="{_n(x)}" cy="{_n(y)}" r="6" fill="{POINT}" fill-opacity="0.8" '
            f'stroke="#fff" stroke-width="1.5"><title>{label}</title></circle>'
        )
    # A scale bar, so distances can be read without a background map.
    metres = _nice_metres((width - 2 * pad) / 4 / scale * METRES_PER_DEGREE)
    bar = metres / METRES_PER_DEGREE * scale
    y = height - 10
    parts.append(
        f'<line x1="{pad}" y1="{y}" x2="{_n(pad + bar)}" y2="{y}" stroke="{INK}" '
        f'stroke-width="2"/><text x="{pad}" y="{y - 4}" font-size="11" fill="{INK}">'
        f"{_distance(metres)}</text>"
    )
    return _finish(parts)


def _finish(parts: list[str]) -> Markup:
    parts.append("</svg>")
    # Safe: every piece of text above went through `escape`; numbers are formatted here.
    return Markup("".join(parts))  # noqa: S704


def _nice_metres(value: float) -> float:
    """The largest 1, 2 or 5 times a power of ten metres not over `value`."""
    if value <= 1:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (5, 2, 1):
        if step * power <= value:
            return float(step * power)
    return float(power)


def _distance(metres: float) -> str:
    return f"{_n(metres / 1000)} km" if metres >= 1000 else f"{_n(metres)} m"
