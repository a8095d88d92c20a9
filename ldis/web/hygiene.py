"""Contact checks (/hygiene): flagged contacts, services nobody can be reached at, services
due their yearly review; admins see every service, a service manager only theirs. Clearing a
flag (after fixing the details) is a CSRF-protected form post, audited by the use case."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue

from ldis.domain.errors import Conflict, NotFound
from ldis.domain.principal import Principal
from ldis.domain.roles import Role
from ldis.services import hygiene
from ldis.web.access import current_web_principal, web_roles
from ldis.web.extensions import container
from ldis.web.forms import register_page_errors

bp = Blueprint("hygiene", __name__)
register_page_errors(bp)


def _actor() -> Principal:
    principal = current_web_principal()
    assert principal is not None, "web_roles lets only signed-in people through"
    return principal


@bp.get("/hygiene")
@web_roles(Role.admin, Role.service_manager)
def index() -> ResponseReturnValue:
    c = container()
    view = hygiene.overview(
        c.db, _actor(), interval=timedelta(days=c.settings.review_interval_days)
    )
    return render_template("hygiene/index.html", view=view)


@bp.post("/hygiene/contacts/<int:contact_id>/clear-flag")
@web_roles(Role.admin, Role.service_manager)
def clear_flag(contact_id: int) -> ResponseReturnValue:
    try:
        hygiene.clear_flag(container().db, _actor(), contact_id)
    except NotFound:
        return render_template(
            "error.html", title="Contact not found", message="There is no such contact."
        ), 404
    except Conflict as exc:
        flash(exc.message)
        return redirect(url_for("hygiene.index"), 303)
    flash("Flag cleared: alerts will be tried on this contact's channels again.")
    return redirect(url_for("hygiene.index"), 303)
