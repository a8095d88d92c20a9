"""`ldis run` on embedded defaults (SQLite, embedded broker, outbox) does the thin path over
real HTTP, and Ctrl-C stops web, worker and scheduler cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
import requests

from ldis.settings import PROJECT_ROOT
from ldis.store.migrate import head_revision
from tests.integration.conftest import wait_for
from tests.integration.thin_path import run_thin_path

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Embedded:
    def __init__(self, instance: Path) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("LDIS_")}
        self.env["LDIS_INSTANCE_PATH"] = str(instance)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = instance / "run.log"

    def ldis(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ldis.cli", *args],
            cwd=PROJECT_ROOT,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def token(self, email: str) -> dict[str, str]:
        result = self.ldis("tokens", "create", "--email", email)
        assert result.returncode == 0, result.stderr
        return {"Authorization": f"Bearer {result.stdout.strip().splitlines()[-1]}"}

    def totp(self, email: str) -> str:
        """Two-factor for a demo user, as an operator sets it up: the secret for an app."""
        result = self.ldis("users", "totp", "--email", email)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip().splitlines()[-1]


class App:
    """An authenticator app: a new code each time (the server never takes one twice)."""

    def __init__(self, secret: str) -> None:
        self.totp, self.last_step = pyotp.TOTP(secret), 0

    def code(self) -> str:
        self.last_step = max(int(time.time()) // 30, self.last_step + 1)
        return self.totp.generate_otp(self.last_step)


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[tuple[Embedded, subprocess.Popen[bytes]]]:
    instance = tmp_path / "instance"
    instance.mkdir()
    service = Embedded(instance)
    with service.log.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "ldis.cli", "run", "--port", str(service.port)],
            cwd=PROJECT_ROOT,
            env=service.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_for(
                lambda: _ready(service.url) or process.poll() is not None, timeout=90, interval=0.5
            )
            assert process.poll() is None, service.log.read_text()
            yield service, process
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)


def _ready(url: str) -> bool:
    try:
        return requests.get(f"{url}/readyz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def test_run_serves_the_thin_path_on_embedded_defaults_and_stops_on_ctrl_c(
    embedded: tuple[Embedded, subprocess.Popen[bytes]],
) -> None:
    service, process = embedded
    instance = Path(service.env["LDIS_INSTANCE_PATH"])
    assert (instance / "ldis.sqlite").exists() and (instance / "broker.sqlite").exists()
    assert requests.get(f"{service.url}/readyz", timeout=5).json()["checks"] == {
        "database": "ok",
        "broker": "ok",
    }

    demo = service.ldis("demo")
    assert demo.returncode == 0 and "user panel1@example.org" in demo.stdout, demo.stderr
    assert "user panel1@example.org" not in service.ldis("demo").stdout  # idempotent
    created = service.ldis(
        "users",
        "create",
        "--email",
        "Lab@Example.org",
        "--name",
        "Lab",
        "--role",
        "reporter",
        "--password-stdin",
        stdin="correct horse battery\n",
    )
    assert created.returncode == 0, created.stderr
    weak = service.ldis(
        "users",
        "create",
        "--email",
        "weak@example.org",
        "--name",
        "Weak",
        "--role",
        "reporter",
        "--password-stdin",
        stdin="password1234\n",
    )
    assert weak.returncode == 1 and weak.stderr.startswith("ldis: password: "), weak.stderr
    duplicate = service.ldis(
        "users", "create", "--email", "lab@example.org", "--name", "Lab", "--role", "reporter"
    )
    assert duplicate.returncode == 1 and duplicate.stderr.count("\n") == 1, duplicate.stderr

    def call(method: str, path: str, headers: dict[str, str], body: Any = None) -> tuple[int, Any]:
        response = requests.request(
            method, service.url + path, headers=headers, json=body, timeout=10
        )
        return response.status_code, response.json()

    # Approving over the API needs a code from each approver's authenticator app.
    panel = {n: f"panel{n}@example.org" for n in (1, 2, 3)}
    headers = {n: service.token(email) for n, email in panel.items()}
    apps = {headers[n]["Authorization"]: App(service.totp(panel[n])) for n in panel}
    view = run_thin_path(
        call,
        admin=service.token("admin@example.org"),
        reporter=service.token("lab@example.org"),
        drafter=headers[1],
        approvers=[headers[2], headers[3]],
        wait_for=wait_for,
        otp=lambda who: apps[who["Authorization"]].code(),
    )
    assert view["deliveries"]["sent"] == 2

    outbox = requests.get(f"{service.url}/outbox", timeout=5)
    assert outbox.status_code == 200 and "duty@example.org" in outbox.text
    assert "+447700900123" in outbox.text

    # Ctrl-C in a terminal reaches the whole foreground process group.
    os.killpg(process.pid, signal.SIGINT)
    assert process.wait(timeout=40) == 0, service.log.read_text()
    log = service.log.read_text()
    assert "stopped." in log
    leftover = subprocess.run(
        ["pgrep", "-g", str(process.pid)], capture_output=True, text=True, check=False
    )
    assert leftover.stdout.strip() == "", f"processes left running: {leftover.stdout}"


def test_a_bad_setting_stops_start_up_with_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LDIS_")}
    env |= {"LDIS_INSTANCE_PATH": str(tmp_path), "LDIS_APPROVALS_REQUIRED": "0"}
    result = subprocess.run(
        [sys.executable, "-m", "ldis.cli", "run"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "ldis: LDIS_APPROVALS_REQUIRED: Input should be greater than or equal to 1 (got '0')"
    ]


def test_db_upgrade_is_idempotent_on_sqlite(tmp_path: Path) -> None:
    service = Embedded(tmp_path)
    first = service.ldis("db", "upgrade")
    second = service.ldis("db", "upgrade")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    expected = f"database at revision {head_revision()}"
    assert first.stdout.strip() == second.stdout.strip() == expected
