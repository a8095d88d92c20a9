"""JSON errors exactly as the contract says, for every failure under /api/ (never HTML, never 500)."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, make_response, render_template, request
from werkzeug.exceptions import HTTPException

from ldis.domain.errors import Conflict, DomainError, Forbidden, NotFound, ValidationFailed
from ldis.web.access import Unauthenticated

log = logging.getLogger(__name__)

STATUS: dict[type[DomainError], int] = {
    ValidationFailed: 422,
    NotFound: 404,
    Forbidden: 403,
    Conflict: 409,
    Unauthenticated: 401,
}
HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


class BadRequest(DomainError):
    code = "bad_request"


class UnsupportedMediaType(DomainError):
    code = "unsupported_media_type"


STATUS[BadRequest] = 400
STATUS[UnsupportedMediaType] = 415


def error_response(
    status: int, code: str, message: str, fields: dict[str, str] | None = None
) -> Response:
    body: dict[str, Any] = {"error": code, "message": message, "fields": fields or {}}
    response = jsonify(body)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="ldis"'
    return response


def _wants_json() -> bool:
    # Twilio's webhooks already answer refusals in this shape.
    return request.path.startswith(("/api/", "/webhooks/"))


def _page(status: int, title: str, message: str) -> Response:
    return make_response(render_template("error.html", title=title, message=message), status)


def rate_limited(retry_after: int) -> Response:
    """429 for a request over a rate limit (ldis.web.ratelimits): JSON under /api/ and
    /webhooks/, a short page elsewhere; `Retry-After` in whole seconds either way."""
    seconds = max(1, retry_after)
    message = f"Too many requests in a short time. Try again in {seconds} seconds."
    if _wants_json():
        response = error_response(429, "rate_limited", message)
    else:
        response = _page(429, "Too many requests", message)
    response.headers["Retry-After"] = str(seconds)
    return response


def register(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def domain_error(exc: DomainError) -> Response:
        status = next((s for kind, s in STATUS.items() if isinstance(exc, kind)), 400)
        fields = exc.fields if isinstance(exc, ValidationFailed | Conflict) else None
        return error_response(status, exc.code, exc.message, fields)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response | HTTPException:
        if not _wants_json():
            if exc.code == 413:
                # Pages with forms say more (ldis.web.forms.register_page_errors).
                return _page(
                    413, "What you sent is too large", "Nothing was saved. Go back and send less."
                )
            return exc
        status = exc.code or 500
        message = {
            404: "There is nothing at this address.",
            405: f"{request.method} is not allowed here.",
            413: "The request body is too large.",
        }.get(status, exc.description or "The request failed.")
        response = error_response(status, HTTP_CODES.get(status, "error"), message)
        if status == 405 and exc.get_response().headers.get("Allow"):
            response.headers["Allow"] = exc.get_response().headers["Allow"]
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response | tuple[str, int]:
        log.exception("unhandled error on %s %s", request.method, request.path)
        if _wants_json():
            return error_response(
                500, "internal_error", "Something went wrong on our side; it is logged."
            )
        return "Something went wrong on our side; it is logged.", 500
