"""Prometheus metrics at /metrics (docs/operations.md lists them, with the alerts to set).

Two kinds:
- counted in the web process as requests are served: `ldis_http_requests_total` and
  `ldis_http_request_duration_seconds`, by route (the URL rule, never the raw path), method
  and status. Under gunicorn each worker process counts in its own files and every scrape
  adds them up (prometheus_client's multiprocess mode, set up in config/gunicorn.conf.py).
- read when scraped, from where the truth is, so they agree whichever process did the work:
  deliveries by channel and state, signals, time to alert (the database), queue depths (the
  broker), provider outcomes and worker heartbeats (Redis, written by the workers:
  `ldis.telemetry`). `ldis_metrics_source_up{source}` is 0 when one could not be read.

Who may read it: clients in LDIS_METRICS_ALLOW (loopback only by default) or, when
LDIS_METRICS_TOKEN is set, any client with `Authorization: Bearer <token>`; others get 403.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import time
from collections.abc import Iterator
from functools import cache

from flask import Blueprint, Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from ldis import telemetry
from ldis.bootstrap import Container
from ldis.services import operations_metrics
from ldis.settings import Settings
from ldis.web.access import public
from ldis.web.extensions import container

bp = Blueprint("metrics", __name__)
log = logging.getLogger(__name__)

# Requests are counted here; in multiprocess mode the values live in files instead and
# this registry is not read.
HTTP_REGISTRY = CollectorRegistry(auto_describe=True)
REQUESTS = Counter(
    "ldis_http_requests",
    "HTTP requests served, by route, method and status.",
    ["route", "method", "status"],
    registry=HTTP_REGISTRY,
)
LATENCY = Histogram(
    "ldis_http_request_duration_seconds",
    "Time to answer an HTTP request, by route and method.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=HTTP_REGISTRY,
)
# Minutes to hours: an urgent alert should reach phones within minutes of approval.
TIME_TO_ALERT_BUCKETS = (60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 24 * 3600, 48 * 3600)


def install(app: Flask) -> None:
    app.register_blueprint(bp)

    @app.before_request
    def _start_timer() -> None:
        g.metrics_started = time.perf_counter()

    @app.after_request
    def _count(response: Response) -> Response:
        started = g.pop("metrics_started", None)
        if started is not None:
            route = request.url_rule.rule if request.url_rule else "(no route)"
            REQUESTS.labels(route, request.method, str(response.status_code)).inc()
            LATENCY.labels(route, request.method).observe(time.perf_counter() - started)
        return response


@cache
def _networks(allow: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    parts = (p.strip() for p in allow.split(","))
    return tuple(ipaddress.ip_network(p, strict=False) for p in parts if p)


def allowed(settings: Settings, remote_addr: str | None, authorization: str) -> bool:
    if settings.metrics_token:
        given = authorization.removeprefix("Bearer ").strip()
        if authorization.startswith("Bearer ") and hmac.compare_digest(
            given.encode(), settings.metrics_token.encode()
        ):
            return True
    try:
        address = ipaddress.ip_address(remote_addr or "")
    except ValueError:
        return False
    return any(address in network for network in _networks(settings.metrics_allow))


@bp.get("/metrics")
@public  # checked below: networks or token (LDIS_METRICS_ALLOW, LDIS_METRICS_TOKEN)
def metrics() -> Response:
    c = container()
    if not allowed(c.settings, request.remote_addr, request.headers.get("Authorization", "")):
        return Response(
            "metrics are readable from LDIS_METRICS_ALLOW networks or with LDIS_METRICS_TOKEN\n",
            status=403,
            mimetype="text/plain",
        )
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        http = CollectorRegistry()
        multiprocess.MultiProcessCollector(http)  # type: ignore[no-untyped-call]
    else:
        http = HTTP_REGISTRY
    scraped = CollectorRegistry(auto_describe=False)
    scraped.register(_Scraped(c))
    body = generate_latest(http) + generate_latest(scraped)
    return Response(body, headers={"Content-Type": CONTENT_TYPE_LATEST})


class _Scraped(Collector):
    """The figures read at scrape time; each source that fails is reported, not raised."""

    def __init__(self, c: Container) -> None:
        self._c = c

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "ldis_metrics_source_up",
            "1 when this scrape could read the source (database, broker, telemetry).",
            labels=["source"],
        )
        for source, read in (
            ("database", self._database),
            ("broker", self._broker),
            ("telemetry", self._telemetry),
        ):
            try:
                families = list(read())
            except Exception as exc:  # a source down must not hide the others
                log.warning("metrics: %s unavailable (%s)", source, type(exc).__name__)
                up.add_metric([source], 0)
                continue
            if families:
                up.add_metric([source], 1)
                yield from families
        yield up

    def _database(self) -> Iterator[Metric]:
        figures = operations_metrics.read(self._c.db)
        deliveries = GaugeMetricFamily(
            "ldis_deliveries",
            "Alert deliveries (one contact, one channel) by channel and state.",
            labels=["channel", "state"],
        )
        for (channel, state), count in sorted(figures.deliveries.items()):
            deliveries.add_metric([channel, state], count)
        yield deliveries
        oldest = GaugeMetricFamily(
            "ldis_deliveries_oldest_pending_seconds",
            "Age of the oldest delivery still queued or being sent (0: none).",
            labels=["state"],
        )
        for state in operations_metrics.PENDING:
            oldest.add_metric([state], figures.oldest_pending_seconds.get(state, 0.0))
        yield oldest
        signals = GaugeMetricFamily(
            "ldis_signals", "Signals by status and severity.", labels=["status", "severity"]
        )
        for (status, severity), count in sorted(figures.signals.items()):
            signals.add_metric([status, severity], count)
        yield signals
        histogram = HistogramMetricFamily(
            "ldis_time_to_alert_seconds",
            "Time from approval (or from the case's first report) to the first message "
            "delivered, for alerts first approved in the last 30 days (exercises left out).",
            labels=["stage"],
        )
        for stage, seconds in sorted(figures.time_to_alert.items()):
            buckets = [
                (str(float(bound)), float(sum(1 for s in seconds if s <= bound)))
                for bound in TIME_TO_ALERT_BUCKETS
            ]
            buckets.append(("+Inf", float(len(seconds))))
            histogram.add_metric([stage], buckets, sum_value=float(sum(seconds)))
        yield histogram

    def _broker(self) -> Iterator[Metric]:
        queues = GaugeMetricFamily(
            "ldis_queue_messages",
            "Tasks waiting in each broker queue (not counting those a worker holds).",
            labels=["queue"],
        )
        for name, depth in sorted(self._c.queue.depths().items()):
            queues.add_metric([name], depth)
        yield queues

    def _telemetry(self) -> Iterator[Metric]:
        recorder = telemetry.for_settings(self._c.settings)
        if recorder is None:  # no Redis: these figures are not kept (docs/operations.md)
            return
        snapshot = recorder.read()
        outcomes = CounterMetricFamily(
            "ldis_provider_messages",
            "Messages handed to a provider (Twilio, SMTP) by channel and outcome: sent, "
            "transient_error (retried), permanent_error.",
            labels=["channel", "outcome"],
        )
        for (channel, outcome), count in sorted(snapshot.outcomes.items()):
            outcomes.add_metric([channel, outcome], count)
        yield outcomes
        beats = GaugeMetricFamily(
            "ldis_worker_heartbeat_timestamp_seconds",
            "Unix time of each running worker's last heartbeat (every 2 s while alive).",
            labels=["worker"],
        )
        for worker, at in sorted(snapshot.heartbeats.items()):
            beats.add_metric([worker], at)
        yield beats
