"""Observability against the real thing: /metrics scraped and parsed with Prometheus's own
text parser, and one request id found in JSON log lines of the web and of the real worker
process that ran the tasks the request caused."""

from __future__ import annotations

import io
import json
import logging
import secrets
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from ldis import telemetry
from ldis.bootstrap import Container
from ldis.domain.messages import OutgoingMessage
from ldis.domain.roles import Role
from ldis.log_setup import ContextFilter, JsonLineFormatter
from ldis.settings import Settings, load_settings
from tests.fakes.twilio_api import FakeTwilio
from tests.integration.conftest import People, wait_for
from tests.integration.thin_path import run_thin_path
from workers.channels.twilio_sms import TwilioSender

pytestmark = pytest.mark.integration

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: FlaskClient, **labels_of_interest: str) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200, response.data
    assert response.headers["Content-Type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def json_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of a log file, each of which must be one JSON object."""
    lines = []
    for line in path.read_text().splitlines():
        if line.strip():
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:
                raise AssertionError(f"not a JSON line in {path.name}: {line!r}") from None
    return lines


def thin_path(client: FlaskClient, people: People, headers: dict[str, str]) -> dict[str, Any]:
    """The whole loop over HTTP (report, decision, alert, two approvals: fan-out), every
    request carrying `headers` too."""

    def call(method: str, path: str, auth: dict[str, str], body: Any = None) -> tuple[int, Any]:
        response = client.open(path, method=method, headers={**auth, **headers}, json=body)
        return response.status_code, response.get_json()

    return run_thin_path(
        call,
        admin=people.headers("admin", Role.admin),
        reporter=people.headers("reporter", Role.reporter),
        drafter=people.headers("drafter", Role.panel),
        approvers=[
            people.headers("approver1", Role.panel),
            people.headers("approver2", Role.panel),
        ],
        wait_for=wait_for,
        otp=people.otp_for,
    )


def test_one_request_id_in_the_web_and_the_worker_json_lines(
    client: FlaskClient,
    people: People,
    container: Container,
    worker: subprocess.Popen[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    request_id = f"test-{secrets.token_hex(8)}"
    web_lines = io.StringIO()
    handler = logging.StreamHandler(web_lines)
    handler.setFormatter(JsonLineFormatter())
    handler.addFilter(ContextFilter())
    caplog.set_level(logging.INFO)
    logging.getLogger().addHandler(handler)
    try:
        view = thin_path(client, people, {"X-Request-ID": request_id})
    finally:
        logging.getLogger().removeHandler(handler)
    assert view["deliveries"]["sent"] == 2

    # The web: the id comes back, and its lines (one per request at least) carry it.
    echoed = client.get("/healthz", headers={"X-Request-ID": request_id})
    assert echoed.headers["X-Request-ID"] == request_id
    web = [json.loads(line) for line in web_lines.getvalue().splitlines()]
    approvals = [
        line
        for line in web
        if line["logger"] == "ldis.request"
        and "/approve" in line["message"]
        and " 200 " in line["message"]
    ]
    assert len(approvals) == 2 and {line["request_id"] for line in approvals} == {request_id}

    # The worker (another process): every line is one JSON object; the tasks the approval
    # caused (the fan-out, and the delivery batch the fan-out sent) carry the same id.
    log_path = Path(container.settings.instance_path) / "worker.log"

    def tasks_with_id() -> set[str]:
        lines = json_lines(log_path)
        return {line.get("task", "") for line in lines if line.get("request_id") == request_id}

    tasks = wait_for(
        lambda: {"ldis.fan_out", "ldis.deliver_batch"} <= tasks_with_id() and tasks_with_id()
    )
    assert {"ldis.fan_out", "ldis.deliver_batch"} <= tasks
    worker_lines = json_lines(log_path)
    assert all({"time", "level", "logger", "message"} <= set(line) for line in worker_lines)
    # No personal data: the contact's phone and e-mail never appear in a worker line.
    text = log_path.read_text()
    assert "+447700900123" not in text and "duty@example.org" not in text


def test_a_bad_request_id_is_replaced_not_logged(client: FlaskClient) -> None:
    for bad in ("+44 7700 900123", "duty@example.org", "x" * 200, "a b", ""):
        response = client.get("/healthz", headers={"X-Request-ID": bad})
        given = response.headers["X-Request-ID"]
        assert given != bad and len(given) == 32 and given.isalnum(), given
    fresh = {client.get("/healthz").headers["X-Request-ID"] for _ in range(3)}
    assert len(fresh) == 3


def test_metrics_count_requests_deliveries_queues_and_time_to_alert(
    client: FlaskClient,
    people: People,
    container: Container,
    worker: subprocess.Popen[str],
) -> None:
    before = scrape(client)
    for _ in range(3):
        assert client.get("/healthz").status_code == 200
    assert client.get("/no-such-page").status_code == 404
    view = thin_path(client, people, {})
    assert view["deliveries"]["sent"] == 2
    after = scrape(client)

    healthz = {"route": "/healthz", "method": "GET", "status": "200"}
    assert (
        value(after, "ldis_http_requests_total", **healthz)
        == value(before, "ldis_http_requests_total", **healthz) + 3
    )
    approve = {"route": "/api/v1/alerts/<int:alert_id>/approve", "method": "POST"}
    assert (
        value(after, "ldis_http_requests_total", **approve, status="200")
        - value(before, "ldis_http_requests_total", **approve, status="200")
        == 2
    )
    assert value(after, "ldis_http_request_duration_seconds_count", **approve) >= 3  # 422, 403
    unmatched = {"route": "(no route)", "method": "GET", "status": "404"}
    assert value(after, "ldis_http_requests_total", **unmatched) >= 1

    # From the database: this test's fan-out (tables are emptied between tests).
    assert value(after, "ldis_deliveries", channel="sms", state="sent") == 1
    assert value(after, "ldis_deliveries", channel="email", state="sent") == 1
    assert value(after, "ldis_deliveries", channel="sms", state="queued") == 0
    assert value(after, "ldis_deliveries_oldest_pending_seconds", state="queued") == 0
    assert value(after, "ldis_signals", status="open", severity="amber") == 1
    stage = {"stage": "approval_to_delivery"}
    assert value(after, "ldis_time_to_alert_seconds_count", **stage) == 1
    assert value(after, "ldis_time_to_alert_seconds_bucket", **stage, le="60.0") == 1
    assert 0 < value(after, "ldis_time_to_alert_seconds_sum", **stage) < 60

    # From the broker and from the workers' telemetry in Redis.
    for source in ("database", "broker", "telemetry"):
        assert value(after, "ldis_metrics_source_up", source=source) == 1, source
    queues = {dict(labels)["queue"] for name, labels in after if name == "ldis_queue_messages"}
    assert queues == {"urgent", "standard"}
    beats = [
        v for (name, _), v in after.items() if name == "ldis_worker_heartbeat_timestamp_seconds"
    ]
    assert len(beats) == 2 and all(time.time() - beat < 30 for beat in beats), beats


def test_provider_outcomes_reach_metrics_from_the_channel(
    client: FlaskClient, settings: Settings, tmp_path: Path
) -> None:
    sid, token = "AC" + "1" * 32, "secret"
    with FakeTwilio(sid, token) as fake:
        fake.fail("+447700900500", 20500)  # a server error: transient
        fake.fail("+447700900911", 21211)  # an invalid number: permanent
        sms_settings = load_settings(
            {},
            instance_path=tmp_path,
            sms_channel="twilio",
            twilio_account_sid=sid,
            twilio_auth_token=token,
            twilio_from="+447700900000",
            twilio_base_url=fake.url,
            broker_url=settings.broker_url,
            broker_prefix=settings.broker_prefix,
            redis_url=settings.redis_url,
        )
        before = scrape(client)
        telemetry.use(telemetry.for_settings(sms_settings))  # as the worker's runtime does
        try:
            TwilioSender(sms_settings).send_many(
                [
                    OutgoingMessage(delivery_id=n, channel="sms", to=to, text="Alert")
                    for n, to in enumerate(("+447700900001", "+447700900500", "+447700900911"))
                ]
            )
        finally:
            telemetry.use(None)
    after = scrape(client)
    for outcome in ("sent", "transient_error", "permanent_error"):
        labels = {"channel": "sms", "outcome": outcome}
        increase = value(after, "ldis_provider_messages_total", **labels) - value(
            before, "ldis_provider_messages_total", **labels
        )
        assert increase == 1, (outcome, increase)


def test_metrics_are_refused_outside_the_allowed_networks(client: FlaskClient) -> None:
    outside = client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert outside.status_code == 403
    assert b"LDIS_METRICS_ALLOW" in outside.data and b"ldis_" not in outside.data
    # No token is set here, so a bearer header opens nothing.
    guessed = client.get(
        "/metrics",
        environ_base={"REMOTE_ADDR": "203.0.113.9"},
        headers={"Authorization": "Bearer "},
    )
    assert guessed.status_code == 403
