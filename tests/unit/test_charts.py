"""The SVG drawings: well-formed XML, everything drawn inside the picture, text escaped; the
dashboard's charts named by a title and a description, every mark with its number, and no
series told from another by colour alone."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date, timedelta

import pytest

from ldis.web.charts import (
    MapPoint,
    Series,
    bars_svg,
    count_text,
    hbars_svg,
    lines_svg,
    map_svg,
    nice_scale,
    strips_svg,
    timeline_svg,
)

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


# The dashboard's charts: bars, lying-down bars, lines and small multiples.


WEEKS = ["6 Jul", "13 Jul", "20 Jul", "27 Jul"]
KINDS = [
    Series("Drug checking results", (1, 1, 0, 1)),
    Series("Near misses", (1, 2, 0, 0)),
    Series("Call-outs <&>", (1, 1, 0, 2)),
]


def _described(root: ET.Element, chart_id: str, title: str) -> None:
    """role="img", named by its <title> and <desc>, both present and non-empty."""
    assert root.attrib["role"] == "img"
    assert root.attrib["aria-labelledby"] == f"{chart_id}-title {chart_id}-desc"
    found_title = root.find(f"{SVG}title")
    found_desc = root.find(f"{SVG}desc")
    assert found_title is not None and found_title.attrib["id"] == f"{chart_id}-title"
    assert found_title.text == title
    assert found_desc is not None and found_desc.attrib["id"] == f"{chart_id}-desc"
    assert found_desc.text


def _inside(root: ET.Element) -> None:
    width, height = _box(root)
    for rect in root.iter(f"{SVG}rect"):
        if "x" not in rect.attrib:
            continue  # pattern tiles
        x, y = float(rect.attrib["x"]), float(rect.attrib["y"])
        w, h = float(rect.attrib["width"]), float(rect.attrib["height"])
        assert w >= 0 and h >= 0
        assert x >= -0.01 and x + w <= width + 0.01 and y >= -0.01 and y + h <= height + 0.01


def _tips(root: ET.Element, tag: str = "rect") -> dict[str, ET.Element]:
    return {
        el.findtext(f"{SVG}title") or "": el
        for el in root.iter(f"{SVG}{tag}")
        if el.find(f"{SVG}title") is not None
    }


def test_nice_scale_rounds_the_top_up_to_a_round_step() -> None:
    assert nice_scale(0) == (1.0, 1.0)
    assert nice_scale(4) == (4, 1)
    assert nice_scale(7) == (8, 2)
    assert nice_scale(100) == (100, 25)
    top, step = nice_scale(0.44)
    assert top == pytest.approx(0.6) and step == pytest.approx(0.2)
    for peak in (1, 3, 9, 13, 57, 101, 999, 49.72):
        top, step = nice_scale(peak)
        assert top >= peak and abs(top / step - round(top / step)) < 1e-9


def test_stacked_bars_every_segment_named_with_its_number() -> None:
    markup = bars_svg(
        WEEKS, KINDS, title="Reports per week", desc="Stacked bars", chart_id="c-reports"
    )
    assert "<&>" not in markup
    root = _parse(markup)
    _described(root, "c-reports", "Reports per week")
    _inside(root)
    tips = _tips(root)
    # Zero values draw nothing; every other value is one segment with its exact number.
    assert len(tips) == sum(1 for s in KINDS for v in s.values if v)
    assert "27 Jul, Call-outs <&>: 2" in tips
    week_two = [t for t in tips if t.startswith("13 Jul")]
    assert len(week_two) == 3
    # Each series has its own fill pattern as well as its own colour: not colour alone.
    fills = {tips[f"6 Jul, {s.name}: 1"].attrib["fill"] for s in KINDS}
    assert len(fills) == 3
    patterns = root.findall(f"{SVG}defs/{SVG}pattern")
    assert len(patterns) == 2  # the first series is solid, the others patterned
    # The legend names every series inside the picture; totals sit above the stacks.
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert all(s.name in texts for s in KINDS)
    assert "4" in texts and "3" in texts


def test_stacked_segments_sit_on_each_other() -> None:
    root = _parse(bars_svg(WEEKS, KINDS, title="t", desc="d", chart_id="c"))
    tips = _tips(root)
    low = tips["13 Jul, Drug checking results: 1"]
    high = tips["13 Jul, Near misses: 2"]
    assert float(low.attrib["x"]) == float(high.attrib["x"])
    assert float(high.attrib["y"]) + float(high.attrib["height"]) == pytest.approx(
        float(low.attrib["y"])
    )
    assert float(high.attrib["height"]) == pytest.approx(2 * float(low.attrib["height"]))


def test_grouped_bars_and_no_data() -> None:
    root = _parse(
        bars_svg(
            ["A", "B"],
            [Series("Median", (2.0, None)), Series("90th percentile", (4.0, 1.0))],
            title="t",
            desc="d",
            chart_id="g",
            stacked=False,
        )
    )
    tips = _tips(root)
    assert set(tips) == {"A, Median: 2", "A, 90th percentile: 4", "B, 90th percentile: 1"}
    _inside(root)


def test_lying_down_bars_with_a_fixed_scale_and_no_data() -> None:
    markup = hbars_svg(
        ["Needle and syringe programme", "Pharmacy"],
        [Series("Delivery success (%)", (75.0, 0.0)), Series("Acknowledged (%)", (100.0, None))],
        title="Delivery",
        desc="Bars",
        chart_id="h",
        stacked=False,
        max_value=100,
        fmt=lambda v: f"{v:g}%",
    )
    root = _parse(markup)
    _described(root, "h", "Delivery")
    _inside(root)
    tips = _tips(root)
    full = tips["Needle and syringe programme, Acknowledged (%): 100%"]
    three_quarters = tips["Needle and syringe programme, Delivery success (%): 75%"]
    assert float(three_quarters.attrib["width"]) == pytest.approx(
        0.75 * float(full.attrib["width"])
    )
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "Acknowledged (%): no data" in texts
    assert "100%" in texts and "0%" in texts


def test_lying_down_stacked_bars_show_each_total() -> None:
    root = _parse(
        hbars_svg(
            ["North Yorkshire", "York", "No area"],
            [Series("Drug checking", (2, 1, 0)), Series("Near misses", (3, 0, 0))],
            title="t",
            desc="d",
            chart_id="s",
        )
    )
    _inside(root)
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert {"5", "1", "0"} <= set(texts)
    assert len(_tips(root)) == 3


def test_lines_break_at_unknown_values_and_differ_by_dash_and_marker() -> None:
    root = _parse(
        lines_svg(
            WEEKS,
            [Series("Naloxone doses", (2, 3, None, 0)), Series("Near misses", (1, 2, 0, 0))],
            title="Naloxone",
            desc="Lines",
            chart_id="n",
        )
    )
    _described(root, "n", "Naloxone")
    lines = root.findall(f"{SVG}polyline")
    # Doses: one run of two points (the unknown week breaks it, a lone point has no line).
    assert len(lines) == 2
    assert lines[0].attrib.get("stroke-dasharray") != lines[1].attrib.get("stroke-dasharray")
    markers = _tips(root, "circle") | _tips(root, "rect")
    assert "13 Jul, Naloxone doses: 3" in markers and "20 Jul, Near misses: 0" in markers
    assert not any(t.startswith("20 Jul, Naloxone") for t in markers)


def test_strips_highlight_the_red_list_without_colour_alone() -> None:
    markup = strips_svg(
        WEEKS,
        [
            Series("metonitazene (red list)", (1, 0, 0, 1), highlight=True),
            Series("caffeine", (1, 0, 0, 0)),
        ],
        title="Substances",
        desc="Strips",
        chart_id="sub",
    )
    root = _parse(markup)
    _described(root, "sub", "Substances")
    _inside(root)
    bold = [t for t in root.iter(f"{SVG}text") if t.attrib.get("font-weight") == "bold"]
    assert [t.text for t in bold] == ["metonitazene (red list)"]
    tips = _tips(root)
    red = tips["6 Jul, metonitazene (red list): 1"]
    plain = tips["6 Jul, caffeine: 1"]
    assert red.attrib["fill"] != plain.attrib["fill"] and "stroke" in red.attrib
    assert red.attrib["height"] == plain.attrib["height"]  # one scale for every strip
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert texts.count("2") == 1 and texts.count("1") == 1  # each strip's total


def test_many_categories_are_labelled_sparsely_and_mismatches_refused() -> None:
    weeks = [f"{d} Jan" for d in range(1, 53)]
    root = _parse(
        bars_svg(weeks, [Series("Reports", tuple(range(52)))], title="t", desc="d", chart_id="m")
    )
    labels = [t.text for t in root.iter(f"{SVG}text") if t.text in weeks]
    assert 3 <= len(labels) < 52 and labels[0] == "1 Jan"
    with pytest.raises(ValueError, match="values"):
        bars_svg(["a"], [Series("x", (1, 2))], title="t", desc="d", chart_id="x")
    assert count_text(3) == "3" and count_text(1234) == "1,234" and count_text(2.5) == "2.5"


def test_empty_charts_are_still_valid_pictures() -> None:
    for draw in (bars_svg, hbars_svg, lines_svg, strips_svg):
        _parse(draw([], [], title="t", desc="d", chart_id="e"))
