"""The Flask application factory. `create_app()` is what gunicorn and `ldis run` serve."""

from __future__ import annotations

import logging

from flask import Flask, Response
from sqlalchemy.exc import OperationalError

from ldis.api import bp as api_bp
from ldis.api import errors as api_errors
from ldis.bootstrap import Container, build
from ldis.web import ack, health, outbox
from ldis.web.extensions import KEY

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
    )
    app.extensions[KEY] = container
    for blueprint in (api_bp, health.bp, outbox.bp, ack.bp):
        app.register_blueprint(blueprint)
    api_errors.register(app)

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
