"""The partnership board's dashboard (`/dashboard`), each figure's numbers as CSV
(`/dashboard/<figure>.csv`) and the quarterly report to print (`/dashboard/report`).

Panel and admin only. No scripts: the charts are SVG drawn here from the figures'
numbers (`ldis.web.charts`), each with its table beneath. Thin: the figures are
`ldis.services.dashboard`; this module formats them (cells, CSV, pictures)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from flask import Blueprint, Response, render_template, request
from flask.typing import ResponseReturnValue
from markupsafe import Markup

from ldis.domain.errors import NotFound, ValidationFailed
from ldis.domain.figures import DEFAULT_WEEKS, previous_quarter, quarter_of, uk_day
from ldis.domain.principal import Principal
from ldis.domain.roles import Role
from ldis.services import dashboard
from ldis.web import charts
from ldis.web.access import current_web_principal, web_roles
from ldis.web.extensions import container
from ldis.web.forms import LONDON, register_page_errors

bp = Blueprint("dashboard", __name__)
register_page_errors(bp)

FIELD_LABELS = {"from": "From", "to": "To", "quarter": "Quarter", "area": "Area"}
# A spreadsheet would run a cell starting with one of these as a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CHART_KINDS = {
    "bars": "Bars",
    "hbars": "Bars",
    "lines": "Lines",
    "strips": "One strip of weekly bars per row",
}


def _actor() -> Principal:
    principal = current_web_principal()
    assert principal is not None, "web_roles lets only signed-in people through"
    return principal


def _today() -> date:
    return uk_day(datetime.now(UTC))


# Cells, for the page and for CSV.


def day_text(value: str, *, year: bool = True) -> str:
    return date.fromisoformat(value).strftime("%-d %b %Y" if year else "%-d %b")


def hours_text(value: float) -> str:
    """A duration given in hours, as a person reads it: "45 min", "3.5 h", "2.1 days"."""
    if value < 1 / 60:
        return "under 1 min"
    if value < 1:
        return f"{value * 60:.0f} min"
    if value < 72:
        return f"{value:.1f} h"
    return f"{value / 24:.1f} days"


def cell_text(value: Any, fmt: str) -> str:
    """A table cell on the page."""
    if value is None:
        return "no data"
    if fmt in ("date", "week"):
        return day_text(str(value))
    if fmt == "count":
        return f"{value:,}"
    if fmt == "hours":
        return hours_text(float(value))
    if fmt == "percent":
        return f"{float(value):g}%"
    return str(value)


def csv_cell(value: Any, fmt: str) -> str:
    """A CSV cell: numbers as plain numbers, days as ISO dates, unknown as empty; text that
    a spreadsheet would take for a formula is prefixed with an apostrophe."""
    if value is None:
        return ""
    if fmt in ("text", "code"):
        text = str(value)
        return "'" + text if text.startswith(FORMULA_START) else text
    return str(value)


def figure_csv(found: dict[str, Any]) -> str:
    """The figure's table as CSV (UTF-8 with a byte-order mark, so spreadsheets read
    accented names right; CRLF line ends), one header row of column keys."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    columns = found["columns"]
    writer.writerow(c["key"] for c in columns)
    for row in found["rows"]:
        writer.writerow(csv_cell(v, c["format"]) for v, c in zip(row, columns, strict=True))
    return "\ufeff" + out.getvalue()


NUMERIC = frozenset({"count", "hours", "percent"})


def table_view(found: dict[str, Any]) -> dict[str, Any]:
    """The figure's table as the page shows it: code columns left out, the first shown
    column as each row's header, numbers right-aligned; a red-list row marked."""
    columns = found["columns"]
    shown = [i for i, c in enumerate(columns) if c["format"] != "code"]
    keys = [c["key"] for c in columns]
    red = keys.index("red_list") if "red_list" in keys else None
    rows = [
        {
            "cells": [
                {
                    "text": cell_text(row[i], columns[i]["format"]),
                    "numeric": columns[i]["format"] in NUMERIC,
                }
                for i in shown
            ],
            "total": row[0] == "all",
            "red_list": red is not None and row[red] == "yes",
        }
        for row in found["rows"]
    ]
    headers = [
        {"label": columns[i]["label"], "numeric": columns[i]["format"] in NUMERIC} for i in shown
    ]
    return {"headers": headers, "rows": rows}


# Pictures.


def _unit_text(unit: str) -> Callable[[float], str]:
    if unit == "hours":
        return lambda v: f"{v:g} h" if v >= 1 or v == 0 else hours_text(v)
    if unit == "percent":
        return lambda v: f"{v:g}%"
    return charts.count_text


def draw(found: dict[str, Any], period_text: str, *, prefix: str = "chart") -> Markup | None:
    """The figure's chart as SVG, or None when it has nothing to show."""
    spec = found["chart"]
    if found["empty"] or not spec["categories"] or not spec["series"]:
        return None
    categories = [
        day_text(c, year=False) if spec["categories_are"] == "week" else str(c)
        for c in spec["categories"]
    ]
    parts = [
        charts.Series(s["name"], tuple(s["values"]), highlight=s["highlight"])
        for s in spec["series"]
    ]
    title = f"{found['title']}, {period_text}"
    names = "; ".join(p.name for p in parts)
    across = "weeks" if spec["categories_are"] == "week" else "rows"
    desc = (
        f"{CHART_KINDS.get(spec['type'], 'Chart')} across {len(categories)} {across}"
        f"{' (stacked)' if spec['stacked'] and spec['type'] in ('bars', 'hbars') else ''}; "
        f"{names}. The table of the same numbers follows the chart."
    )
    chart_id = f"{prefix}-{found['key']}"
    fmt = _unit_text(spec["unit"])
    common: dict[str, Any] = {"title": title, "desc": desc, "chart_id": chart_id, "fmt": fmt}
    if spec["type"] == "bars":
        return charts.bars_svg(categories, parts, stacked=spec["stacked"], **common)
    if spec["type"] == "hbars":
        return charts.hbars_svg(
            categories, parts, stacked=spec["stacked"], max_value=spec["max_value"], **common
        )
    if spec["type"] == "lines":
        return charts.lines_svg(categories, parts, **common)
    return charts.strips_svg(categories, parts, **common)


def period_text(view: dict[str, Any]) -> str:
    first, last = view["first"], view["last"]
    where = view["area"]["name"] if view.get("area") else "all areas"
    return f"{day_text(first)} to {day_text(last)}, {where}"


def _query_args(view: dict[str, Any]) -> dict[str, str]:
    args = {"from": view["first"], "to": view["last"]}
    if view.get("area"):
        args["area"] = view["area"]["code"]
    return args


def _report_args(view: dict[str, Any]) -> dict[str, str]:
    """The quarterly report to offer from the dashboard: the quarter the period ends in,
    or the one before when that quarter is not over yet."""
    last = date.fromisoformat(view["last"])
    today = _today()
    quarter = quarter_of(last)
    if quarter == quarter_of(today) or last > today:
        quarter = previous_quarter(min(last, today)).label or quarter
    args = {"quarter": quarter}
    if view.get("area"):
        args["area"] = view["area"]["code"]
    return args


def _errors(exc: ValidationFailed) -> dict[str, str]:
    return {
        name: f"{FIELD_LABELS.get(name, name.capitalize())} {message}"
        for name, message in exc.fields.items()
    }


def _choices() -> list[tuple[str, str]]:
    return dashboard.area_choices(container().db, _actor())


def _given() -> dict[str, str]:
    return {k: request.args.get(k, "") for k in ("from", "to", "quarter", "area")}


@bp.get("/dashboard")
@web_roles(Role.panel, Role.admin)
def index() -> ResponseReturnValue:
    given = _given()
    try:
        query = dashboard.parse_query(given, today=_today())
        view = dashboard.dashboard(container().db, _actor(), query)
    except ValidationFailed as exc:
        return render_template(
            "dashboard/index.html",
            view=None,
            given=given,
            errors=_errors(exc),
            areas=_choices(),
            default_weeks=DEFAULT_WEEKS,
        ), 400
    text = period_text(view)
    figures = [(f, draw(f, text), table_view(f)) for f in view["figures"]]
    return render_template(
        "dashboard/index.html",
        view=view,
        given={**given, "from": view["first"], "to": view["last"]},
        errors={},
        areas=_choices(),
        figures=figures,
        period=text,
        args=_query_args(view),
        report_args=_report_args(view),
        cell_text=cell_text,
        default_weeks=DEFAULT_WEEKS,
    ), 200


@bp.get("/dashboard/<key>.csv")
@web_roles(Role.panel, Role.admin)
def download(key: str) -> ResponseReturnValue:
    try:
        query = dashboard.parse_query(_given(), today=_today())
        found = dashboard.one_figure(container().db, _actor(), query, key)
    except NotFound:
        return render_template(
            "error.html",
            title="Figure not found",
            message="There is no figure with that name on the dashboard.",
        ), 404
    except ValidationFailed as exc:
        message = "; ".join(_errors(exc).values())
        return Response(message + "\n", status=400, mimetype="text/plain")
    view = found["period"]
    area = (
        "-" + re.sub(r"[^a-z0-9_-]+", "_", view["area"]["code"].lower()) if view.get("area") else ""
    )
    name = f"ldis-{key}-{view['first']}-to-{view['last']}{area}.csv"
    response = Response(figure_csv(found), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/dashboard/report")
@web_roles(Role.panel, Role.admin)
def report() -> ResponseReturnValue:
    given = _given()
    today = _today()
    try:
        query = dashboard.parse_query(given, today=today, quarterly=True)
        view = dashboard.dashboard(container().db, _actor(), query)
    except ValidationFailed as exc:
        return render_template(
            "dashboard/report.html",
            view=None,
            given=given,
            errors=_errors(exc),
            areas=_choices(),
        ), 400
    text = period_text(view)
    figures = [(f, draw(f, text, prefix="report"), table_view(f)) for f in view["figures"]]
    return render_template(
        "dashboard/report.html",
        view=view,
        given={**given, "quarter": view["quarter"] or ""},
        errors={},
        areas=_choices(),
        figures=figures,
        period=text,
        args=_query_args(view),
        cell_text=cell_text,
        generated=datetime.now(UTC).astimezone(LONDON).strftime("%-d %B %Y, %H:%M"),
    ), 200
