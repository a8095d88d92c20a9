"""The Flask application factory. `create_app()` is what gunicorn and `ldis run` serve."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, request, session
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.exc import OperationalError

from ldis.api import bp as api_bp
from ldis.api import errors as api_errors
from ldis.bootstrap import Container, build
from ldis.web import (
    account,
    ack,
    alert_detail,  # noqa: F401 (its routes attach to alerts.bp, registered below)
    alerts,
    areas,
    audience,
    auth,
    bulk,
    dashboard,
    dashboard_map,  # noqa: F401 (its routes attach to dashboard.bp, registered below)
    health,
    hygiene,
    metrics,
    outbox,
    panel,
    preferences,
    progress,
    public,
    public_reports,
    public_texts,
    reports,
    request_ids,
    services,
    signals,
    webhooks,
)
from ldis.web.access import SESSION_USER, current_web_principal, install_partnership_scope
from ldis.web.extensions import KEY
from ldis.web.ratelimits import install as install_rate_limits

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "SAMEORIGIN",
    "Referrer-Policy": "no-referrer",
    # Pages use no scripts at all; inline styles only (GOV.UK-like, no CDN).
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'none'; style-src 'self' 'unsafe-inline'; "
        "frame-src 'self'; frame-ancestors 'self'; base-uri 'none'; form-action 'self'"
    ),
}


def create_app(container: Container | None = None) -> Flask:
    container = container or build()
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=container.settings.secret(),
        MAX_CONTENT_LENGTH=container.settings.max_body_bytes,
        JSON_SORT_KEYS=False,
        SESSION_COOKIE_NAME="ldis_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=container.settings.public_url.startswith("https://"),
        # Checked by `_protect_forms` below, which knows about bearer tokens.
        WTF_CSRF_CHECK_DEFAULT=False,
        # Pages send `Referrer-Policy: no-referrer`, so browsers send no Referer to check;
        # the token and the SameSite cookie do the work.
        WTF_CSRF_SSL_STRICT=False,
        # A form can take a while to fill in on a phone; the token lives as long as the session.
        WTF_CSRF_TIME_LIMIT=None,
    )
    app.extensions[KEY] = container
    # Before any hook that could read the database: a request is host level until signed in.
    install_partnership_scope(app)
    # First, so every later hook's log lines (and every task sent) carry the request id.
    request_ids.install(app, container.settings)
    metrics.install(app)
    blueprints = (
        api_bp,
        health.bp,
        outbox.bp,
        ack.bp,
        auth.bp,
        account.bp,
        reports.bp,
        signals.bp,
        panel.bp,
        alerts.bp,
        progress.bp,
        dashboard.bp,
        areas.bp,
        services.bp,
        bulk.bp,
        audience.bp,
        preferences.bp,
        webhooks.bp,
        hygiene.bp,
        public.bp,
        public_reports.bp,
        public_texts.bp,
    )
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    api_errors.register(app)
    _forms(app)
    install_rate_limits(app, container.settings)

    @app.errorhandler(OperationalError)
    def database_down(exc: OperationalError) -> Response:
        logging.getLogger(__name__).error("database unavailable: %s", type(exc.orig).__name__)
        response = api_errors.error_response(
            503, "unavailable", "The database is unavailable; try again shortly."
        )
        response.headers["Retry-After"] = "10"
        return response

    @app.after_request
    def secure(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    return app


def _forms(app: Flask) -> None:
    """CSRF on every HTML form; the JSON API (bearer tokens, never cookies) is exempt."""
    csrf = CSRFProtect(app)
    csrf.exempt(api_bp)
    # Twilio signs its webhooks instead; mail clients post RFC 8058 one-click unsubscribes
    # with no token of ours (the signed link is the proof). Every other form keeps CSRF.
    csrf.exempt(webhooks.bp)
    csrf.exempt(preferences.one_click)

    @app.before_request
    def _protect_forms() -> None:
        view = app.view_functions.get(request.endpoint or "")
        limit = getattr(view, reports.MAX_UPLOAD_BODY_ATTR, None)
        if isinstance(limit, int) and request.mimetype == "multipart/form-data":
            # Only uploads: a file part is spooled to disk, each other part stays capped by
            # MAX_FORM_MEMORY_SIZE, and any other body keeps LDIS_MAX_BODY_BYTES.
            request.max_content_length = limit
        # A browser cannot attach an Authorization header to a cross-site form post, and the
        # pages never read one: a bearer-token request is not a forged form.
        if request.headers.get("Authorization", "").lower().startswith("bearer "):
            return
        csrf.protect(apply_exemptions=True)

    @app.context_processor
    def _navigation() -> dict[str, Any]:
        signed_in = current_web_principal() if SESSION_USER in session else None
        return {"web_user": signed_in, "outbox_on": app.extensions[KEY].settings.uses_outbox}
