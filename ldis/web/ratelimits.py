"""Request rate limits (Flask-Limiter): sign-in forms, report intake, Twilio webhooks and
acknowledgement links (docs/security.md).

Routes are marked with `rate_limited(kind)`; `install(app, settings)` gives each app its own
`Limiter` and wraps the marked views. The counts live in Redis (LDIS_REDIS_URL, or the
broker when it is Redis; keys `{LDIS_BROKER_PREFIX}ldis:limits:...`), so every web worker and
every host shares them; otherwise (the embedded broker of `ldis run`, RabbitMQ without
LDIS_REDIS_URL) each process counts in memory.
If Redis stops answering, the counts fall back to memory with a warning: sign-in goes on,
limited per process, rather than failing for everyone.

A refused request gets 429 with `Retry-After` in seconds: the JSON error shape under /api/
and /webhooks/, a short page elsewhere (`ldis.api.errors.rate_limited`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from flask import Flask, Response, current_app, request, session
from flask_limiter import Limiter, RateLimitExceeded
from limits import parse_many
from werkzeug.middleware.proxy_fix import ProxyFix

from ldis.api import errors as api_errors
from ldis.domain.errors import DomainError
from ldis.settings import Settings
from ldis.web.access import SESSION_USER, current_principal

F = TypeVar("F", bound=Callable[..., Any])
Kind = Literal["login", "intake", "webhook", "ack", "public"]
RATE_ATTR = "ldis_rate_limit"
# Never wait long on a Redis that has gone away: the in-memory fallback takes over.
REDIS_TIMEOUT_SECONDS = 1
LIMITER_KEY = "ldis_limiter"


def rate_limited(kind: Kind, methods: tuple[str, ...] = ("POST",)) -> Callable[[F], F]:
    """Mark a view for the `kind` limit (applied by `install`) on these methods."""

    def mark(view: F) -> F:
        setattr(view, RATE_ATTR, (kind, methods))
        return view

    return mark


def client_ip() -> str:
    """The client's address: the TCP peer, or what `LDIS_TRUSTED_PROXIES` proxies say."""
    return request.remote_addr or "unknown"


def intake_key() -> str:
    """Report intake counts per user: the bearer token's, else the signed-in one, else the
    address (an invalid token is refused later, and still counted against the address)."""
    if request.headers.get("Authorization", "").lower().startswith("bearer "):
        try:
            return f"user:{current_principal().user_id}"
        except DomainError:
            return f"ip:{client_ip()}"
    user = session.get(SESSION_USER)
    if isinstance(user, int):
        return f"user:{user}"
    return f"ip:{client_ip()}"


def allow(scope: str, key: str, rate: str) -> bool:
    """Count one more under (`scope`, `key`) against `rate` in the app's limiter storage;
    False once over it. For limits keyed on what the view reads (a texter's hashed number),
    which a decorator cannot see. Fails open like the decorated limits."""
    limiter: Limiter | None = current_app.extensions.get(LIMITER_KEY)
    if limiter is None:
        return True
    try:
        return all(limiter.limiter.hit(item, scope, key) for item in parse_many(rate))
    except Exception:  # storage gone: as the decorated limits, let the request through
        return True


def _storage(settings: Settings) -> tuple[str, dict[str, str | int]]:
    url = settings.effective_redis_url
    if url:
        return url, {
            "key_prefix": f"{settings.broker_prefix}ldis:limits",
            "socket_connect_timeout": REDIS_TIMEOUT_SECONDS,
            "socket_timeout": REDIS_TIMEOUT_SECONDS,
        }
    return "memory://", {}


def install(app: Flask, settings: Settings) -> Limiter:
    """Apply ProxyFix if configured, and the limits to every view marked `rate_limited`."""
    if settings.trusted_proxies:
        hops = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    storage_uri, storage_options = _storage(settings)
    limiter = Limiter(
        client_ip,
        app=app,
        storage_uri=storage_uri,
        storage_options=storage_options,
        strategy="fixed-window",
        headers_enabled=False,
        swallow_errors=True,
        in_memory_fallback_enabled=True,
    )
    rates: dict[Kind, str] = {
        "login": settings.login_rate,
        "intake": settings.intake_rate,
        "webhook": settings.webhook_rate,
        "ack": settings.ack_rate,
        "public": settings.public_report_rate,
    }
    for endpoint, view in list(app.view_functions.items()):
        marked = getattr(view, RATE_ATTR, None)
        if marked is None:
            continue
        kind, methods = marked
        # Intake shares one budget across the API and the web forms; webhooks and
        # acknowledgement links one each; every sign-in form has its own.
        scope = f"login:{endpoint}" if kind == "login" else kind
        limit = limiter.shared_limit(
            rates[kind],
            scope=scope,
            key_func=intake_key if kind == "intake" else client_ip,
            methods=list(methods),
        )
        wrapped: Any = limit(view)  # the same view, counted first
        app.view_functions[endpoint] = wrapped

    app.extensions[LIMITER_KEY] = limiter

    @app.errorhandler(RateLimitExceeded)
    def _refused(exc: RateLimitExceeded) -> Response:
        current = limiter.current_limit
        try:
            reset_at = float(current.window[0]) if current is not None else time.time() + 60
        except Exception:  # the storage went away between the count and this answer
            reset_at = time.time() + 60
        return api_errors.rate_limited(math.ceil(reset_at - time.time()))

    return limiter
