"""The board's map (`/dashboard/map`): reports, call-outs and clusters over the loaded area
boundaries for one week or a few, chosen with a time slider. No scripts (the pages allow
none): the slider is a range input in a GET form, moved and then shown with the button,
with earlier/later links beside it for one click a week. The routes attach to the
dashboard blueprint; the numbers come from `ldis.services.map_view`."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from flask import render_template, request, url_for
from flask.typing import ResponseReturnValue

from ldis.domain.errors import ValidationFailed
from ldis.domain.figures import Period, week_start
from ldis.domain.roles import Role
from ldis.services import map_view
from ldis.web import map_drawing
from ldis.web.access import web_roles
from ldis.web.dashboard import _actor, _choices, _today, bp, day_text
from ldis.web.extensions import container
from ldis.web.report_display import kind_title

SLIDER_WEEKS = 26  # how far back the slider reaches: half a year of weeks
SPANS = {1: "One week", 4: "Four weeks", 12: "Twelve weeks"}


def _int(name: str, default: int, allowed: range | dict[int, str]) -> tuple[int, str | None]:
    raw = request.args.get(name, "").strip()
    if not raw:
        return default, None
    try:
        value = int(raw)
    except ValueError:
        return default, "must be a whole number"
    if value not in allowed:
        return default, "is out of range"
    return value, None


def period_for(today: date, week: int, span: int) -> Period:
    """`span` weeks ending with the week `-week` weeks before this one (cut at today)."""
    monday = week_start(today) + timedelta(weeks=week)
    return Period(monday - timedelta(weeks=span - 1), min(monday + timedelta(days=6), today))


@bp.get("/dashboard/map")
@web_roles(Role.panel, Role.admin)
def map_page() -> ResponseReturnValue:
    today = _today()
    errors: dict[str, str] = {}
    week, problem = _int("week", 0, range(1 - SLIDER_WEEKS, 1))
    if problem:
        errors["week"] = f"Week {problem}: move the slider to a week in the last {SLIDER_WEEKS}"
    span, problem = _int("weeks", 1, SPANS)
    if problem:
        errors["weeks"] = "Weeks shown: choose one, four or twelve weeks"
    area = request.args.get("area", "").strip().upper() or None
    period = period_for(today, week, span)
    data = None
    try:
        data = map_view.map_data(container().db, _actor(), period, area)
    except ValidationFailed as exc:
        errors["area"] = f"Area {exc.fields['area']}"
    settings = container().settings
    tiles = (
        map_drawing.Tiles(settings.map_tile_url, settings.map_tile_attribution)
        if settings.map_tile_url
        else None
    )
    span_text = f"{day_text(period.first.isoformat())} to {day_text(period.last.isoformat())}"
    where = f" in {data.area[1]}" if data and data.area else ""
    title = f"Reports and clusters{where}, {span_text}"
    picture = map_drawing.draw_map(data, title=title, tiles=tiles) if data else None
    args: dict[str, Any] = {"weeks": span, **({"area": area} if area else {})}
    response = render_template(
        "dashboard/map.html",
        data=data,
        picture=picture,
        title=title,
        errors=errors,
        areas=_choices(),
        area=area or "",
        week=week,
        span=span,
        spans=SPANS,
        slider_min=1 - SLIDER_WEEKS,
        week_label=lambda offset: day_text(
            (week_start(today) + timedelta(weeks=offset)).isoformat()
        ),
        earlier=url_for("dashboard.map_page", week=week - 1, **args)
        if week > 1 - SLIDER_WEEKS
        else None,
        later=url_for("dashboard.map_page", week=week + 1, **args) if week < 0 else None,
        kind_title=kind_title,
        kind_colour=map_drawing.kind_colour,
        legend=map_drawing.shade_steps(max((a.total for a in data.areas), default=0))
        if data
        else [],
        tiles=tiles,
    )
    headers = {}
    if tiles is not None:
        # The tiles come from the configured server: the page's policy lets only it in.
        headers["Content-Security-Policy"] = _policy_with_tiles(tiles.origin)
    return response, 400 if errors else 200, headers


def _policy_with_tiles(origin: str) -> str:
    # Imported here: the app module imports this one to attach its routes.
    from ldis.web.app import SECURITY_HEADERS

    return SECURITY_HEADERS["Content-Security-Policy"] + f"; img-src 'self' {origin}"
