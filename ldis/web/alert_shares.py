"""Sharing an alert with a neighbouring partnership from the alert page (the API does the
same: POST /api/v1/alerts/{id}/shares). The route attaches to the `alerts` blueprint."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request, url_for
from flask.typing import ResponseReturnValue

from ldis.domain.errors import Forbidden, NotFound, ValidationFailed
from ldis.domain.principal import Principal
from ldis.domain.roles import Role
from ldis.services import partnerships
from ldis.web.access import web_roles
from ldis.web.alerts import bp, current_actor, not_found
from ldis.web.extensions import container

# Nothing more will be sent of an alert in these states: sharing it would reach no one.
UNSHAREABLE = ("rejected", "withdrawn", "expired")


def shared_in(view: dict[str, Any], actor: Principal) -> bool:
    """The alert came from another partnership: the actor's may read it, not change it."""
    return actor.partnership_id is not None and view["partnership_id"] != actor.partnership_id


def share_choices(view: dict[str, Any], actor: Principal) -> list[dict[str, Any]]:
    """The partnerships the actor may share this alert with now (none: no form)."""
    if not actor.has_any(Role.panel) or shared_in(view, actor) or view["status"] in UNSHAREABLE:
        return []
    taken = {s["code"] for s in view["shared_with"]}
    return [
        p
        for p in partnerships.list_all(container().db)
        if p["id"] != view["partnership_id"] and p["code"] not in taken
    ]


@bp.post("/alerts/<int:alert_id>/share")
@web_roles(Role.panel)
def share(alert_id: int) -> ResponseReturnValue:
    c = container()
    code = request.form.get("partnership", "")
    try:
        partnerships.share_alert(c.db, current_actor(), alert_id, code, queue=c.queue)
    except NotFound:
        return not_found()
    except Forbidden as exc:
        flash(exc.message, "error")
    except ValidationFailed as exc:
        flash("Choose a partnership to share with: " + "; ".join(exc.fields.values()), "error")
    else:
        flash(
            "Shared: that partnership's panel can read this alert, and its services get it.",
            "changed",
        )
    return redirect(url_for("alerts.show", alert_id=alert_id, _anchor="share"))
