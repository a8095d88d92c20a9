"""Intake benchmark: report POSTs/s and latency under gunicorn with PostgreSQL, and CSV import.

Run:  .venv/bin/python benchmarks/intake.py   (needs PostgreSQL on 127.0.0.1, Redis, and `wrk`:
      apt-get install wrk)

1. Throughput: `wrk` with 2 threads and 32 connections for 20 s POSTs near-miss reports, each
   with different content (so none is a duplicate), to `ldis web` (gunicorn, default workers).
2. Latency at a fixed 100 req/s for 20 s: a paced client (one request every 10 ms, spread over
   8 keep-alive connections) records each request's latency; p50/p90/p99.
3. CSV import: `ldis import-callouts` of the Tempe file (3,379 rows) into an empty database,
   3 runs, median rows/s.

Each part runs in its own fresh PostgreSQL database, dropped afterwards. The load generator
shares the 2 cores with the server, so these are floors, not ceilings.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
TEMPE = ROOT / "tests" / "data" / "tempe_opioid_calls.csv"
LDIS = [sys.executable, "-m", "ldis.cli"]

LUA = r"""
counter = 0
request = function()
  counter = counter + 1
  local body = string.format('{"kind": "near_miss", "area": "BENCH", '
    .. '"occurred_at": "2026-11-21T23:40:00Z", "naloxone_doses": %d, "outcome": "hospital", '
    .. '"suspected_substances": ["heroin", "metonitazene"], '
    .. '"source": {"type": "outreach", "name": "bench"}, "notes": "thread %s item %d"}',
    counter % 5, tostring(wrk.thread):sub(-6), counter)
  return wrk.format("POST", "/api/v1/reports", {
    ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}, body)
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def database() -> Iterator[dict[str, str]]:
    name = f"ldis_bench_{secrets.token_hex(4)}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    instance = tempfile.mkdtemp(prefix="ldis-bench-")
    base = ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LDIS_")}
    env |= {
        "LDIS_DATABASE_URL": f"{base}/{name}",
        "LDIS_BROKER_URL": "redis://127.0.0.1:6379/0",
        "LDIS_BROKER_PREFIX": f"{name}:",
        "LDIS_INSTANCE_PATH": instance,
        "LDIS_SECRET_KEY": "bench",
        # The benchmark files hundreds of reports a second from one token: measure the
        # service, not the per-user intake limit (docs/security.md).
        "LDIS_INTAKE_RATE": "1000000/minute",
    }
    if os.environ.get("BENCH_WEB_WORKERS"):
        env["LDIS_WEB_WORKERS"] = os.environ["BENCH_WEB_WORKERS"]
    try:
        run(env, "db", "upgrade")
        yield env
    finally:
        shutil.rmtree(instance, ignore_errors=True)
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [*LDIS, *args], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return result.stdout


def token_for(env: dict[str, str]) -> str:
    run(
        env,
        "users",
        "create",
        "--email",
        "admin@bench.example.org",
        "--name",
        "A",
        "--role",
        "admin",
    )
    run(
        env,
        "users",
        "create",
        "--email",
        "lab@bench.example.org",
        "--name",
        "L",
        "--role",
        "reporter",
    )
    admin = (
        run(env, "tokens", "create", "--email", "admin@bench.example.org").strip().splitlines()[-1]
    )
    conn = http.client.HTTPConnection("127.0.0.1", int(env["BENCH_PORT"]))
    conn.request(
        "POST",
        "/api/v1/areas",
        body=json.dumps({"code": "BENCH", "name": "Bench"}),
        headers={"Authorization": f"Bearer {admin}", "Content-Type": "application/json"},
    )
    assert conn.getresponse().status == 201
    return run(env, "tokens", "create", "--email", "lab@bench.example.org").strip().splitlines()[-1]


@contextmanager
def web(env: dict[str, str]) -> Iterator[int]:
    port = free_port()
    env["BENCH_PORT"] = str(port)
    server = subprocess.Popen(
        [*LDIS, "web", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)


def wrk(port: int, token: str, seconds: int = 20) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(f'token = "{token}"\n' + LUA)
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            "-c32",
            f"-d{seconds}s",
            "--latency",
            "-s",
            script.name,
            f"http://127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(script.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    latency = {
        p: _ms(re.search(rf"\s{p}%\s+([\d.]+\w+)", out).group(1))  # type: ignore[union-attr]
        for p in ("50", "99")
    }
    return {
        "rps": rps,
        "p50": latency["50"],
        "p99": latency["99"],
        "non_2xx": float(errors.group(1)) if errors else 0.0,
    }


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def paced(port: int, token: str, rate: float = 100.0, seconds: int = 20) -> dict[str, float]:
    """Fixed arrival rate: latencies measured from each request's scheduled start."""
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()
    start = time.perf_counter() + 0.5
    total = int(rate * seconds)
    connections = 8

    def client(offset: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port)
        for n in range(offset, total, connections):
            due = start + n / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            body = json.dumps(
                {
                    "kind": "near_miss",
                    "area": "BENCH",
                    "occurred_at": "2026-11-21T23:40:00Z",
                    "naloxone_doses": n % 5,
                    "outcome": "hospital",
                    "suspected_substances": ["heroin"],
                    "source": {"type": "outreach"},
                    "notes": f"paced item {n}",
                }
            )
            conn.request(
                "POST",
                "/api/v1/reports",
                body=body,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            response = conn.getresponse()
            response.read()
            elapsed = (time.perf_counter() - due) * 1000
            with lock:
                latencies.append(elapsed)
                if response.status != 201:
                    failures[0] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    latencies.sort()
    return {
        "sent": len(latencies),
        "failures": failures[0],
        "p50": latencies[len(latencies) // 2],
        "p90": latencies[int(len(latencies) * 0.90)],
        "p99": latencies[int(len(latencies) * 0.99)],
    }


def csv_import_seconds() -> float:
    with database() as env:
        started = time.perf_counter()
        out = run(
            env,
            "import-callouts",
            str(TEMPE),
            "--source",
            "Tempe",
            "--map",
            "occurred_at=incident_date",
            "--map",
            "lat=latitude",
            "--map",
            "lon=longitude",
            "--map",
            "naloxone_given=narcan_given",
        )
        elapsed = time.perf_counter() - started
        assert out.startswith("accepted 3379"), out
        return elapsed


def main() -> None:
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    print(
        f"cores: {os.cpu_count()}; gunicorn workers: {os.environ.get('BENCH_WEB_WORKERS', 'default')}"
    )
    with database() as env, web(env) as port:
        token = token_for(env)
        wrk(port, token, seconds=3)  # warm up connections, caches and the vocabulary
        saturated = wrk(port, token)
        steady = paced(port, token)
    imports = [csv_import_seconds() for _ in range(3)]
    median_import = statistics.median(imports)
    print()
    print("| measure | value |")
    print("| --- | ---: |")
    print(f"| report POSTs/s (wrk, 32 connections, 20 s) | {saturated['rps']:.0f} |")
    print(
        f"| latency at saturation p50 / p99 | {saturated['p50']:.1f} / {saturated['p99']:.1f} ms |"
    )
    print(f"| non-2xx responses at saturation | {saturated['non_2xx']:.0f} |")
    print(
        f"| latency at 100 req/s p50 / p90 / p99 | {steady['p50']:.1f} / {steady['p90']:.1f} / "
        f"{steady['p99']:.1f} ms |"
    )
    print(f"| requests at 100 req/s (failures) | {steady['sent']:.0f} ({steady['failures']:.0f}) |")
    print(
        f"| Tempe CSV import, 3,379 rows, median of 3 (whole command) | {median_import:.2f} s "
        f"({3379 / median_import:.0f} rows/s) |"
    )


if __name__ == "__main__":
    main()
