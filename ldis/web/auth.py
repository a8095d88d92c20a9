"""Signing in and out of the web pages: e-mail and password, then a second factor (a code
from an authenticator app, or a recovery code) for anyone who has one set up; panel
members and admins without one set it up before anything else. Forgotten passwords are
reset by an e-mailed single-use link. See docs/accounts.md."""

from __future__ import annotations

from urllib.parse import urlsplit

import segno
from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from markupsafe import Markup
from wtforms import EmailField, HiddenField, PasswordField

from ldis.domain import two_factor as rules
from ldis.domain.errors import NotFound, ValidationFailed
from ldis.services import password_reset, two_factor
from ldis.services.notices import enqueue_quietly
from ldis.services.sessions import sign_in
from ldis.web.access import (
    begin_pending,
    current_web_principal,
    pending_sign_in,
    public,
    recovery_code_words,
    start_session,
    uk_clock,
)
from ldis.web.extensions import container
from ldis.web.forms import WebForm, register_page_errors
from ldis.web.ratelimits import rate_limited

bp = Blueprint("auth", __name__)
register_page_errors(bp)
WRONG = "Enter a correct e-mail address and password"
WRONG_CODE = "The code is wrong or has already been used: enter the newest code your app shows"
NO_STORE = {"Cache-Control": "no-store"}


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
@rate_limited("login")
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
    result = sign_in(container().db, email, password) if not errors else None
    if result is None:
        # The same answer for an unknown address, a wrong password and a locked account.
        errors = errors or {form.email.id: WRONG}
        form.password.data = ""
        return render_template("auth/login.html", form=form, errors=errors), 401
    target = safe_next(form.next.data)
    if result.next_step == "done":
        start_session(result.principal.user_id, second_factor=False)
        return redirect(target)
    begin_pending(result.principal.user_id, result.next_step, target)
    if result.next_step == "enrol":
        return redirect(url_for("auth.two_factor_setup"))
    return redirect(url_for("auth.two_factor_code"))


def _again() -> ResponseReturnValue:
    flash("Log in again: the time to finish logging in ran out.", "logged_out")
    return redirect(url_for("auth.login"))


@bp.route("/login/two-factor", methods=["GET", "POST"])
@rate_limited("login")
@public
def two_factor_code() -> ResponseReturnValue:
    """The second step: a code from the app, or a recovery code."""
    pending = pending_sign_in("verify")
    if pending is None:
        return _again()
    user_id, target = pending
    if request.method == "GET":
        return render_template("auth/two_factor.html", errors={})
    c = container()
    check = two_factor.verify(
        c.db, user_id, request.form.get("code"), key=c.settings.secret(), purpose="sign_in"
    )
    if check.outcome == "ok":
        start_session(user_id, second_factor=True)
        if check.method == "recovery_code":
            flash(recovery_code_words(check.recovery_codes_left or 0), "changed")
        return redirect(safe_next(target))
    if check.outcome == "missing":
        return render_template(
            "auth/two_factor.html",
            errors={"code": "Enter the 6-digit code from your authenticator app"},
        ), 422
    if check.outcome == "wrong":
        return render_template("auth/two_factor.html", errors={"code": WRONG_CODE}), 401
    session.clear()
    if check.outcome == "locked" and check.locked_until is not None:
        flash(
            "Too many wrong codes: this account is locked until "
            f"{uk_clock(check.locked_until)} (UK time). Log in again then.",
            "logged_out",
        )
    return redirect(url_for("auth.login"))


def qr_svg(uri: str) -> Markup:
    """The otpauth URI as an inline SVG QR code: no script, no image request."""
    return Markup(segno.make(uri, error="m").svg_inline(scale=4, border=4, dark="#0b0c0c"))  # noqa: S704 (segno draws the SVG; nothing of the user's is put in as markup)


def render_setup(
    user_id: int, email: str, action: str, errors: dict[str, str], status: int = 200
) -> ResponseReturnValue:
    """The enrolment page: the secret as a QR code and as text, and a field for the first code."""
    c = container()
    secret = two_factor.begin_enrolment(c.db, user_id, key=c.settings.secret())
    uri = rules.provisioning_uri(secret, email)
    return (
        render_template(
            "auth/two_factor_setup.html",
            secret=rules.spaced(secret),
            qr=qr_svg(uri),
            action=action,
            errors=errors,
        ),
        status,
        NO_STORE,
    )


def setup_errors(check: two_factor.Check) -> tuple[dict[str, str], int]:
    if check.outcome == "missing":
        return {"code": "Enter the 6-digit code your app shows for ldis"}, 422
    if check.outcome == "locked" and check.locked_until is not None:
        when = uk_clock(check.locked_until)
        return {"code": f"Too many wrong codes: try again after {when} (UK time)"}, 403
    return {"code": WRONG_CODE}, 401


@bp.route("/login/two-factor/setup", methods=["GET", "POST"])
@public
def two_factor_setup() -> ResponseReturnValue:
    """Panel members and admins set up two-factor sign-in before anything else."""
    pending = pending_sign_in("enrol")
    if pending is None:
        return _again()
    user_id, target = pending
    c = container()
    try:
        email = str(two_factor.status(c.db, user_id)["email"])
    except NotFound:  # the account was disabled meanwhile
        session.clear()
        return redirect(url_for("auth.login"))
    action = url_for("auth.two_factor_setup")
    if request.method == "GET":
        return render_setup(user_id, email, action, {})
    check, codes = two_factor.confirm_enrolment(
        c.db, user_id, request.form.get("code", ""), key=c.settings.secret(), signing_in=True
    )
    if check.outcome != "ok":
        errors, code = setup_errors(check)
        return render_setup(user_id, email, action, errors, code)
    start_session(user_id, second_factor=True)
    return (
        render_template("auth/recovery_codes.html", codes=codes, next=safe_next(target)),
        200,
        NO_STORE,
    )


@bp.post("/logout")
@public
def logout() -> ResponseReturnValue:
    session.clear()
    flash("You have logged out.", "logged_out")
    return redirect(url_for("auth.login"))


# Forgotten passwords.

SENT = (
    "If an account uses that address, we have sent it a link to reset the password. "
    "The link works once, for an hour."
)


@bp.route("/login/forgot", methods=["GET", "POST"])
@rate_limited("login")
@public
def forgot() -> ResponseReturnValue:
    if request.method == "GET":
        return render_template("auth/forgot.html", errors={}, email="")
    email = request.form.get("email", "").strip()
    if not email:
        return render_template(
            "auth/forgot.html", errors={"email": "Enter your e-mail address"}, email=email
        ), 422
    c = container()
    notice = password_reset.request_reset(c.db, email, public_url=c.settings.public_url)
    enqueue_quietly(c.queue, [notice])
    # The same page whether or not the address is anyone's.
    return render_template("auth/forgot_sent.html", message=SENT)


@bp.route("/login/reset/<token>", methods=["GET", "POST"])
@public
def reset(token: str) -> ResponseReturnValue:
    c = container()
    if request.method == "GET":
        if not password_reset.link_is_live(c.db, token):
            return render_template("auth/reset_invalid.html"), 404, NO_STORE
        return render_template("auth/reset.html", errors={}, token=token), 200, NO_STORE
    new = request.form.get("new_password", "")
    try:
        password_reset.reset_password(c.db, token, new)
    except password_reset.ResetLinkInvalid:
        return render_template("auth/reset_invalid.html"), 404, NO_STORE
    except ValidationFailed as exc:
        problem = exc.fields.get("new_password", "is not acceptable")
        return render_template(
            "auth/reset.html", errors={"new_password": f"Password {problem}"}, token=token
        ), 422
    session.clear()
    flash("Your password is changed. Log in with it now.", "logged_out")
    return redirect(url_for("auth.login"))
