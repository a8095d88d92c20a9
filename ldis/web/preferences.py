"""A contact's own preferences page, opened from the signed link in any message: no account,
the link is the key. Every form posts with a CSRF token, except the RFC 8058 one-click
unsubscribe that mail clients post by themselves (exempted in app.py); a GET of that URL
changes nothing, so a link scanner cannot unsubscribe anyone."""

from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from wtforms import StringField

from ldis.domain.errors import NotFound, ValidationFailed
from ldis.services import notices
from ldis.services import preferences as prefs
from ldis.web.access import public
from ldis.web.extensions import container
from ldis.web.forms import WebForm, register_page_errors

bp = Blueprint("preferences", __name__)
register_page_errors(bp)
ONE_CLICK_BODY = "One-Click"


class QuietHoursForm(WebForm):
    quiet_start = StringField("Quiet hours start")
    quiet_end = StringField("Quiet hours end")


@bp.after_request
def _private(response: Response) -> Response:
    # The address holds the key to someone's settings: keep it out of caches and indexes.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


@bp.errorhandler(NotFound)
def _not_found(_exc: NotFound) -> ResponseReturnValue:
    return render_template(
        "preferences/not_found.html",
    ), 404


def _who(token: str) -> tuple[int, int]:
    found = container().links.contact_for_preferences(token)
    if found is None:
        raise NotFound("This link is not valid.")
    return found


def _page(
    token: str,
    errors: dict[str, str] | None = None,
    form: QuietHoursForm | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    view = prefs.view(container().db, *_who(token))
    if form is None:
        form = QuietHoursForm(
            data={"quiet_start": view["quiet_start"], "quiet_end": view["quiet_end"]}
        )
    return render_template(
        "preferences/page.html", view=view, token=token, form=form, errors=errors or {}
    ), status


def _back(token: str, message: str, anchor: str) -> ResponseReturnValue:
    flash(message)
    return redirect(url_for("preferences.page", token=token, _anchor=anchor), 303)


@bp.get("/preferences/<token>")
@public
def page(token: str) -> ResponseReturnValue:
    return _page(token)


@bp.post("/preferences/<token>/kinds")
@public
def kinds(token: str) -> ResponseReturnValue:
    try:
        stopped = prefs.set_kinds(container().db, *_who(token), request.form.getlist("kinds"))
    except ValidationFailed:
        return _page(token, {"kinds": "Choose alerts from the list"}, status=422)
    message = "Saved. You will get every kind of alert your service receives."
    if stopped:
        message = "Saved. You will not get the kinds you unticked."
    return _back(token, message, "kinds")


@bp.post("/preferences/<token>/quiet-hours")
@public
def quiet_hours(token: str) -> ResponseReturnValue:
    form = QuietHoursForm()
    try:
        prefs.set_quiet_hours(
            container().db, *_who(token), form.quiet_start.data or "", form.quiet_end.data or ""
        )
    except ValidationFailed as exc:
        return _page(token, exc.fields, form, status=422)
    if form.quiet_start.data or form.quiet_end.data:
        return _back(token, "Saved your quiet hours.", "quiet-hours")
    return _back(token, "Saved: no quiet hours.", "quiet-hours")


@bp.post("/preferences/<token>/stop-all")
@public
def stop_all(token: str) -> ResponseReturnValue:
    c = container()
    ids = prefs.unsubscribe_all(c.db, *_who(token), public_url=c.settings.public_url)
    notices.enqueue_quietly(c.queue, list(ids))
    return _back(token, "You are unsubscribed: we will send you no more alerts.", "everything")


@bp.post("/preferences/<token>/resume")
@public
def resume(token: str) -> ResponseReturnValue:
    prefs.resubscribe(container().db, *_who(token))
    return _back(token, "You are subscribed again.", "everything")


@bp.get("/preferences/<token>/unsubscribe")
@public
def unsubscribe_link(token: str) -> ResponseReturnValue:
    """Opened in a browser (or fetched by a link scanner): show the choices, change nothing."""
    _who(token)
    return redirect(url_for("preferences.page", token=token, _anchor="everything"), 303)


@bp.post("/preferences/<token>/unsubscribe")
@public
def one_click(token: str) -> ResponseReturnValue:
    """RFC 8058: the mail client posts `List-Unsubscribe=One-Click`, with no token of ours."""
    if request.form.get("List-Unsubscribe") != ONE_CLICK_BODY:
        abort(400)
    c = container()
    ids = prefs.one_click(c.db, *_who(token), public_url=c.settings.public_url)
    notices.enqueue_quietly(c.queue, list(ids))
    return render_template("preferences/unsubscribed.html", token=token)
