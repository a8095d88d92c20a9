"""Small server-side SVG drawings: for the panel's pages a daily-count timeline and a map of
plain points; for the partnership board's dashboard bars, lines and small multiples (below).
No scripts, no tiles, no network: each function returns finished markup (any text escaped),
with a <title> for screen readers; the pages put a table of the same numbers beneath each
drawing."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
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


# Charts for the partnership board's dashboard: bars (stacked or side by side, upright or
# lying down), lines and small multiples. Each has a <title> and a <desc> named by
# aria-labelledby, a legend drawn inside the picture, and every series has its own fill
# pattern (or line dash and marker) as well as its own colour, so nothing is told by colour
# alone. Every mark carries a <title> with its exact number; the pages add a table.

PALETTE = ("#1d70b8", "#00703c", "#f47738", "#4c2c92", "#28a197", "#505a5f", "#d53880", "#5694ca")
HIGHLIGHT = "#d4351c"
GRID = "#dcdcdc"
PATTERNS = ("solid", "diagonal", "dots", "cross", "horizontal", "vertical", "back", "grid")
MARKERS = ("circle", "square", "triangle", "diamond")
DASHES = ("", "7 4", "2 3", "9 3 2 3")
CHAR_W = 6.2  # the width of an average character at font-size 11, for laying out text
FONT = 11
BOLD = ' font-weight="bold"'
Format = Callable[[float], str]


@dataclass(frozen=True)
class Series:
    """One named row of numbers, one per category (None: not known, drawn as nothing).
    `highlight` draws it in red with a heavy outline (e.g. a red-list substance); the name
    itself must say why, so the colour is never the only sign."""

    name: str
    values: tuple[float | None, ...]
    highlight: bool = False


def count_text(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _described_open(width: int, height: float, title: str, desc: str, chart_id: str) -> str:
    cid = escape(chart_id)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {_n(height)}" '
        f'width="100%" role="img" aria-labelledby="{cid}-title {cid}-desc" '
        f'preserveAspectRatio="xMidYMid meet" font-family="Arial, Helvetica, sans-serif">'
        f'<title id="{cid}-title">{escape(title)}</title>'
        f'<desc id="{cid}-desc">{escape(desc)}</desc>'
    )


def _colour(index: int, series: Series) -> str:
    return HIGHLIGHT if series.highlight else PALETTE[index % len(PALETTE)]


def _pattern(index: int) -> str:
    return PATTERNS[index % len(PATTERNS)]


_PATTERN_MARKS = {
    "diagonal": '<path d="M-1,1 l2,-2 M0,6 l6,-6 M5,7 l2,-2" stroke="#fff" stroke-width="1.6"/>',
    "dots": '<circle cx="3" cy="3" r="1.4" fill="#fff"/>',
    "cross": '<path d="M0,3 h6 M3,0 v6" stroke="#fff" stroke-width="1.3"/>',
    "horizontal": '<path d="M0,3 h6" stroke="#fff" stroke-width="1.6"/>',
    "vertical": '<path d="M3,0 v6" stroke="#fff" stroke-width="1.6"/>',
    "back": '<path d="M-1,5 l2,2 M0,0 l6,6 M5,-1 l2,2" stroke="#fff" stroke-width="1.6"/>',
    "grid": '<path d="M0,0 l6,6 M6,0 l-6,6" stroke="#fff" stroke-width="1.1"/>',
}


def _defs(chart_id: str, series: Sequence[Series]) -> str:
    patterns = []
    for index, one in enumerate(series):
        kind = _pattern(index)
        if kind == "solid":
            continue
        patterns.append(
            f'<pattern id="{escape(chart_id)}-p{index}" patternUnits="userSpaceOnUse" '
            f'width="6" height="6"><rect width="6" height="6" fill="{_colour(index, one)}"/>'
            f"{_PATTERN_MARKS[kind]}</pattern>"
        )
    return f"<defs>{''.join(patterns)}</defs>" if patterns else ""


def _fill(chart_id: str, index: int, series: Series) -> str:
    if _pattern(index) == "solid":
        return f'fill="{_colour(index, series)}"'
    outline = f' stroke="{_colour(index, series)}" stroke-width="0.5"'
    return f'fill="url(#{escape(chart_id)}-p{index})"{outline}'


def _heavy(series: Series) -> str:
    return f' stroke="{INK}" stroke-width="1.5"' if series.highlight else ""


def _legend(
    chart_id: str,
    series: Sequence[Series],
    left: float,
    top: float,
    width: float,
    *,
    lines: bool = False,
) -> tuple[list[str], float]:
    """The key, wrapped over as many rows as it needs; returns its markup and height."""
    parts: list[str] = []
    x, y, row_h = left, top, 18
    for index, one in enumerate(series):
        item_w = 30 + len(one.name) * CHAR_W + 16
        if x > left and x + item_w > left + width:
            x, y = left, y + row_h
        if lines:
            parts.append(_line_swatch(index, one, x, y + 6))
        else:
            parts.append(
                f'<rect x="{_n(x)}" y="{_n(y)}" width="14" height="12" '
                f"{_fill(chart_id, index, one)}{_heavy(one)}/>"
            )
        parts.append(
            f'<text x="{_n(x + (26 if lines else 19))}" y="{_n(y + 10)}" font-size="{FONT}" '
            f'fill="{INK}"{BOLD if one.highlight else ""}>'
            f"{escape(one.name)}</text>"
        )
        x += item_w
    return parts, (y - top + row_h) if series else 0.0


def nice_scale(peak: float, ticks: int = 4) -> tuple[float, float]:
    """(top, step): a round step (1, 2 or 5 times a power of ten) and the smallest multiple
    of it at or above `peak`, so the axis reads 0, step, 2 step ... top."""
    if not math.isfinite(peak) or peak <= 0:
        return 1.0, 1.0
    raw = peak / ticks
    power = 10 ** math.floor(math.log10(raw))
    step = next(s * power for s in (1, 2, 2.5, 5, 10) if s * power >= raw)
    if peak >= 1 and step < 1:
        step = 1.0
    return math.ceil(peak / step - 1e-9) * step, step


def _label_every(labels: Sequence[str], room: float) -> int:
    """Label every n-th category so the labels do not run into each other."""
    if not labels:
        return 1
    longest = max(len(label) for label in labels) * CHAR_W + 8
    return max(1, math.ceil(longest * len(labels) / max(room, 1)))


def _fit(text: str, room: float) -> str:
    chars = max(3, int(room / CHAR_W))
    return text if len(text) <= chars else text[: chars - 1] + "…"


def _value_axis(
    top_value: float, step: float, x0: float, x1: float, y0: float, y1: float, fmt: Format
) -> list[str]:
    """Horizontal gridlines with their numbers at the left, from y1 (zero) up to y0."""
    parts = []
    steps = round(top_value / step)
    for i in range(steps + 1):
        value = i * step
        y = y1 - (y1 - y0) * (value / top_value)
        parts.append(
            f'<line x1="{_n(x0)}" y1="{_n(y)}" x2="{_n(x1)}" y2="{_n(y)}" '
            f'stroke="{GRID if i else INK}" stroke-width="1"/>'
            f'<text x="{_n(x0 - 4)}" y="{_n(y + 4)}" font-size="{FONT}" text-anchor="end" '
            f'fill="{MUTED}">{escape(fmt(value))}</text>'
        )
    return parts


def _peak(series: Sequence[Series], count: int, stacked: bool) -> float:
    if stacked:
        sums = [sum(s.values[i] or 0 for s in series) for i in range(count)]
        return max(sums, default=0)
    return max((v or 0 for s in series for v in s.values), default=0)


def bars_svg(
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    desc: str,
    chart_id: str,
    stacked: bool = True,
    fmt: Format = count_text,
    width: int = 720,
    height: int = 300,
) -> Markup:
    """Upright bars, one slot per category: the series stacked (with the total above when
    there is room) or side by side."""
    _check(categories, series)
    left, right, bottom = 48, 12, 34
    legend, legend_h = _legend(chart_id, series, left, 8, width - left - right)
    top = 8 + legend_h + 10
    inner_w, inner_h = width - left - right, height - top - bottom
    top_value, step = nice_scale(_peak(series, len(categories), stacked))
    base = top + inner_h
    parts = [_described_open(width, height, title, desc, chart_id), _defs(chart_id, series)]
    parts += legend
    parts += _value_axis(top_value, step, left, width - right, top, base, fmt)

    def y_of(value: float) -> float:
        return base - inner_h * (value / top_value)

    slot = inner_w / max(len(categories), 1)
    for i, category in enumerate(categories):
        x0 = left + i * slot + slot * 0.15
        bar_w = slot * 0.7
        if stacked:
            running = 0.0
            for index, one in enumerate(series):
                value = one.values[i] or 0
                if value <= 0:
                    continue
                y_low, y_high = y_of(running), y_of(running + value)
                parts.append(
                    f'<rect x="{_n(x0)}" y="{_n(y_high)}" width="{_n(max(bar_w, 0.5))}" '
                    f'height="{_n(y_low - y_high)}" {_fill(chart_id, index, one)}{_heavy(one)}>'
                    f"<title>{escape(category)}, {escape(one.name)}: {escape(fmt(value))}"
                    f"</title></rect>"
                )
                running += value
            if len(series) > 1 and running > 0 and slot >= len(fmt(running)) * CHAR_W + 2:
                parts.append(
                    f'<text x="{_n(x0 + bar_w / 2)}" y="{_n(y_of(running) - 3)}" '
                    f'font-size="{FONT}" text-anchor="middle" fill="{INK}">'
                    f"{escape(fmt(running))}</text>"
                )
        else:
            each = bar_w / max(len(series), 1)
            for index, one in enumerate(series):
                known = one.values[i]
                if known is None or known <= 0:
                    continue
                y = y_of(known)
                parts.append(
                    f'<rect x="{_n(x0 + index * each)}" y="{_n(y)}" '
                    f'width="{_n(max(each - 1, 0.5))}" height="{_n(base - y)}" '
                    f"{_fill(chart_id, index, one)}{_heavy(one)}>"
                    f"<title>{escape(category)}, {escape(one.name)}: {escape(fmt(known))}"
                    f"</title></rect>"
                )
    parts += _category_labels(categories, left, slot, base + 16, inner_w)
    return _finish(parts)


def _category_labels(
    categories: Sequence[str], left: float, slot: float, y: float, room: float
) -> list[str]:
    every = _label_every(categories, room)
    return [
        f'<text x="{_n(left + i * slot + slot / 2)}" y="{_n(y)}" font-size="{FONT}" '
        f'text-anchor="middle" fill="{MUTED}">{escape(category)}</text>'
        for i, category in enumerate(categories)
        if i % every == 0
    ]


def _check(categories: Sequence[str], series: Sequence[Series]) -> None:
    for one in series:
        if len(one.values) != len(categories):
            raise ValueError(
                f"series {one.name!r} has {len(one.values)} values, not {len(categories)}"
            )


def hbars_svg(
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    desc: str,
    chart_id: str,
    stacked: bool = True,
    fmt: Format = count_text,
    max_value: float | None = None,
    width: int = 720,
) -> Markup:
    """Bars lying down, one row per category (its name at the left): the series stacked
    with the total at the end, or one thin bar each with its own number. `max_value` fixes
    the scale (100 for percentages)."""
    _check(categories, series)
    label_w = min(max((len(c) for c in categories), default=4) * CHAR_W + 10, width * 0.42)
    left, right = label_w + 8, 56
    legend, legend_h = _legend(chart_id, series, 8, 8, width - 16)
    top = 8 + legend_h + 8
    row_h = 26.0 if stacked else 15.0 * len(series) + 10
    inner_w = width - left - right
    height = top + row_h * max(len(categories), 1) + 28
    peak = max_value if max_value is not None else _peak(series, len(categories), stacked)
    top_value, step = nice_scale(peak) if max_value is None else (max_value, max_value / 4)
    parts = [_described_open(width, height, title, desc, chart_id), _defs(chart_id, series)]
    parts += legend
    base = top + row_h * len(categories)

    def x_of(value: float) -> float:
        return left + inner_w * (min(value, top_value) / top_value)

    steps = round(top_value / step)
    for i in range(steps + 1):
        x = x_of(i * step)
        parts.append(
            f'<line x1="{_n(x)}" y1="{_n(top)}" x2="{_n(x)}" y2="{_n(base)}" '
            f'stroke="{GRID if i else INK}" stroke-width="1"/>'
            f'<text x="{_n(x)}" y="{_n(base + 16)}" font-size="{FONT}" text-anchor="middle" '
            f'fill="{MUTED}">{escape(fmt(i * step))}</text>'
        )
    for r, category in enumerate(categories):
        y0 = top + r * row_h
        parts.append(
            f'<text x="{_n(left - 6)}" y="{_n(y0 + row_h / 2 + 4)}" font-size="{FONT}" '
            f'text-anchor="end" fill="{INK}">{escape(_fit(category, label_w))}'
            f"<title>{escape(category)}</title></text>"
        )
        if stacked:
            running = 0.0
            for index, one in enumerate(series):
                value = one.values[r] or 0
                if value <= 0:
                    continue
                parts.append(
                    f'<rect x="{_n(x_of(running))}" y="{_n(y0 + 4)}" '
                    f'width="{_n(max(x_of(running + value) - x_of(running), 0.5))}" '
                    f'height="{_n(row_h - 8)}" {_fill(chart_id, index, one)}{_heavy(one)}>'
                    f"<title>{escape(category)}, {escape(one.name)}: {escape(fmt(value))}"
                    f"</title></rect>"
                )
                running += value
            parts.append(
                f'<text x="{_n(x_of(running) + 4)}" y="{_n(y0 + row_h / 2 + 4)}" '
                f'font-size="{FONT}" fill="{INK}">{escape(fmt(running))}</text>'
            )
        else:
            for index, one in enumerate(series):
                known = one.values[r]
                y = y0 + 5 + index * 15
                if known is None:
                    parts.append(
                        f'<text x="{_n(left + 4)}" y="{_n(y + 10)}" font-size="{FONT}" '
                        f'fill="{MUTED}">{escape(one.name)}: no data</text>'
                    )
                    continue
                end = x_of(known)
                parts.append(
                    f'<rect x="{_n(left)}" y="{_n(y)}" width="{_n(max(end - left, 0.5))}" '
                    f'height="12" {_fill(chart_id, index, one)}{_heavy(one)}>'
                    f"<title>{escape(category)}, {escape(one.name)}: {escape(fmt(known))}"
                    f"</title></rect>"
                    f'<text x="{_n(end + 4)}" y="{_n(y + 10)}" font-size="{FONT}" '
                    f'fill="{INK}">{escape(fmt(known))}</text>'
                )
    return _finish(parts)


def _marker(kind: str, x: float, y: float, colour: str, title: str = "") -> str:
    tip = f"<title>{escape(title)}</title>" if title else ""
    if kind == "square":
        shape = f'<rect x="{_n(x - 3.5)}" y="{_n(y - 3.5)}" width="7" height="7" fill="{colour}"'
        return f"{shape}>{tip}</rect>"
    if kind == "triangle":
        points = f"{_n(x)},{_n(y - 4.5)} {_n(x + 4.5)},{_n(y + 3.5)} {_n(x - 4.5)},{_n(y + 3.5)}"
        return f'<polygon points="{points}" fill="{colour}">{tip}</polygon>'
    if kind == "diamond":
        points = f"{_n(x)},{_n(y - 5)} {_n(x + 5)},{_n(y)} {_n(x)},{_n(y + 5)} {_n(x - 5)},{_n(y)}"
        return f'<polygon points="{points}" fill="{colour}">{tip}</polygon>'
    return f'<circle cx="{_n(x)}" cy="{_n(y)}" r="4" fill="{colour}">{tip}</circle>'


def _line_style(index: int, series: Series) -> tuple[str, str, str, float]:
    colour = _colour(index, series)
    return (
        colour,
        MARKERS[index % len(MARKERS)],
        DASHES[index % len(DASHES)],
        (3.5 if series.highlight else 2.0),
    )


def _line_swatch(index: int, series: Series, x: float, y: float) -> str:
    colour, marker, dash, stroke = _line_style(index, series)
    dashed = f' stroke-dasharray="{dash}"' if dash else ""
    return (
        f'<line x1="{_n(x)}" y1="{_n(y)}" x2="{_n(x + 22)}" y2="{_n(y)}" stroke="{colour}" '
        f'stroke-width="{_n(stroke)}"{dashed}/>' + _marker(marker, x + 11, y, colour)
    )


def lines_svg(
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    desc: str,
    chart_id: str,
    fmt: Format = count_text,
    width: int = 720,
    height: int = 300,
) -> Markup:
    """One line per series across the categories, each with its own dash and marker; an
    unknown value (None) breaks the line."""
    _check(categories, series)
    left, right, bottom = 48, 16, 34
    legend, legend_h = _legend(chart_id, series, left, 8, width - left - right, lines=True)
    top = 8 + legend_h + 10
    inner_w, inner_h = width - left - right, height - top - bottom
    top_value, step = nice_scale(_peak(series, len(categories), stacked=False))
    base = top + inner_h
    parts = [_described_open(width, height, title, desc, chart_id)]
    parts += legend
    parts += _value_axis(top_value, step, left, width - right, top, base, fmt)
    slot = inner_w / max(len(categories), 1)

    def point(i: int, value: float) -> tuple[float, float]:
        return left + i * slot + slot / 2, base - inner_h * (value / top_value)

    for index, one in enumerate(series):
        colour, marker, dash, stroke = _line_style(index, one)
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        run: list[tuple[float, float]] = []
        runs: list[list[tuple[float, float]]] = []
        for i, value in enumerate(one.values):
            if value is None:
                if run:
                    runs.append(run)
                run = []
                continue
            run.append(point(i, value))
        if run:
            runs.append(run)
        for pieces in runs:
            if len(pieces) > 1:
                path = " ".join(f"{_n(x)},{_n(y)}" for x, y in pieces)
                parts.append(
                    f'<polyline points="{path}" fill="none" stroke="{colour}" '
                    f'stroke-width="{_n(stroke)}"{dashed}/>'
                )
        for i, value in enumerate(one.values):
            if value is not None:
                x, y = point(i, value)
                label = f"{categories[i]}, {one.name}: {fmt(value)}"
                parts.append(_marker(marker, x, y, colour, label))
    parts += _category_labels(categories, left, slot, base + 16, inner_w)
    return _finish(parts)


def strips_svg(
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    desc: str,
    chart_id: str,
    fmt: Format = count_text,
    width: int = 720,
) -> Markup:
    """Small multiples: one strip of bars per series (its name at the left, its total at
    the right), all on one scale, so many series over time stay readable. A highlighted
    series gets red bars with a heavy outline, a shaded strip and a bold name."""
    _check(categories, series)
    label_w = min(max((len(s.name) for s in series), default=4) * CHAR_W + 10, width * 0.34)
    left, right, top, row_h = label_w + 10, 48, 8, 30.0
    inner_w = width - left - right
    height = top + row_h * max(len(series), 1) + 26
    peak = max((v or 0 for s in series for v in s.values), default=0)
    top_value = max(peak, 1)
    slot = inner_w / max(len(categories), 1)
    parts = [_described_open(width, height, title, desc, chart_id)]
    for r, one in enumerate(series):
        y0 = top + r * row_h
        colour = HIGHLIGHT if one.highlight else BAR
        if one.highlight:
            parts.append(
                f'<rect x="0" y="{_n(y0)}" width="{width}" height="{_n(row_h)}" fill="#fbe4e1"/>'
            )
        parts.append(
            f'<line x1="{_n(left)}" y1="{_n(y0 + row_h - 3)}" x2="{_n(left + inner_w)}" '
            f'y2="{_n(y0 + row_h - 3)}" stroke="{INK}" stroke-width="1"/>'
            f'<text x="{_n(left - 6)}" y="{_n(y0 + row_h / 2 + 4)}" font-size="{FONT}" '
            f'text-anchor="end" fill="{INK}"{BOLD if one.highlight else ""}>'
            f"{escape(_fit(one.name, label_w))}<title>{escape(one.name)}</title></text>"
        )
        total = 0.0
        for i, value in enumerate(one.values):
            if not value or value <= 0:
                continue
            total += value
            bar_h = (row_h - 8) * (value / top_value)
            heavy = f' stroke="{INK}" stroke-width="1"' if one.highlight else ""
            parts.append(
                f'<rect x="{_n(left + i * slot + slot * 0.15)}" '
                f'y="{_n(y0 + row_h - 3 - bar_h)}" width="{_n(max(slot * 0.7, 0.5))}" '
                f'height="{_n(bar_h)}" fill="{colour}"{heavy}>'
                f"<title>{escape(categories[i])}, {escape(one.name)}: {escape(fmt(value))}"
                f"</title></rect>"
            )
        parts.append(
            f'<text x="{_n(left + inner_w + 6)}" y="{_n(y0 + row_h / 2 + 4)}" '
            f'font-size="{FONT}" fill="{INK}">{escape(fmt(total))}</text>'
        )
    base = top + row_h * len(series)
    parts += _category_labels(categories, left, slot, base + 16, inner_w)
    return _finish(parts)
