"""Public alerts for anyone, no sign-in: the page, the Atom feed and each alert as CAP 1.2
(`docs/public-feeds.md`). Everything here is cacheable for a minute and answers
conditional requests (ETag, and Last-Modified for the CAP messages)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, abort, render_template, request
from flask.typing import ResponseReturnValue

from ldis.domain.errors import NotFound
from ldis.services.public_alerts import (
    CAP_PATH,
    FEED_PATH,
    LISTING_PATH,
    PAGE_PATH,
    Document,
    PublicAlert,
    PublicAlerts,
)
from ldis.web.access import public
from ldis.web.extensions import container

bp = Blueprint("public", __name__)

MAX_AGE = 60
LONDON = ZoneInfo("Europe/London")
ATOM_TYPE = "application/atom+xml; charset=utf-8"
CAP_TYPE = "application/cap+xml; charset=utf-8"
# The service writes these paths into the feeds; the routes answer the same ones.
ALERT_ID = "<int:alert_id>"


def _feeds() -> PublicAlerts:
    c = container()
    return PublicAlerts(
        c.db,
        templates_path=c.settings.templates_path,
        public_url=c.settings.public_url,
        mail_from=c.settings.mail_from,
    )


def when(moment: datetime | None) -> str:
    """UK time in words, e.g. "21 November 2026, 11:40pm"."""
    if moment is None:
        return ""
    local = moment.astimezone(LONDON)
    hour = local.strftime("%I").lstrip("0")
    return f"{local.day} {local:%B %Y}, {hour}:{local:%M}{local:%p}".replace("AM", "am").replace(
        "PM", "pm"
    )


def _cacheable(response: Response, updated: datetime | None = None) -> Response:
    response.headers["Cache-Control"] = f"public, max-age={MAX_AGE}"
    if updated is not None:
        response.last_modified = updated.astimezone(UTC)
    response.add_etag()
    response.make_conditional(request)  # 304 (and no body) when the client's copy is current
    return response


def _xml(document: Document, mimetype: str, *, dated: bool) -> Response:
    response = Response(document.body, content_type=mimetype)
    return _cacheable(response, document.updated if dated else None)


def _page(html: str) -> Response:
    return _cacheable(Response(html, content_type="text/html; charset=utf-8"))


@bp.get(LISTING_PATH)
@public
def index() -> ResponseReturnValue:
    area = request.args.get("area", "").strip() or None
    try:
        listing = _feeds().listing(area)
    except NotFound:
        abort(404)
    return _page(render_template("public/index.html", listing=listing, when=when))


@bp.get(PAGE_PATH.format(id=ALERT_ID))
@public
def alert(alert_id: int) -> ResponseReturnValue:
    try:
        found: PublicAlert = _feeds().alert(alert_id)
    except NotFound:
        abort(404)
    return _page(render_template("public/alert.html", alert=found, when=when))


@bp.get(FEED_PATH)
@public
def atom() -> ResponseReturnValue:
    # No Last-Modified: an entry leaving the feed after its week would move it backwards.
    return _xml(_feeds().atom(), ATOM_TYPE, dated=False)


@bp.get(CAP_PATH.format(id=ALERT_ID))
@public
def cap(alert_id: int) -> ResponseReturnValue:
    try:
        document = _feeds().cap(alert_id)
    except NotFound:
        abort(404)
    return _xml(document, CAP_TYPE, dated=True)
