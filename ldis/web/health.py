"""Liveness and readiness, for load balancers and orchestrators."""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from ldis.web.access import public
from ldis.web.extensions import container

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


@bp.get("/healthz")
@public
def healthz() -> ResponseReturnValue:
    return jsonify({"status": "ok"})


@bp.get("/readyz")
@public
def readyz() -> ResponseReturnValue:
    c = container()
    checks: dict[str, str] = {}
    for name, probe in (("database", c.db.ping), ("broker", c.queue.ping)):
        try:
            probe()
            checks[name] = "ok"
        except Exception as exc:  # any failure means "not ready"; the reason goes to the log
            log.warning("readiness check %s failed: %s", name, type(exc).__name__)
            checks[name] = "unavailable"
    ready = all(value == "ok" for value in checks.values())
    response = jsonify({"status": "ready" if ready else "unavailable", "checks": checks})
    response.status_code = 200 if ready else 503
    if not ready:
        response.headers["Retry-After"] = "10"
    return response
