"""Rate limits (docs/security.md): small limits on apps of their own, each on a fresh Redis
key prefix, so the rest of the suite (generous limits, see conftest) is unaffected."""

from __future__ import annotations

import dataclasses
import secrets

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from ldis.bootstrap import Container
from ldis.domain.roles import Role
from ldis.settings import load_settings
from ldis.web.app import create_app
from tests.integration.conftest import People
from tests.integration.webpages import csrf, text

pytestmark = pytest.mark.integration

SMALL = {
    "LDIS_LOGIN_RATE": "3/minute",
    "LDIS_INTAKE_RATE": "3/minute",
    "LDIS_WEBHOOK_RATE": "3/minute",
    "LDIS_ACK_RATE": "3/minute",
    "LDIS_MAX_BODY_BYTES": "4096",
}


def small_app(container: Container, settings_env: dict[str, str], **env: str) -> Flask:
    """An app with tiny limits whose counts start afresh (a new key prefix under the run's)."""
    prefix = env.pop("prefix", f"{settings_env['LDIS_BROKER_PREFIX']}{secrets.token_hex(4)}:")
    settings = load_settings({**settings_env, **SMALL, "LDIS_BROKER_PREFIX": prefix, **env})
    return create_app(dataclasses.replace(container, settings=settings))


@pytest.fixture
def limited(container: Container, settings_env: dict[str, str]) -> Flask:
    return small_app(container, settings_env)


def client_at(app: Flask, address: str) -> FlaskClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def login(client: FlaskClient) -> TestResponse:
    token = csrf(client.get("/login"))
    return client.post(
        "/login", data={"csrf_token": token, "email": "nobody@example.org", "password": "x" * 12}
    )


def assert_retry_after(response: TestResponse) -> None:
    assert response.status_code == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 60


def assert_limited_json(response: TestResponse) -> None:
    assert_retry_after(response)
    body = response.get_json()
    assert body["error"] == "rate_limited" and body["fields"] == {}
    assert "Try again in" in body["message"]


def test_the_fourth_login_attempt_a_minute_is_refused_with_retry_after(limited: Flask) -> None:
    browser = client_at(limited, "203.0.113.7")
    assert [login(browser).status_code for _ in range(3)] == [401, 401, 401]
    refused = login(browser)
    assert_retry_after(refused)
    assert refused.mimetype == "text/html" and "Too many requests" in text(refused)
    # Another address is not held back, and showing the form is never limited.
    assert login(client_at(limited, "198.51.100.9")).status_code == 401
    assert browser.get("/login").status_code == 200


def test_forgot_password_is_limited_per_address(limited: Flask) -> None:
    browser = client_at(limited, "203.0.113.8")
    token = csrf(browser.get("/login/forgot"))
    answers = [
        browser.post("/login/forgot", data={"csrf_token": token, "email": ""}).status_code
        for _ in range(4)
    ]
    assert answers == [422, 422, 422, 429]


def test_intake_is_limited_per_user_not_per_address(limited: Flask, people: People) -> None:
    client = limited.test_client()
    lab = people.headers("lab", Role.reporter)
    other = people.headers("other", Role.reporter)
    answers = [client.post("/api/v1/reports", json={}, headers=lab).status_code for _ in range(2)]
    answers.append(client.post("/api/v1/callouts", json=[], headers=lab).status_code)
    assert 429 not in answers
    # Reports and call-outs share the one budget.
    assert_limited_json(client.post("/api/v1/callouts", json=[], headers=lab))
    assert_limited_json(client.post("/api/v1/reports", json={}, headers=lab))
    # The same address with another user's token is not affected.
    assert client.post("/api/v1/reports", json={}, headers=other).status_code == 422


def test_twilio_webhooks_are_limited_per_address(limited: Flask) -> None:
    twilio = client_at(limited, "192.0.2.10")
    for path in ("/webhooks/twilio/inbound", "/webhooks/twilio/status", "/webhooks/twilio/inbound"):
        assert twilio.post(path, data={"Body": "HELP"}).status_code == 403  # unsigned
    assert_limited_json(twilio.post("/webhooks/twilio/status", data={}))
    assert client_at(limited, "192.0.2.11").post("/webhooks/twilio/status").status_code == 403


def test_ack_links_are_limited_per_address(limited: Flask) -> None:
    guesser = client_at(limited, "192.0.2.20")
    assert [guesser.get(f"/ack/guess{n}").status_code for n in range(3)] == [404, 404, 404]
    refused = guesser.get("/ack/guess4")
    assert_retry_after(refused)
    assert refused.mimetype == "text/html"
    assert client_at(limited, "192.0.2.21").get("/ack/guess").status_code == 404


def test_the_counts_are_shared_by_apps_on_the_same_redis_prefix(
    container: Container, settings_env: dict[str, str]
) -> None:
    prefix = f"{settings_env['LDIS_BROKER_PREFIX']}{secrets.token_hex(4)}:"
    first = small_app(container, settings_env, prefix=prefix)
    second = small_app(container, settings_env, prefix=prefix)
    assert first is not second
    assert [login(client_at(first, "203.0.113.50")).status_code for _ in range(2)] == [401, 401]
    assert login(client_at(second, "203.0.113.50")).status_code == 401
    assert_retry_after(login(client_at(first, "203.0.113.50")))
    assert_retry_after(login(client_at(second, "203.0.113.50")))
    # Another prefix (another deployment or test run) counts apart.
    assert login(client_at(small_app(container, settings_env), "203.0.113.50")).status_code == 401


def test_requests_are_served_when_redis_is_unreachable(
    container: Container, settings_env: dict[str, str]
) -> None:
    app = small_app(container, settings_env, LDIS_BROKER_URL="redis://127.0.0.1:1/0")
    guesser = client_at(app, "192.0.2.30")
    # Fails open onto per-process counts: answered, and still limited, never a 500.
    assert [guesser.get("/ack/x").status_code for _ in range(4)] == [404, 404, 404, 429]


def test_proxy_hops_are_trusted_only_when_configured(
    container: Container, settings_env: dict[str, str]
) -> None:
    direct = small_app(container, settings_env)
    proxied = small_app(container, settings_env, LDIS_TRUSTED_PROXIES="1")
    for app, expected in ((direct, [404, 404, 404, 429]), (proxied, [404, 404, 404, 404])):
        client = client_at(app, "10.0.0.1")  # the proxy
        answers = [
            client.get("/ack/x", headers={"X-Forwarded-For": f"192.0.2.{n}"}).status_code
            for n in range(4)
        ]
        assert answers == expected


def test_too_large_bodies_get_413_json_on_the_api_and_a_page_on_the_web(
    limited: Flask, people: People
) -> None:
    client = limited.test_client()
    lab = people.headers("lab", Role.reporter)
    huge = client.post("/api/v1/reports", json={"notes": "x" * 5000}, headers=lab)
    assert huge.status_code == 413
    assert huge.get_json() == {
        "error": "too_large",
        "message": "The request body is too large.",
        "fields": {},
    }
    page = client.post("/login", data={"email": "x" * 5000})
    assert page.status_code == 413 and page.mimetype == "text/html"
    assert "What you sent is too large" in text(page)
