"""Each request gets an id: the caller's X-Request-ID when it is well formed (a proxy or
load balancer in front usually sets one), otherwise a new one. It is bound for the request's
log lines, sent back in the response's X-Request-ID, and carried into every Celery task the
request causes (`workers.request_context`), so one id finds every line, in every process.

In JSON log mode the app also logs one line per request (route template, not the path, so
no token or address in a URL reaches the log), with its status and duration.
"""

from __future__ import annotations

import contextlib
import logging
import time

from flask import Flask, Response, g, request

from ldis import log_context
from ldis.settings import LogFormat, Settings

log = logging.getLogger("ldis.request")


def install(app: Flask, settings: Settings) -> None:
    log_requests = settings.log_format is LogFormat.json

    @app.before_request
    def _bind_request_id() -> None:
        incoming = request.headers.get(log_context.REQUEST_ID_HEADER)
        g.request_id = log_context.valid_request_id(incoming) or log_context.new_request_id()
        g.request_started = time.perf_counter()
        g.request_id_token = log_context.bind(request_id=g.request_id)

    @app.after_request
    def _answer_with_request_id(response: Response) -> Response:
        request_id = g.get("request_id")
        if request_id:
            response.headers[log_context.REQUEST_ID_HEADER] = request_id
        if log_requests and "request_started" in g:
            log.info(
                "%s %s %s %.1fms",
                request.method,
                request.url_rule.rule if request.url_rule else "(no route)",
                response.status_code,
                (time.perf_counter() - g.request_started) * 1000,
            )
        return response

    @app.teardown_request
    def _unbind_request_id(_exc: BaseException | None) -> None:
        token = g.pop("request_id_token", None)
        if token is not None:
            with contextlib.suppress(ValueError):  # bound in another context: never in sync
                log_context.reset(token)
