"""Benchmark: embedded SQLite broker (kombu sqla transport) vs Redis, end to end.

Run:  PYTHONPATH=/work/main .venv/bin/python benchmarks/embedded_broker.py [--quick]

For each broker a real ``celery worker`` (prefork, concurrency 2) is started
and, over 3 repetitions (medians reported), we measure:

* enqueue/s and end-to-end tasks/s for N trivial tasks (first send -> last finish),
* the same for batch-style tasks carrying 100 ids each,
* enqueue-to-start latency for paced sends (queue empty, so this shows the
  broker's own floor, e.g. the polling interval, not backlog),
* worker CPU while idle (the price of polling).

Completion is detected by tasks appending one line per task to a file with
O_APPEND (atomic for short writes), so no result backend and the same cheap
counter for both brokers. The same module is the worker's Celery app
(``--worker``), so nothing outside this file is needed except
``workers.embedded_broker``.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # allow plain `python benchmarks/embedded_broker.py`
    sys.path.insert(0, str(REPO))

from celery import Celery  # noqa: E402

from workers.embedded_broker import (  # noqa: E402
    configure_embedded_transport,
    purge_consumed_messages,
)

REDIS_URL = "redis://127.0.0.1:6379/15"
CONCURRENCY = 2
BATCH_SIZE = 100


def make_app(broker: str, poll: float, queue: str, prefix: str) -> Celery:
    conf: dict[str, Any] = {
        "task_acks_late": True,
        "worker_prefetch_multiplier": 1,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,
        "task_default_queue": queue,
        "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
    }
    if broker.startswith("sqla+"):
        configure_embedded_transport(poll)
    else:
        # Unique key prefix so nothing collides with other users of db 15.
        conf["broker_transport_options"] = {"global_keyprefix": prefix}
    app = Celery("bench", broker=broker, set_as_current=True)
    app.conf.update(conf)

    def _record(run: str, sent_at: float, started: float) -> None:
        line = f"{started - sent_at:.6f} {time.time():.6f}\n".encode()
        fd = os.open(
            Path(os.environ["BENCH_DIR"]) / f"{run}.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT
        )
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    @app.task(name="bench.noop", shared=False)
    def noop(run: str, sent_at: float) -> None:
        _record(run, sent_at, time.time())

    @app.task(name="bench.batch", shared=False)
    def batch(run: str, sent_at: float, ids: list[int]) -> None:
        started = time.time()
        sum(ids)  # stand-in for per-id work
        _record(run, sent_at, started)

    return app


# --- worker side ---------------------------------------------------------------------------


def worker_main(broker: str, poll: float, queue: str, prefix: str) -> None:
    app = make_app(broker, poll, queue, prefix)
    app.worker_main(
        [
            "worker",
            "-c",
            str(CONCURRENCY),
            "-P",
            "prefork",
            "-Q",
            queue,
            "-l",
            "warning",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
    )


# --- driver side ---------------------------------------------------------------------------


def read_lines(path: Path) -> list[tuple[float, float]]:
    if not path.exists():
        return []
    out = []
    for raw in path.read_text().splitlines():
        lat, fin = raw.split()
        out.append((float(lat), float(fin)))
    return out


def wait_for(path: Path, n: int, timeout: float) -> list[tuple[float, float]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = read_lines(path)
        if len(rows) >= n:
            time.sleep(0.3)  # catch duplicates delivered late
            return read_lines(path)
        time.sleep(0.02)
    raise TimeoutError(f"{path.name}: {len(read_lines(path))}/{n} done after {timeout}s")


def proc_tree_cpu_s(pid: int) -> float:
    """utime+stime of pid and all its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    ticks: dict[int, int] = {}
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            stat = (p / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(p.name))
        ticks[int(p.name)] = int(fields[11]) + int(fields[12])
    total, todo = 0, [pid]
    while todo:
        cur = todo.pop()
        total += ticks.get(cur, 0)
        todo.extend(children.get(cur, []))
    return total / os.sysconf("SC_CLK_TCK")


@dataclass
class Rep:
    enqueue_s: float
    tasks_s: float
    batch_tasks_s: float
    batch_ids_s: float
    lat_med_ms: float
    lat_p95_ms: float


def throughput(app: Celery, name: str, d: Path, n: int, args: list[Any]) -> tuple[float, float]:
    run = uuid.uuid4().hex
    task = app.tasks[name]
    t0 = time.time()
    for _ in range(n):
        task.delay(run, time.time(), *args)
    t_sent = time.time()
    rows = wait_for(d / f"{run}.log", n, timeout=max(120.0, n / 5))
    if len(rows) != n:
        raise RuntimeError(f"{name}: expected {n} completions, got {len(rows)} (duplicates?)")
    return n / (t_sent - t0), n / (max(f for _, f in rows) - t0)


def latency(app: Celery, d: Path, n: int) -> tuple[float, float]:
    run = uuid.uuid4().hex
    for _ in range(n):
        app.tasks["bench.noop"].delay(run, time.time())
        time.sleep(random.uniform(0.02, 0.15))
    lats = sorted(lat for lat, _ in wait_for(d / f"{run}.log", n, timeout=60))
    return statistics.median(lats) * 1e3, lats[int(0.95 * (len(lats) - 1))] * 1e3


def bench_broker(label: str, broker: str, poll: float, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ldis-bench-") as tmp:
        d = Path(tmp)
        if broker == "sqla+sqlite":
            broker = f"sqla+sqlite:///{d / 'broker.sqlite'}"
        tag = uuid.uuid4().hex[:10]
        queue, prefix = f"ldisbench-{tag}", f"ldisbench-{tag}:"
        env = {**os.environ, "BENCH_DIR": str(d), "PYTHONPATH": str(REPO)}
        os.environ["BENCH_DIR"] = str(d)
        log = (d / "worker.log").open("w")
        worker = subprocess.Popen(
            [sys.executable, __file__, "--worker", broker, str(poll), queue, prefix],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        app = make_app(broker, poll, queue, prefix)
        try:
            throughput(app, "bench.noop", d, 1, [])  # worker up and pool forked
            reps: list[Rep] = []
            for _ in range(args.reps):
                enq, tps = throughput(app, "bench.noop", d, args.n, [])
                ids = list(range(BATCH_SIZE))
                _, btps = throughput(app, "bench.batch", d, args.batches, [ids])
                lat_med, lat_p95 = latency(app, d, args.latency_samples)
                reps.append(Rep(enq, tps, btps, btps * BATCH_SIZE, lat_med, lat_p95))
                if broker.startswith("sqla+"):
                    purge_consumed_messages(broker, older_than_seconds=0)  # the janitor
            time.sleep(1.0)
            c0, w0 = proc_tree_cpu_s(worker.pid), time.monotonic()
            time.sleep(args.idle)
            idle_pct = 100 * (proc_tree_cpu_s(worker.pid) - c0) / (time.monotonic() - w0)
        finally:
            app.close()
            worker.terminate()
            try:
                worker.wait(20)
            except subprocess.TimeoutExpired:
                worker.kill()
            log.close()
            if broker.startswith("redis"):
                import redis

                r = redis.Redis.from_url(REDIS_URL)
                keys = list(r.scan_iter(match=f"{prefix}*")) + list(r.scan_iter(match=f"*{queue}*"))
                if keys:
                    r.delete(*keys)
        text = (d / "worker.log").read_text()
        problems = sum(text.count(s) for s in ("database is locked", "Traceback", "ERROR"))

    def med(attr: str) -> float:
        return float(statistics.median(getattr(r, attr) for r in reps))

    return {
        "label": label,
        "enq": med("enqueue_s"),
        "tps": med("tasks_s"),
        "btps": med("batch_tasks_s"),
        "bids": med("batch_ids_s"),
        "lat": med("lat_med_ms"),
        "p95": med("lat_p95_ms"),
        "idle": idle_pct,
        "problems": problems,
    }


def redis_up() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", nargs=4, metavar=("BROKER", "POLL", "QUEUE", "PREFIX"))
    ap.add_argument("-n", type=int, default=2000, help="trivial tasks per repetition")
    ap.add_argument("--batches", type=int, default=200, help="100-id tasks per repetition")
    ap.add_argument("--latency-samples", type=int, default=60)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--idle", type=float, default=10.0, help="seconds of idle CPU sampling")
    ap.add_argument("--polls", default="0.1,1.0", help="sqla polling intervals to try")
    ap.add_argument("--quick", action="store_true", help="tiny run to smoke-test the harness")
    args = ap.parse_args()
    if args.worker:
        b, p, q, pre = args.worker
        worker_main(b, float(p), q, pre)
        return
    if args.quick:
        args.n, args.batches, args.latency_samples, args.reps, args.idle = 200, 20, 10, 1, 2.0

    configs = [
        (f"sqla+sqlite (embedded), poll {p}s", "sqla+sqlite", float(p))
        for p in args.polls.split(",")
    ]
    if redis_up():
        configs.append(("redis", REDIS_URL, 0.0))
    else:
        print(f"(skipping redis: {REDIS_URL} not reachable)", file=sys.stderr)
    rows = []
    for label, broker, poll in configs:
        print(f"... {label}", file=sys.stderr, flush=True)
        rows.append(bench_broker(label, broker, poll, args))

    print(
        f"\nprefork c={CONCURRENCY}, acks_late, prefetch 1; n={args.n} trivial, "
        f"{args.batches}x{BATCH_SIZE}-id batches; medians of {args.reps} reps\n"
    )
    print(
        "| broker | enqueue/s | trivial tasks/s e2e | batch tasks/s (ids/s) "
        "| latency median / p95 (ms) | idle worker CPU | log errors |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['label']} | {r['enq']:.0f} | {r['tps']:.0f} | {r['btps']:.0f} ({r['bids']:.0f}) "
            f"| {r['lat']:.1f} / {r['p95']:.1f} | {r['idle']:.1f}% | {r['problems']} |"
        )


if __name__ == "__main__":
    main()
