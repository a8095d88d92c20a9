"""Integration fixtures: a throwaway PostgreSQL database per run (built by the real
migrations), a Redis key prefix per run, a real Celery worker process, and table
truncation between tests (a real worker uses its own connections, so per-test SAVEPOINT
rollback cannot isolate what it writes)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text, update
from sqlalchemy.exc import OperationalError

from ldis.bootstrap import Container, build
from ldis.domain import two_factor as two_factor_rules
from ldis.domain.recipients import DEFAULT_SERVICE_TYPES
from ldis.domain.roles import Role
from ldis.services import two_factor as two_factor_service
from ldis.services import vocabulary
from ldis.services.accounts import create_token, create_user
from ldis.settings import PROJECT_ROOT, Settings, load_settings
from ldis.store.migrate import upgrade
from ldis.store.models import Base, Partnership, ServiceType, User
from ldis.web.app import create_app

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
# The Celery broker of the integration tests: `redis` (default) or `rabbitmq`, which runs
# them on a RabbitMQ virtual host of their own (Redis then keeps only the shared counters:
# LDIS_REDIS_URL). test_rabbitmq_broker.py runs the delivery tests this way in every run.
TEST_BROKER = os.environ.get("TEST_BROKER", "redis")
RABBITMQ_URL = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672")
if TEST_BROKER not in ("redis", "rabbitmq"):
    raise RuntimeError(f"TEST_BROKER={TEST_BROKER!r}: use redis or rabbitmq")


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


def new_broker(prefix: str) -> dict[str, str]:
    """Broker settings for a run (or a rig) isolated by `prefix`: a Redis key prefix, or a
    RabbitMQ virtual host of that name (RabbitMQ has no key prefix). `drop_broker` ends it."""
    if TEST_BROKER == "redis":
        return {"LDIS_BROKER_URL": REDIS_URL, "LDIS_BROKER_PREFIX": prefix}
    vhost = prefix.rstrip(":")
    _rabbitmqctl("add_vhost", vhost)
    _rabbitmqctl(
        "set_permissions", "-p", vhost, RABBITMQ_URL.split("//")[1].split(":")[0], ".*", ".*", ".*"
    )
    return {
        "LDIS_BROKER_URL": f"{RABBITMQ_URL}/{vhost}",
        "LDIS_BROKER_PREFIX": prefix,  # still the prefix of the shared counters in Redis
        "LDIS_REDIS_URL": REDIS_URL,
    }


def drop_broker(env: dict[str, str]) -> None:
    """Remove what `new_broker` made: the virtual host, and the prefix's keys in Redis."""
    prefix = env["LDIS_BROKER_PREFIX"]
    if env["LDIS_BROKER_URL"].startswith("amqp://"):
        _rabbitmqctl("delete_vhost", env["LDIS_BROKER_URL"].rsplit("/", 1)[1])
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)


def _database_url(name: str) -> str:
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    name = f"ldis_test_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _database_url(name)
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def broker_env() -> Iterator[dict[str, str]]:
    env = new_broker(f"ldis-test-{secrets.token_hex(4)}:")
    yield env
    drop_broker(env)


@pytest.fixture(scope="session")
def broker_prefix(broker_env: dict[str, str]) -> str:
    return broker_env["LDIS_BROKER_PREFIX"]


@pytest.fixture(scope="session")
def settings_env(
    pg_database: str, broker_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """The environment a worker process gets; the in-test app uses the same settings."""
    return {
        "LDIS_INSTANCE_PATH": str(tmp_path_factory.mktemp("instance")),
        "LDIS_DATABASE_URL": pg_database,
        **broker_env,
        # JSON lines, as in production: test_observability.py reads the worker's.
        "LDIS_LOG_FORMAT": "json",
        "LDIS_SECRET_KEY": "test-secret-" + secrets.token_hex(8),
        "LDIS_APPROVALS_REQUIRED": "2",
        "LDIS_PUBLIC_URL": "http://ldis.test",
        # The suite signs in and files reports from one address and a few tokens, fast: the
        # limits themselves are tested with small values in test_rate_limits.py.
        "LDIS_LOGIN_RATE": "100000/minute",
        "LDIS_INTAKE_RATE": "100000/minute",
        "LDIS_WEBHOOK_RATE": "100000/minute",
        "LDIS_ACK_RATE": "100000/minute",
    }


@pytest.fixture(scope="session")
def settings(settings_env: dict[str, str]) -> Settings:
    return load_settings(settings_env)


@pytest.fixture(scope="session")
def container(settings: Settings) -> Iterator[Container]:
    built = build(settings)
    upgrade(built.db.engine)
    upgrade(built.db.engine)  # a second run must change nothing (idempotent)
    yield built
    built.close()


@pytest.fixture(autouse=True)
def _clean_tables(request: pytest.FixtureRequest) -> Iterator[None]:
    if "container" not in request.fixturenames:
        yield
        return
    yield
    db: Container = request.getfixturevalue("container")
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    # The session's worker may still be sending what a test queued (a verification code,
    # say): its row locks can deadlock the TRUNCATE, so try again after it finishes.
    for attempt in range(5):
        try:
            with db.db.transaction() as session:
                session.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
                # Reference data the migrations seed, put back as a new installation has it.
                session.add_all(
                    ServiceType(code=code, label=label) for code, label in DEFAULT_SERVICE_TYPES
                )
                session.add(Partnership(id=1, code="default", name="Default partnership"))
                session.flush()
                session.execute(
                    text("SELECT setval(pg_get_serial_sequence('partnerships', 'id'), 1)")
                )
            break
        except OperationalError:
            if attempt == 4:
                raise
            time.sleep(0.5)
    vocabulary.forget()


@pytest.fixture(scope="session")
def app(container: Container) -> Flask:
    return create_app(container)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


class Authenticators:
    """The tests' authenticator apps: each user's TOTP secret, and a current code that the
    server has not accepted yet (a code is never accepted twice, and a test may approve
    several times within one 30-second step)."""

    def __init__(self, container: Container) -> None:
        self.container = container
        self.secrets: dict[str, str] = {}
        self.last_step: dict[str, int] = {}

    def enrol(self, email: str) -> str:
        """Two-factor on for `email`, as `ldis users totp` does; return the secret."""
        email = email.lower()
        secret = two_factor_service.provision(
            self.container.db, email, key=self.container.settings.secret()
        )
        self.secrets[email] = secret
        self.last_step.pop(email, None)
        return secret

    def code(self, email: str) -> str:
        email = email.lower()
        secret = self.secrets[email]
        current = two_factor_rules.time_step(datetime.now(UTC))
        step = max(current, self.last_step.get(email, current - 1) + 1)
        if step > current + two_factor_rules.DRIFT_STEPS:
            # Every step the server accepts now is used up. A person would wait for the
            # next code; a test forgets the steps used instead (the replay rule itself is
            # tested in test_accounts.py).
            with self.container.db.transaction() as session:
                session.execute(update(User).where(User.email == email).values(totp_last_step=None))
            step = current
        self.last_step[email] = step
        return two_factor_rules.code_at(secret, step)


class People:
    """Make users with roles and hand back auth headers for them. Panel members and admins
    get two-factor set up (it is required of them); `otp(name)` is their current code, which
    the API needs to approve or withdraw."""

    def __init__(self, container: Container) -> None:
        self.container = container
        self.ids: dict[str, int] = {}
        self.apps = Authenticators(container)
        self._names: dict[str, str] = {}

    def headers(self, name: str, *roles: Role) -> dict[str, str]:
        email = f"{name}@example.org"
        if name not in self.ids:
            self.ids[name] = create_user(
                self.container.db, email=email, name=name.title(), roles=frozenset(roles)
            )
            if two_factor_rules.required_for(roles):
                self.apps.enrol(email)
        token = create_token(self.container.db, email=email, label="test")
        self._names[token] = name
        return {"Authorization": f"Bearer {token}"}

    def otp(self, name: str) -> str:
        """A current code from `name`'s authenticator app, not yet used."""
        return self.apps.code(f"{name}@example.org")

    def otp_for(self, headers: dict[str, str]) -> str:
        """The current code of whoever these headers belong to."""
        return self.otp(self._names[headers["Authorization"].removeprefix("Bearer ")])


@pytest.fixture
def people(container: Container) -> People:
    return People(container)


def wait_for(predicate: Any, timeout: float = 20.0, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


@pytest.fixture(scope="session")
def worker(settings_env: dict[str, str], container: Container) -> Iterator[subprocess.Popen[str]]:
    """A real Celery worker process consuming both queues, as `ldis worker` runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LDIS_")} | settings_env
    # Celery warns of running as root (as CI does) before logging is set up, as bare text.
    env["PYTHONWARNINGS"] = "ignore:You're running the worker with superuser:UserWarning"
    log_path = Path(settings_env["LDIS_INSTANCE_PATH"]) / "worker.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "ldis.cli", "worker", "--concurrency", "2"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    wait_for(lambda: "ready." in log_path.read_text() or process.poll() is not None, timeout=60)
    if process.poll() is not None:
        raise RuntimeError("worker failed to start:\n" + log_path.read_text())
    yield process
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()
