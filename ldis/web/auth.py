"""Signing in and out of the web pages (e-mail and password; a signed session cookie).

Minimal on purpose: two-factor sign-in, lockout and password reset come with a later issue.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from wtforms import EmailField, HiddenField, PasswordField

from ldis.services.sessions import verify_password
from ldis.web.access import SESSION_USER, current_web_principal, public
from ldis.web.extensions import container
from ldis.web.forms import WebForm, register_page_errors

bp = Blueprint("auth", __name__)
register_page_errors(bp)
WRONG = "Enter a correct e-mail address and password"


class LoginForm(WebForm):
    email = EmailField("E-mail address")
    password = PasswordField("Password")
    next = HiddenField()


def safe_next(target: str | None) -> str:
    """Only a path on this site: never another host (an open redirect) or a scheme."""
    if not target:
        return url_for("reports.index")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("reports.index")
    if "\\" in target or any(ord(c) < 32 for c in target):
        return url_for("reports.index")
    return target


@bp.route("/login", methods=["GET", "POST"])
@public
def login() -> ResponseReturnValue:
    form = LoginForm()
    if request.method == "GET":
        if current_web_principal() is not None:
            return redirect(safe_next(request.args.get("next")))
        form.next.data = request.args.get("next", "")
        return render_template("auth/login.html", form=form, errors={})
    email, password = (form.email.data or "").strip(), form.password.data or ""
    errors: dict[str, str] = {}
    if not email:
        errors[form.email.id] = "Enter your e-mail address"
    if not password:
        errors[form.password.id] = "Enter your password"
    principal = verify_password(container().db, email, password) if not errors else None
    if principal is None:
        errors = errors or {form.email.id: WRONG}
        form.password.data = ""
        return render_template("auth/login.html", form=form, errors=errors), 401
    # A fresh session: nothing from before signing in (e.g. a planted value) carries over.
    session.clear()
    session[SESSION_USER] = principal.user_id
    return redirect(safe_next(form.next.data))


@bp.post("/logout")
@public
def logout() -> ResponseReturnValue:
    session.clear()
    flash("You have logged out.", "logged_out")
    return redirect(url_for("auth.login"))
