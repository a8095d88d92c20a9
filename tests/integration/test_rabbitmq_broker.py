"""The delivery tests again, with RabbitMQ as the Celery broker (Redis then keeps only the
shared counters: LDIS_REDIS_URL). Run as a pytest of their own with TEST_BROKER=rabbitmq,
which gives the run, and each rig in it, a virtual host of its own (conftest.new_broker):
the kill -9 crash test, the flaky and failing providers, urgent first, and the thin path."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys

import pytest

from ldis.settings import PROJECT_ROOT
from tests.integration.conftest import RABBITMQ_URL

pytestmark = pytest.mark.integration

TESTS = (
    "tests/integration/test_delivery_crash.py::"
    "test_kill_9_mid_fan_out_loses_nothing_and_sends_no_text_twice",
    "tests/integration/test_delivery_failures.py",
    "tests/integration/test_delivery_urgent.py",
    "tests/integration/test_thin_path_postgres.py",
)


def test_the_delivery_tests_pass_on_rabbitmq() -> None:
    host, port = RABBITMQ_URL.rsplit("@", 1)[1].split(":")
    try:
        socket.create_connection((host, int(port.split("/")[0])), timeout=2).close()
    except OSError:
        pytest.fail(f"RabbitMQ is not running at {host}:{port} (.ci/run starts it)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LDIS_")}
    env["TEST_BROKER"] = "rabbitmq"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
    assert run.returncode == 0, run.stdout[-20_000:] + run.stderr[-5_000:]
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed.group(1)) >= 6, summary
    assert not re.search(r"skipped|failed|error", summary), summary
