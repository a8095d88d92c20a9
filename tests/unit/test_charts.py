"""The SVG drawings: well-formed XML, everything drawn inside the picture, text escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date, timedelta

from ldis.web.charts import MapPoint, map_svg, timeline_svg

SVG = "{http://www.w3.org/2000/svg}"


def _parse(markup: str) -> ET.Element:
    root = ET.fromstring(markup)
    assert root.tag == f"{SVG}svg"
    return root


def _box(root: ET.Element) -> tuple[float, float]:
    _, _, width, height = (float(v) for v in root.attrib["viewBox"].split())
    return width, height


def test_timeline_bars_and_the_expected_line_fit_the_picture() -> None:
    start = date(2026, 11, 17)
    days = [(start + timedelta(days=i), n) for i, n in enumerate([0, 0, 1, 4, 2, 0, 0])]
    root = _parse(timeline_svg(days, expected=1.5, title="Reports & <more>"))
    width, height = _box(root)
    title = root.find(f"{SVG}title")
    assert title is not None and title.text == "Reports & <more>"
    bars = root.findall(f"{SVG}rect")
    assert len(bars) == len(days)
    for bar in bars:
        x, y = float(bar.attrib["x"]), float(bar.attrib["y"])
        w, h = float(bar.attrib["width"]), float(bar.attrib["height"])
        assert x >= 0 and x + w <= width and y >= 0 and y + h <= height + 0.01 and h >= 0
    tallest = max(bars, key=lambda b: float(b.attrib["height"]))
    assert tallest.findtext(f"{SVG}title") == "2026-11-20: 4"
    dashed = [line for line in root.findall(f"{SVG}line") if "stroke-dasharray" in line.attrib]
    assert len(dashed) == 1
    assert 0 <= float(dashed[0].attrib["y1"]) <= height


def test_timeline_without_expected_or_days_is_still_valid() -> None:
    root = _parse(timeline_svg([(date(2026, 1, 1), 0)]))
    assert not [line for line in root.findall(f"{SVG}line") if "stroke-dasharray" in line.attrib]
    _parse(timeline_svg([]))


def test_map_points_and_circle_inside_the_view_box() -> None:
    points = [
        MapPoint(53.959, -1.082, "R-AAAA"),
        MapPoint(53.962, -1.075, 'R-<b>"x"</b>'),
        MapPoint(53.951, -1.090, "R-CCCC"),
    ]
    markup = map_svg(points, centre=(53.957, -1.081), radius_m=800, title="Map <&>")
    assert "<b>" not in markup and "&lt;b&gt;" in markup
    root = _parse(markup)
    width, height = _box(root)
    circles = root.findall(f"{SVG}circle")
    assert len(circles) == 4  # three points and the cluster circle
    for circle in circles:
        cx, cy, r = (float(circle.attrib[k]) for k in ("cx", "cy", "r"))
        assert cx - r >= 0 and cx + r <= width and cy - r >= 0 and cy + r <= height
    labels = [c.findtext(f"{SVG}title") for c in circles]
    assert 'R-<b>"x"</b>' in labels
    # North is up and east is right.
    by_label = {c.findtext(f"{SVG}title"): c for c in circles}
    north, south = by_label['R-<b>"x"</b>'], by_label["R-CCCC"]
    assert float(north.attrib["cy"]) < float(south.attrib["cy"])
    assert float(north.attrib["cx"]) > float(south.attrib["cx"])


def test_one_point_alone_is_centred() -> None:
    root = _parse(map_svg([MapPoint(53.959, -1.082)]))
    width, height = _box(root)
    (circle,) = root.findall(f"{SVG}circle")
    assert abs(float(circle.attrib["cx"]) - width / 2) < 1
    assert abs(float(circle.attrib["cy"]) - height / 2) < 1
    _parse(map_svg([]))
