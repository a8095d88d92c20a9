"""The panel's page for the public-facing texts: the report form's words, the replies to
texts (REPORT, JOIN, HELP). Panel members change them; admins read."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from ldis.domain.errors import ValidationFailed
from ldis.domain.roles import Role
from ldis.services import public_texts
from ldis.web.access import current_web_principal, web_roles
from ldis.web.extensions import container

bp = Blueprint("public_texts", __name__)


def _page(errors: dict[str, str], typed: dict[str, str], status: int = 200) -> ResponseReturnValue:
    principal = current_web_principal()
    assert principal is not None  # web_roles signed them in
    rows = public_texts.list_texts(container().db, principal)
    return (
        render_template(
            "panel/public_texts.html",
            rows=rows,
            errors=errors,
            typed=typed,
            can_edit=principal.has_any(Role.panel),
        ),
        status,
    )


@bp.get("/panel/public-texts")
@web_roles(Role.panel, Role.admin)
def index() -> ResponseReturnValue:
    return _page({}, {})


@bp.post("/panel/public-texts/<key>")
@web_roles(Role.panel)
def save(key: str) -> ResponseReturnValue:
    principal = current_web_principal()
    assert principal is not None
    reset = request.form.get("action") == "reset"
    text = None if reset else request.form.get("text", "")
    try:
        public_texts.save_text(container().db, principal, key, text)
    except ValidationFailed as exc:
        return _page(exc.fields, {key: text or ""}, 400)
    flash("The default text is back." if reset else "Saved. The public sees the new text now.")
    return redirect(url_for("public_texts.index") + f"#{key}")
