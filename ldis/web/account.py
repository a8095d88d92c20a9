"""Your own account: change your password, see and set up two-factor sign-in, make new
recovery codes, and your API tokens (list, create, shown once, revoke)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from ldis.domain.errors import Conflict, NotFound, ValidationFailed
from ldis.domain.principal import Principal
from ldis.domain.roles import Role
from ldis.services import accounts, two_factor
from ldis.web.access import (
    confirm_second_factor,
    current_web_principal,
    password_changed_here,
    second_factor_given,
    second_factor_is_fresh,
    web_roles,
)
from ldis.web.auth import NO_STORE, render_setup, setup_errors
from ldis.web.extensions import container
from ldis.web.forms import register_page_errors

bp = Blueprint("account", __name__)
register_page_errors(bp)
EVERYONE = tuple(Role)
ROLE_WORDS = {
    Role.reporter: "Reporter: file and read reports",
    Role.panel: "Panel member: signals, grading, alerts",
    Role.admin: "Administrator: areas, services, people",
    Role.service_manager: "Service manager: your services' details and contacts",
}


def _me() -> Principal:
    principal = current_web_principal()
    assert principal is not None  # web_roles let the request in
    return principal


def _page(errors: dict[str, str] | None = None, status: int = 200) -> ResponseReturnValue:
    me = _me()
    state = two_factor.status(container().db, me.user_id)
    return render_template(
        "account/index.html",
        me=me,
        state=state,
        errors=errors or {},
        fresh=second_factor_is_fresh(),
    ), status


@bp.get("/account")
@web_roles(*EVERYONE)
def index() -> ResponseReturnValue:
    return _page()


@bp.post("/account/password")
@web_roles(*EVERYONE)
def change_password() -> ResponseReturnValue:
    current = request.form.get("current_password", "")
    new = request.form.get("new_password", "")
    missing = {
        "current_password": "Enter your current password" if not current else "",
        "new_password": "Enter a new password" if not new else "",
    }
    errors = {field: message for field, message in missing.items() if message}
    if errors:
        return _page(errors, 422)
    try:
        changed = accounts.change_password(container().db, _me().user_id, current=current, new=new)
    except ValidationFailed as exc:
        labels = {"current_password": "Current password", "new_password": "New password"}
        return _page(
            {
                field: f"{labels.get(field, 'Password')} {problem}"
                for field, problem in exc.fields.items()
            },
            422,
        )
    password_changed_here(changed)
    flash(
        "Your password is changed. Any other browser logged in to this account is logged out.",
        "changed",
    )
    return redirect(url_for("account.index"))


@bp.route("/account/two-factor", methods=["GET", "POST"])
@web_roles(*EVERYONE)
def two_factor_setup() -> ResponseReturnValue:
    """Anyone may turn two-factor sign-in on (panel members and admins already have it)."""
    me = _me()
    c = container()
    if two_factor.status(c.db, me.user_id)["on"]:
        flash("Two-factor sign-in is already on.", "changed")
        return redirect(url_for("account.index"))
    action = url_for("account.two_factor_setup")
    if request.method == "GET":
        return render_setup(me.user_id, me.email, action, {})
    check, codes = two_factor.confirm_enrolment(
        c.db, me.user_id, request.form.get("code", ""), key=c.settings.secret()
    )
    if check.outcome != "ok":
        errors, status = setup_errors(check)
        return render_setup(me.user_id, me.email, action, errors, status)
    second_factor_given()
    return (
        render_template("auth/recovery_codes.html", codes=codes, next=url_for("account.index")),
        200,
        NO_STORE,
    )


@bp.post("/account/recovery-codes")
@web_roles(*EVERYONE)
def recovery_codes() -> ResponseReturnValue:
    """New recovery codes: asks for a code unless this session gave one lately."""
    problem = confirm_second_factor(
        request.form.get("code"), purpose="recovery_codes", doing="make new recovery codes"
    )
    if problem is not None:
        message, status = problem
        return _page({"code": message}, status)
    try:
        codes = two_factor.regenerate_recovery_codes(container().db, _me().user_id)
    except Conflict as exc:
        flash(exc.message, "changed")
        return redirect(url_for("account.index"))
    return (
        render_template(
            "auth/recovery_codes.html",
            codes=codes,
            next=url_for("account.index"),
            heading="New recovery codes made: the old ones no longer work.",
        ),
        200,
        NO_STORE,
    )


# API tokens.


def _tokens_page(
    *,
    new_token: str | None = None,
    errors: dict[str, str] | None = None,
    form: dict[str, Any] | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    me = _me()
    tokens = accounts.list_tokens(container().db, me)
    headers = NO_STORE if new_token else {}
    return (
        render_template(
            "account/tokens.html",
            tokens=tokens,
            new_token=new_token,
            errors=errors or {},
            form=form or {"label": "", "scopes": []},
            roles=[(role, ROLE_WORDS[role]) for role in Role if role in me.roles],
        ),
        status,
        headers,
    )


@bp.get("/account/tokens")
@web_roles(*EVERYONE)
def tokens() -> ResponseReturnValue:
    return _tokens_page()


@bp.post("/account/tokens")
@web_roles(*EVERYONE)
def create_token() -> ResponseReturnValue:
    label = request.form.get("label", "")
    scopes = request.form.getlist("scope")
    try:
        token = accounts.create_own_token(container().db, _me(), label=label, scopes=scopes)
    except ValidationFailed as exc:
        words = {"label": "Name", "scope": "Roles"}
        errors = {
            field: f"{words.get(field, field)}: {problem}" for field, problem in exc.fields.items()
        }
        return _tokens_page(errors=errors, form={"label": label, "scopes": scopes}, status=422)
    # Shown on this response only: never stored in the clear, never in a redirect.
    return _tokens_page(new_token=token)


@bp.post("/account/tokens/<int:token_id>/revoke")
@web_roles(*EVERYONE)
def revoke_token(token_id: int) -> ResponseReturnValue:
    try:
        accounts.revoke_token(container().db, _me(), token_id)
    except NotFound:
        return render_template(
            "error.html", title="No such token", message="This token is not one of yours."
        ), 404
    flash("The token is revoked: it no longer works.", "changed")
    return redirect(url_for("account.tokens"))
