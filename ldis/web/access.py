"""Every route declares who may use it. A meta-test walks the URL map and fails on any view
without a rule, so a new endpoint cannot be left open by forgetting."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import g, redirect, render_template, request, session, url_for

from ldis.domain.errors import DomainError
from ldis.domain.principal import Principal
from ldis.domain.roles import Role

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


SESSION_USER = "user_id"


def current_web_principal() -> Principal | None:
    """The signed-in person, with roles read from the database on every request (so a role
    removed or an account disabled takes effect at once), or None."""
    if "web_principal" in g:
        cached: Principal | None = g.web_principal
        return cached
    from ldis.services.sessions import principal_for_user
    from ldis.web.extensions import container

    user_id = session.get(SESSION_USER)
    principal = None
    if isinstance(user_id, int):
        principal = principal_for_user(container().db, user_id)
        if principal is None:
            session.clear()
    g.web_principal = principal
    return principal
