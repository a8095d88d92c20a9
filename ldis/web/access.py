"""Every route declares who may use it. A meta-test walks the URL map and fails on any view
without a rule, so a new endpoint cannot be left open by forgetting."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, flash, g, redirect, render_template, request, session, url_for

from ldis.domain.errors import DomainError
from ldis.domain.principal import Principal
from ldis.domain.roles import Role
from ldis.store.tenancy import act_for

F = TypeVar("F", bound=Callable[..., Any])
ACCESS_ATTR = "ldis_access"


class Unauthenticated(DomainError):
    code = "unauthenticated"


def public(view: F) -> F:
    """Open to anyone (health checks, signed links, public feeds)."""
    setattr(view, ACCESS_ATTR, "public")
    return view


def api_roles(*roles: Role) -> Callable[[F], F]:
    """Bearer-token API route for people holding any of `roles`."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            principal = current_principal()
            principal.require(*roles)
            return view(*args, **kwargs)

        setattr(wrapper, ACCESS_ATTR, frozenset(roles))
        return wrapper  # type: ignore[return-value]

    return decorate


def local_operator(view: F) -> F:
    """Pages for the person running an embedded instance (the local outbox); see the view."""
    setattr(view, ACCESS_ATTR, "local_operator")
    return view


def install_partnership_scope(app: Flask) -> None:
    """Every request starts at host level (nothing signed in yet: the sign-in lookups must
    see every account) and acts for the signed-in person's partnership from the moment
    `current_principal` or `current_web_principal` knows them; it ends at host level, so
    nothing carries over to the next request on this thread."""

    @app.before_request
    def _start_unscoped() -> None:
        act_for(None)

    @app.teardown_request
    def _end_unscoped(_exc: BaseException | None) -> None:
        act_for(None)


def current_principal() -> Principal:
    principal: Principal | None = getattr(g, "principal", None)
    if principal is not None:
        return principal
    from ldis.services.accounts import principal_for_token
    from ldis.web.extensions import container

    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Send an API token as 'Authorization: Bearer <token>'.")
    principal = principal_for_token(container().db, token.strip())
    if principal is None:
        raise Unauthenticated("The API token is not valid or has been revoked.")
    g.principal = principal
    act_for(principal.partnership_id)  # from here on, the database shows only theirs
    return principal


def web_roles(*roles: Role) -> Callable[[F], F]:
    """Signed-in page for people holding any of `roles`: others are sent to sign in, and
    people signed in without the role get a 403 page."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            principal = current_web_principal()
            if principal is None:
                if request.method != "GET":  # a form posted after the session ended
                    return redirect(url_for("auth.login"))
                here = request.full_path if request.query_string else request.path
                return redirect(url_for("auth.login", next=here))
            if not principal.has_any(*roles):
                return render_template("auth/forbidden.html"), 403
            return view(*args, **kwargs)

        setattr(wrapper, ACCESS_ATTR, frozenset(roles))
        return wrapper  # type: ignore[return-value]

    return decorate


# The signed session cookie holds only these: who, and when things happened (seconds since
# the epoch). Nothing secret; the cookie is signed, HttpOnly, SameSite=Lax, and Secure
# behind https.
SESSION_USER = "user_id"
SESSION_STARTED = "started_at"  # sign-in: the absolute time-out counts from here
SESSION_SEEN = "seen_at"  # the last request: the idle time-out counts from here
SESSION_CREDENTIALS = "credentials_at"  # when this session last proved the password
SESSION_SECOND_FACTOR = "second_factor_at"  # when this session last gave a second factor
# Between the password and the second factor: who, which step, where to go after.
PENDING_USER = "pending_user"
PENDING_STEP = "pending_step"  # "verify" or "enrol"
PENDING_AT = "pending_at"
PENDING_NEXT = "pending_next"
PENDING_MINUTES = 10

_ENDED = {
    "idle": "You were logged out because the page was left unused for a while. Log in again.",
    "absolute": "You were logged out because you had been logged in for a long time. Log in again.",
    "password": "You were logged out because the password of this account was changed. "
    "Log in again.",
}


def start_session(user_id: int, *, second_factor: bool, now: float | None = None) -> None:
    """A fresh signed-in session: nothing from before (e.g. a planted value) carries over."""
    now = time.time() if now is None else now
    session.clear()
    session[SESSION_USER] = user_id
    session[SESSION_STARTED] = now
    session[SESSION_SEEN] = now
    session[SESSION_CREDENTIALS] = now
    if second_factor:
        session[SESSION_SECOND_FACTOR] = now


def begin_pending(user_id: int, step: str, next_path: str) -> None:
    """The password was right; the second factor (or enrolling one) comes next."""
    session.clear()
    session[PENDING_USER] = user_id
    session[PENDING_STEP] = step
    session[PENDING_AT] = time.time()
    session[PENDING_NEXT] = next_path


def pending_sign_in(step: str) -> tuple[int, str] | None:
    """The user id and next path of a sign-in waiting for `step`, or None (none, or older
    than PENDING_MINUTES: the password must be given again)."""
    user_id = session.get(PENDING_USER)
    started = session.get(PENDING_AT)
    if not isinstance(user_id, int) or session.get(PENDING_STEP) != step:
        return None
    if not isinstance(started, int | float) or time.time() - started > PENDING_MINUTES * 60:
        session.clear()
        return None
    return user_id, str(session.get(PENDING_NEXT) or "")


def _number(key: str) -> float:
    value = session.get(key)
    return float(value) if isinstance(value, int | float) else 0.0


def _session_problem(found: Any, settings: Any, now: float) -> str | None:
    from ldis.domain.passwords import session_ended

    ended = session_ended(
        started_at=_number(SESSION_STARTED),
        seen_at=_number(SESSION_SEEN),
        now=now,
        idle=timedelta(minutes=settings.session_idle_minutes),
        absolute=timedelta(hours=settings.session_absolute_hours),
    )
    if ended:
        return ended
    changed = found.password_changed_at
    if changed is not None and changed.timestamp() > _number(SESSION_CREDENTIALS):
        return "password"
    if found.two_factor_required and (
        not found.two_factor_on or SESSION_SECOND_FACTOR not in session
    ):
        return "two_factor"  # e.g. given the panel role since signing in: sign in again
    return None


def current_web_principal() -> Principal | None:
    """The signed-in person, with roles read from the database on every request (so a role
    removed or an account disabled takes effect at once), or None. A session past its idle
    or absolute time-out, or older than the account's last password change, ends here."""
    if "web_principal" in g:
        cached: Principal | None = g.web_principal
        return cached
    from ldis.services.sessions import session_user
    from ldis.web.extensions import container

    user_id = session.get(SESSION_USER)
    principal = None
    if isinstance(user_id, int):
        c = container()
        now = time.time()
        found = session_user(c.db, user_id)
        problem = "gone" if found is None else _session_problem(found, c.settings, now)
        if found is None or problem is not None:
            session.clear()
            if problem in _ENDED:
                flash(_ENDED[problem], "logged_out")
        else:
            principal = found.principal
            if int(now) != int(_number(SESSION_SEEN)):
                session[SESSION_SEEN] = now
    g.web_principal = principal
    act_for(principal.partnership_id if principal is not None else None)
    return principal


def password_changed_here(changed_at: datetime) -> None:
    """This session changed the password: it stays signed in, every other one ends."""
    session[SESSION_CREDENTIALS] = changed_at.timestamp()


def second_factor_given() -> None:
    """This session has just given a good second factor."""
    session[SESSION_SECOND_FACTOR] = time.time()


def second_factor_is_fresh() -> bool:
    """Whether this session gave a second factor within LDIS_FRESH_2FA_MINUTES."""
    from ldis.domain.two_factor import is_fresh
    from ldis.web.extensions import container

    given = session.get(SESSION_SECOND_FACTOR)
    minutes = container().settings.fresh_2fa_minutes
    return is_fresh(given if isinstance(given, int | float) else None, time.time(), minutes)


def confirm_second_factor(code: str | None, *, purpose: str, doing: str) -> tuple[str, int] | None:
    """For an approval or withdrawal (`purpose`): None when this session's second factor is
    fresh or `code` is a good one (the session is then fresh again); else the message to
    show beside the code field and the status code. `doing`: e.g. "approve"."""
    if second_factor_is_fresh():
        return None
    from ldis.services import two_factor
    from ldis.web.extensions import container

    principal = current_web_principal()
    if principal is None:
        return "Log in again", 401
    c = container()
    check = two_factor.verify(
        c.db, principal.user_id, code, key=c.settings.secret(), purpose=purpose
    )
    if check.outcome == "ok":
        second_factor_given()
        if check.method == "recovery_code":
            flash(recovery_code_words(check.recovery_codes_left or 0), "changed")
        return None
    if check.outcome == "missing":
        return f"Enter the 6-digit code from your authenticator app to {doing}", 422
    if check.outcome == "not_enrolled":
        return "Set up two-factor sign-in on your account page first", 403
    if check.outcome == "locked" and check.locked_until is not None:
        return (
            f"Too many wrong codes: try again after {uk_clock(check.locked_until)}",
            403,
        )
    return "The code is wrong or has already been used: enter the newest code your app shows", 403


def recovery_code_words(left: int) -> str:
    plural = "code" if left == 1 else "codes"
    advice = " Make new ones on your account page." if left <= 3 else ""
    return f"You used a recovery code: {left} recovery {plural} left.{advice}"


def uk_clock(moment: datetime) -> str:
    from zoneinfo import ZoneInfo

    return moment.astimezone(ZoneInfo("Europe/London")).strftime("%H:%M")
