"""Health and readiness: 200 when the database and broker answer, 503 with Retry-After when not."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from ldis.bootstrap import build
from ldis.settings import load_settings
from ldis.web.app import create_app
from tests.integration.test_embedded_run import free_port

pytestmark = pytest.mark.integration


def test_ready_when_postgres_and_redis_answer(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"] == {"database": "ok", "broker": "ok"}


def test_not_ready_and_json_503_when_dependencies_are_down(tmp_path: Path) -> None:
    dead = free_port()  # nothing listens here
    settings = load_settings(
        {},
        instance_path=tmp_path,
        database_url=f"postgresql+psycopg://postgres@127.0.0.1:{dead}/none?connect_timeout=2",
        broker_url=f"redis://127.0.0.1:{dead}/0",
    )
    container = build(settings)
    client = create_app(container).test_client()
    assert client.get("/healthz").status_code == 200  # alive, just not ready
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.headers["Retry-After"] == "10"
    assert ready.get_json()["checks"] == {"database": "unavailable", "broker": "unavailable"}
    api = client.post("/api/v1/reports", json={}, headers={"Authorization": "Bearer ldis_whatever"})
    assert api.status_code == 503 and api.headers["Retry-After"] == "10"
    assert api.get_json()["error"] == "unavailable"
