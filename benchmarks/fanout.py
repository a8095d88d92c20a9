"""Alert fan-out benchmark (issue 8): the providers' bare capacity and ldis's fan-out of
N contacts x (SMS + e-mail) against them, urgent latency under load, worker memory.

Run:  .venv/bin/python benchmarks/fanout.py [--contacts 10000] [--repeat 3]
      (needs PostgreSQL and Redis on 127.0.0.1, as `make test` does; TEST_PG_ADMIN_URL and
      TEST_REDIS_URL override them)

Self-contained: a throwaway PostgreSQL database built by the real migrations (dropped at
the end), a Redis key prefix of its own (deleted at the end), the fake Twilio Messages API
(`tests/fakes/twilio_api.py`) and an aiosmtpd server each in a process of its own
(`_fanout_rig.py`), `ldis worker` (main worker, concurrency 4 as deployed, and the urgent-only worker
beside it) and `ldis beat` as deployed, with `LDIS_SMS_CHANNEL=twilio`,
`LDIS_EMAIL_CHANNEL=smtp` and both rate limits at 5,000/s so they are not the limit.
The contacts (verified SMS + e-mail each, 10 per service) are written with Core bulk
inserts; alerts are drafted, submitted and approved through the real use cases
(`ldis.services.alerts`), the last approval timed.

Each repetition measures, in this order:

1. Bare capacity: the real `twilio` client (built as `workers/channels/twilio_sms.py`
   builds it) in a loop, and smtplib over one reused connection handing over the very
   bytes of the e-mail ldis sent (`sendmail`, as ldis does; only To and Message-ID put in),
   sending the very SMS body and e-mail ldis rendered in the warm-up, one message after
   another per process (as each ldis worker process sends); each provider alone with 1
   client process, then both at once with 1 + 1 and 2 + 2 client processes. The
   denominator of the ratio is the providers' capacity: the most the fakes took from both
   at once (1 + 1 as a rule; 2 + 2, where four clients and the fakes compete for the cores,
   takes less unless something else held the cores during 1 + 1). ldis's main worker ran 2 processes
   until the fan-out's CPU per message came near the bare client's; it now runs 4, to
   overlap the waits for the providers (`--concurrency`).
2. ldis fan-out: the last approval of a standard alert to all N contacts -> the last of
   its 2N messages accepted by the fakes (counted there); messages/s.
3. Urgent latency: another standard alert to all N contacts; once 1,000 of its messages are
   out, the last approvals of small urgent alerts (a few contacts each) a little apart;
   approval -> the first (and the last) message of each at the fakes. Then the rest of
   that standard alert is cancelled (as an update or a withdrawal cancels what has not
   gone), to keep the run short.
4. Peak RSS (VmHWM) of every `ldis worker` process (the workers live for the whole run,
   so each repetition's figure is the peak so far).

Medians over the repetitions, and the CPU each part took during the fan-out, are printed
as Markdown tables; the script exits 1 if a goal is missed.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for path in (REPO, REPO / "benchmarks"):  # allow plain `python benchmarks/fanout.py`
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import psycopg  # noqa: E402
import redis  # noqa: E402
from _fanout_rig import (  # noqa: E402
    FROM,
    MAIL_FROM,
    PUBLIC_URL,
    SID,
    TOKEN,
    Processes,
    Provider,
    cpu_by_group,
    machine_cpu,
    peak_memory,
    run_bare,
    seed,
)
from sqlalchemy import func, select  # noqa: E402

from ldis.bootstrap import Container, build  # noqa: E402
from ldis.domain.principal import Principal  # noqa: E402
from ldis.domain.roles import Role  # noqa: E402
from ldis.services import alerts  # noqa: E402
from ldis.services.accounts import create_user  # noqa: E402
from ldis.services.outbox_writer import cancel_queued  # noqa: E402
from ldis.settings import load_settings  # noqa: E402
from ldis.store.migrate import upgrade  # noqa: E402
from ldis.store.models import Delivery  # noqa: E402
from tests.integration.cases import decided_report  # noqa: E402

ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RATE = "5000"  # per second and provider account: far above what is reached here
GOAL_RATE, GOAL_RATIO, GOAL_URGENT_S, GOAL_RSS_MB = 500.0, 0.70, 1.0, 300.0
BARE_PLANS: dict[str, dict[str, int]] = {
    "SMS, 1 process": {"sms": 1},
    "e-mail, 1 process": {"email": 1},
    "both at once, 1 + 1": {"sms": 1, "email": 1},
    "both at once, 2 + 2": {"sms": 2, "email": 2},
}
REFERENCE = "both at once, 1 + 1"  # CPU figures are taken in this plan
BOTH_AT_ONCE = ("both at once, 1 + 1", "both at once, 2 + 2")


# --- set-up --------------------------------------------------------------------------------


@contextmanager
def database() -> Iterator[tuple[str, str]]:
    name = f"ldis_bench_fanout_{secrets.token_hex(4)}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield name, f"{base}/{name}"
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def redis_prefix() -> Iterator[str]:
    prefix = f"ldis-bench-fanout-{secrets.token_hex(4)}:"
    try:
        yield prefix
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        with suppress(redis.RedisError):
            keys = list(client.scan_iter(match=f"{prefix}*"))
            if keys:
                client.delete(*keys)


class Panel:
    """A drafter and two approvers; alerts made ready up to their last approval."""

    def __init__(self, container: Container) -> None:
        self.container = container
        tag = secrets.token_hex(3)
        self.drafter, self.first, self.last = (
            self._user(f"{role}-{tag}") for role in ("drafter", "approver1", "approver2")
        )

    def _user(self, name: str) -> Principal:
        email = f"{name}@example.org"
        roles = frozenset({Role.panel})
        user_id = create_user(self.container.db, email=email, name=name, roles=roles)
        return Principal(user_id=user_id, email=email, roles=roles)

    def prepare(self, area: str, priority: str, title: str) -> int:
        """A decided case, the alert drafted and submitted, one approval of the two."""
        c = self.container
        body = {
            "title": title,
            "template": "professional",
            "priority": priority,
            "areas": [area],
            "report_id": decided_report(c, self.drafter, area),
            "fields": {
                "summary": "Green tablets marked OC 80 contain metonitazene, a nitazene.",
                "advice": "Carry extra naloxone: more than one dose may be needed.",
            },
        }
        alert_id = int(alerts.draft_alert(c.db, self.drafter, body, templates=c.templates())["id"])
        alerts.submit_alert(c.db, self.drafter, alert_id)
        alerts.approve_alert(c.db, self.first, alert_id, required=2, queue=c.queue)
        return alert_id

    def approve(self, alert_id: int) -> float:
        """The last approval (writes the deliveries, enqueues the fan-out); its seconds."""
        started = time.time()
        alerts.approve_alert(
            self.container.db, self.last, alert_id, required=2, queue=self.container.queue
        )
        return time.time() - started


def statuses(container: Container, alert_id: int) -> dict[str, int]:
    with container.db.transaction() as session:
        rows = session.execute(
            select(Delivery.status, func.count())
            .where(Delivery.alert_id == alert_id)
            .group_by(Delivery.status)
        ).all()
    return {status: n for status, n in rows}


def wait(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"{what}: not within {timeout:.0f} s")


# --- one repetition ------------------------------------------------------------------------


@dataclass
class Rep:
    bare: dict[str, float] = field(default_factory=dict)  # plan label -> messages/s
    bare_split: dict[str, float] = field(default_factory=dict)  # kind -> msg/s in REFERENCE
    bare_cpu_ms: dict[str, float] = field(default_factory=dict)  # kind -> client CPU ms/msg
    bare_busy: float = 0.0  # machine CPU busy share during REFERENCE's timed window
    bare_cpu_total_ms: float = 0.0  # clients + fakes, CPU ms per message (half each kind)
    cpu_total_ms: float = 0.0  # every process of this benchmark, CPU ms per ldis message
    rate: float = 0.0
    approve_s: float = 0.0
    first_s: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)  # group -> cores used in the fan-out
    worker_ms: float = 0.0  # worker CPU ms per message
    urgent_first: list[float] = field(default_factory=list)
    urgent_all: list[float] = field(default_factory=list)
    urgent_during: int = 0
    urgent_approve_s: list[float] = field(default_factory=list)
    standard_b_rate: float = 0.0
    rss_mb: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def capacity(self) -> float:
        """The providers' capacity: the most the fakes took from both clients at once (1 + 1
        usually; 2 + 2 when something else held the cores during the 1 + 1 window)."""
        return max(self.bare[label] for label in BOTH_AT_ONCE)

    @property
    def ratio(self) -> float:
        return self.rate / self.capacity


@dataclass
class Bench:
    args: argparse.Namespace
    container: Container
    panel: Panel
    twilio: Provider
    smtp: Provider
    db_name: str
    worker_pid: int
    beat_pid: int
    urgent_addresses: dict[str, list[str]]
    samples: dict[str, Path]
    profiles: int = 0

    @property
    def providers(self) -> tuple[Provider, Provider]:
        return self.twilio, self.smtp

    def reset(self) -> None:
        for provider in self.providers:
            provider.call("reset")

    def counts(self) -> list[dict[str, Any]]:
        return [provider.call("count") for provider in self.providers]

    def standard_sent(self) -> int:
        return sum(c.get("standard", {}).get("n", 0) for c in self.counts())

    def cpu(self) -> dict[str, float]:
        groups = {
            "ldis worker (all processes)": [self.worker_pid],
            "fake Twilio": [self.twilio.process.pid],
            "aiosmtpd": [self.smtp.process.pid],
            "ldis beat": [self.beat_pid],
        }
        return cpu_by_group(groups, self.db_name)

    def bare(self, rep: Rep) -> None:
        targets = {
            "sms": self.twilio.address["url"],
            "email": f"127.0.0.1:{self.smtp.address['port']}",
        }
        for label, plan in BARE_PLANS.items():
            self.reset()
            cpu0 = self.cpu()
            result = run_bare(plan, targets, self.samples, self.args.bare_seconds)
            cpu1 = self.cpu()
            counted = self.standard_sent()
            expected = result.total * self.args.bare_seconds
            if counted < 0.9 * expected:
                rep.problems.append(
                    f"bare {label}: fakes counted {counted}, clients {expected:.0f}"
                )
            if result.late > 0.3:
                rep.problems.append(f"bare {label}: a client started {result.late:.1f} s late")
            rep.bare[label] = result.total
            if label == REFERENCE:
                rep.bare_split = result.rates
                rep.bare_busy = result.busy
                # CPU per message, half SMS and half e-mail as ldis sends them: each
                # client's own (timed window) plus its fake's (all it received).
                per_kind = [
                    result.cpu_ms[kind]
                    + 1000 * (cpu1[fake] - cpu0[fake]) / max(1, provider.count())
                    for kind, fake, provider in (
                        ("sms", "fake Twilio", self.twilio),
                        ("email", "aiosmtpd", self.smtp),
                    )
                ]
                rep.bare_cpu_total_ms = sum(per_kind) / 2
            if len(plan) == 1:
                rep.bare_cpu_ms.setdefault(*next(iter(result.cpu_ms.items())))

    def profiler(self) -> subprocess.Popen[bytes] | None:
        """py-spy on every worker process for the fan-out (`--profile DIR`), raw stacks."""
        if not self.args.profile:
            return None
        self.args.profile.mkdir(parents=True, exist_ok=True)
        self.profiles += 1
        out = self.args.profile / f"fanout-{self.profiles}.txt"
        spy = Path(sys.executable).with_name("py-spy")
        command = [str(spy), "record", "--subprocesses", "--pid", str(self.worker_pid)]
        # --gil: only samples of a thread holding the GIL, i.e. running Python code, so
        # the profile shows where CPU goes, not where the worker waits for a provider.
        command += ["--rate", "100", "--format", "raw", "--output", str(out), "--nonblocking"]
        command += ["--gil"]
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def fan_out(self, rep: Rep, alert_id: int) -> None:
        total = 2 * self.args.contacts
        self.reset()
        cpu0, (busy0, steal0, all0) = self.cpu(), machine_cpu()
        profiler = self.profiler()
        t0 = time.time()
        rep.approve_s = self.panel.approve(alert_id)
        wait(lambda: self.standard_sent() >= total, 600, "standard fan-out")
        cpu1, (busy1, steal1, all1) = self.cpu(), machine_cpu()
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(60)
        counts = self.counts()
        end = max(c["standard"]["last"] for c in counts)
        rep.first_s = min(c["standard"]["first"] for c in counts) - t0
        rep.rate = total / (end - t0)
        wall = (all1 - all0) / (os.cpu_count() or 1)
        rep.cpu = {k: (cpu1[k] - cpu0[k]) / wall for k in cpu0}
        rep.cpu["machine busy"] = (busy1 - busy0) / wall
        rep.cpu["of which other users of the machine"] = rep.cpu["machine busy"] - sum(
            v for k, v in rep.cpu.items() if k != "machine busy"
        )
        rep.cpu["machine steal"] = (steal1 - steal0) / wall
        rep.cpu_total_ms = 1000 * sum(cpu1[k] - cpu0[k] for k in cpu0) / total
        workers = "ldis worker (all processes)"
        rep.worker_ms = 1000 * (cpu1[workers] - cpu0[workers]) / total
        dups = sum(c["dups"] for c in counts)
        if dups:
            rep.problems.append(f"fan-out: {dups} messages sent twice to an address")
        found = wait(
            lambda: (s := statuses(self.container, alert_id)).get("sent", 0) >= total and s,
            30,
            "fan-out recorded",
        )
        if set(found) != {"sent"}:
            rep.problems.append(f"fan-out: delivery states {found}")

    def urgent(self, rep: Rep, standard: int, urgent: list[tuple[str, int]]) -> None:
        total = 2 * self.args.contacts
        spacing = self.args.urgent_every or min(2.0, max(0.5, 0.5 * total / rep.rate / len(urgent)))
        self.reset()
        t0 = time.time()
        self.panel.approve(standard)
        wait(lambda: self.standard_sent() >= min(1000, total // 10), 120, "standard under way")
        started, approved = time.time(), []
        for k, (_, alert_id) in enumerate(urgent):
            at = time.time()
            rep.urgent_approve_s.append(self.panel.approve(alert_id))
            approved.append(at)
            time.sleep(max(0.0, started + (k + 1) * spacing - time.time()))

        def arrived(area: str) -> dict[str, Any]:
            addresses = ",".join(self.urgent_addresses[area])
            answers = [p.call(f"first {addresses}") for p in self.providers]
            return {
                "n": sum(a["n"] for a in answers),
                "t": min((a["t"] for a in answers if a["t"]), default=None),
                "last": max((a["last"] for a in answers if a["last"]), default=None),
            }

        wait(
            lambda: all(
                arrived(area)["n"] == len(self.urgent_addresses[area]) for area, _ in urgent
            ),
            120,
            "urgent alerts",
            every=0.2,
        )
        # Measured: stop the standard alert (what has not gone is cancelled, as a withdrawal
        # or an update does) rather than wait for it, to keep the run short.
        stopped = time.time()
        sent = self.standard_sent()
        with self.container.db.transaction() as session:
            left = cancel_queued(session, standard, reason="benchmark: stopped")
        if not left:
            rep.problems.append("urgent phase: the standard fan-out finished before the end")
        rep.standard_b_rate = sent / (stopped - t0)
        for (area, _), at in zip(urgent, approved, strict=True):
            got = arrived(area)
            rep.urgent_first.append(got["t"] - at)
            rep.urgent_all.append(got["last"] - at)
            rep.urgent_during += got["last"] < stopped
        dups = sum(c["dups"] for c in self.counts())
        if dups:
            rep.problems.append(f"urgent phase: {dups} messages sent twice to an address")
        # Settle before the next phase: batches in flight finish, the tasks left find nothing.
        queue = redis.Redis.from_url(REDIS_URL)
        wait(
            lambda: (
                not statuses(self.container, standard).get("sending")
                and not queue.llen(f"{self.container.settings.broker_prefix}standard")
            ),
            120,
            "standard queue drained",
            every=0.2,
        )

    def repetition(self, n: int) -> Rep:
        rep = Rep()
        tag = f"run {n} {secrets.token_hex(2)}"
        big = self.panel.prepare("BENCHSHIRE", "standard", f"Fan-out benchmark {tag}")
        big_b = self.panel.prepare("BENCHSHIRE", "standard", f"Fan-out under urgent {tag}")
        urgent = [
            (area, self.panel.prepare(area, "urgent", f"Urgent {area} {tag}"))
            for area in self.urgent_addresses
            if area.startswith("URGENT")
        ]
        time.sleep(2.0)  # the reports' cluster detection tasks, queued above, run now
        self.bare(rep)
        self.fan_out(rep, big)
        self.urgent(rep, big_b, urgent)
        rep.rss_mb = max(mb for _, _, mb in peak_memory(self.worker_pid))
        return rep


# --- reporting -----------------------------------------------------------------------------


def med(values: list[float]) -> float:
    return float(statistics.median(values))


def row(label: str, values: list[float], fmt: str = "{:,.0f}") -> str:
    cells = " | ".join(fmt.format(v) for v in values)
    return f"| {label} | {cells} | **{fmt.format(med(values))}** |"


def report(reps: list[Rep], memory: list[tuple[str, int, float]], args: argparse.Namespace) -> bool:
    n = len(reps)
    head = " | ".join(f"run {i + 1}" for i in range(n))
    print(f"\n| measure | {head} | median |")
    print("| --- |" + " ---: |" * (n + 1))
    for label in BARE_PLANS:
        print(row(f"bare {label}, msg/s", [r.bare[label] for r in reps]))
    for kind in ("sms", "email"):
        print(row(f"  of which {kind} (1 + 1)", [r.bare_split.get(kind, 0) for r in reps]))
    print(row("machine CPU busy during bare 1 + 1", [100 * r.bare_busy for r in reps], "{:.0f} %"))
    for kind in ("sms", "email"):
        print(row(f"bare client CPU per {kind}, ms", [r.bare_cpu_ms[kind] for r in reps], "{:.2f}"))
    total = 2 * args.contacts
    print(row(f"**ldis fan-out {total:,} msgs, msg/s**", [r.rate for r in reps]))
    print(row("  providers' capacity (most of both at once), msg/s", [r.capacity for r in reps]))
    print(row("  ratio to the providers' capacity", [100 * r.ratio for r in reps], "{:.0f} %"))
    print(row("  last approval call (writes deliveries), s", [r.approve_s for r in reps], "{:.2f}"))
    print(row("  approval -> first standard message, s", [r.first_s for r in reps], "{:.2f}"))
    print(row("  ldis worker CPU per message, ms", [r.worker_ms for r in reps], "{:.2f}"))
    cores = os.cpu_count() or 1
    print(
        row(
            "CPU per message, bare (clients + fakes, half SMS), ms",
            [r.bare_cpu_total_ms for r in reps],
            "{:.2f}",
        )
    )
    print(
        row(
            "CPU per message, ldis (workers, fakes, PostgreSQL, Redis), ms",
            [r.cpu_total_ms for r in reps],
            "{:.2f}",
        )
    )
    print(
        row(
            f"  CPU-bound ceiling on {cores} idle cores, bare, msg/s",
            [1000 * cores / r.bare_cpu_total_ms for r in reps],
        )
    )
    print(
        row(
            f"  CPU-bound ceiling on {cores} idle cores, ldis, msg/s",
            [1000 * cores / r.cpu_total_ms for r in reps],
        )
    )
    print(
        row("urgent: approval -> first msg p50, s", [med(r.urgent_first) for r in reps], "{:.2f}")
    )
    print(
        row("urgent: approval -> first msg max, s", [max(r.urgent_first) for r in reps], "{:.2f}")
    )
    print(row("urgent: approval -> all msgs p50, s", [med(r.urgent_all) for r in reps], "{:.2f}"))
    print(
        row("urgent: last approval call p50, s", [med(r.urgent_approve_s) for r in reps], "{:.2f}")
    )
    print(row("urgent alerts done while standard ran", [r.urgent_during for r in reps], "{:.0f}"))
    print(row("standard fan-out under urgent, msg/s", [r.standard_b_rate for r in reps]))
    print(row("worker peak RSS so far (max process), MB", [r.rss_mb for r in reps], "{:.0f}"))

    print("\nCPU during the ldis fan-out (cores used, of 2; medians):\n")
    print("| process | cores |")
    print("| --- | ---: |")
    for key in reps[0].cpu:
        print(f"| {key} | {med([r.cpu[key] for r in reps]):.2f} |")
    print("\nWorker processes, peak RSS (VmHWM) at the end:\n")
    print("| process | pid | MB |")
    print("| --- | ---: | ---: |")
    for label, pid, mb in memory:
        print(f"| {label} | {pid} | {mb:.0f} |")

    urgent_all = [x for r in reps for x in r.urgent_first]
    goals = [
        ("fan-out >= 500 msg/s", med([r.rate for r in reps]) >= GOAL_RATE),
        ("fan-out >= 70 % of bare", med([r.ratio for r in reps]) >= GOAL_RATIO),
        ("urgent p50 < 1 s", med(urgent_all) < GOAL_URGENT_S),
        ("worker RSS < 300 MB", max(mb for _, _, mb in memory) < GOAL_RSS_MB),
    ]
    print(
        f"\nurgent, all {len(urgent_all)} alerts of all runs: p50 {med(urgent_all):.2f} s, "
        f"max {max(urgent_all):.2f} s"
    )
    print("goals: " + "; ".join(f"{g}: {'met' if ok else 'MISSED'}" for g, ok in goals))
    for i, r in enumerate(reps, 1):
        for problem in r.problems:
            print(f"run {i}: {problem}")
    return all(ok for _, ok in goals)


# --- main ----------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--urgent", type=int, default=10, help="urgent alerts per run")
    parser.add_argument("--urgent-contacts", type=int, default=5, help="contacts per urgent alert")
    parser.add_argument(
        "--urgent-every",
        type=float,
        default=0.0,
        help="seconds between urgent approvals "
        "(default: spread over the first half of the standard fan-out, 0.5-3 s)",
    )
    parser.add_argument("--bare-seconds", type=float, default=3.0)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=4,
        help="`ldis worker --concurrency` (default 4, as deployed)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="LDIS_DELIVERY_BATCH_SIZE for the workers (default: the setting's default)",
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep the worker logs")
    parser.add_argument(
        "--profile",
        type=Path,
        help="record the workers with py-spy during each fan-out (raw stacks into this folder)",
    )
    args = parser.parse_args()

    def interrupted(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    # Clean up (database, Redis keys, processes) on SIGTERM too, and on SIGINT even when
    # started in the background (where the shell ignores it).
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)

    began = time.time()
    load0 = os.getloadavg()
    logs = Path(tempfile.mkdtemp(prefix="ldis-bench-fanout-"))
    with database() as (db_name, db_url), redis_prefix() as prefix:
        twilio = Provider("twilio", logs)
        smtp = Provider("smtp", logs)
        env = {
            "LDIS_INSTANCE_PATH": str(logs / "instance"),
            "LDIS_DATABASE_URL": db_url,
            "LDIS_BROKER_URL": REDIS_URL,
            "LDIS_BROKER_PREFIX": prefix,
            "LDIS_SECRET_KEY": "bench-" + secrets.token_hex(8),
            "LDIS_PUBLIC_URL": PUBLIC_URL,
            "LDIS_MAIL_FROM": MAIL_FROM,
            "LDIS_SMS_CHANNEL": "twilio",
            "LDIS_TWILIO_ACCOUNT_SID": SID,
            "LDIS_TWILIO_AUTH_TOKEN": TOKEN,
            "LDIS_TWILIO_FROM": FROM,
            "LDIS_TWILIO_BASE_URL": twilio.address["url"],
            "LDIS_EMAIL_CHANNEL": "smtp",
            "LDIS_SMTP_HOST": "127.0.0.1",
            "LDIS_SMTP_PORT": str(smtp.address["port"]),
            "LDIS_SMTP_STARTTLS": "false",
            "LDIS_SMS_RATE_PER_SECOND": RATE,
            "LDIS_EMAIL_RATE_PER_SECOND": RATE,
        }
        if args.batch_size:
            env["LDIS_DELIVERY_BATCH_SIZE"] = str(args.batch_size)
        settings = load_settings(env)
        container = build(settings)
        processes = Processes(env, logs)
        ok = False
        try:
            upgrade(container.db.engine)
            t = time.perf_counter()
            addresses = seed(container, args.contacts, args.urgent, args.urgent_contacts)
            seeded = time.perf_counter() - t
            panel = Panel(container)
            worker = processes.start_worker(args.concurrency)
            beat = processes.spawn("beat", ["beat"])
            bench = Bench(
                args, container, panel, twilio, smtp, db_name, worker.pid, beat.pid, addresses, {}
            )
            # Warm-up: an urgent alert to a few contacts; its texts are the bare loops' samples.
            warm = panel.prepare("WARMUP", "urgent", "Fan-out benchmark warm-up")
            panel.approve(warm)
            wait(lambda: twilio.count("urgent") and smtp.count("urgent"), 60, "warm-up alert")
            time.sleep(0.5)
            for kind, provider in (("sms", twilio), ("email", smtp)):
                bench.samples[kind] = logs / f"sample-{kind}.txt"
                bench.samples[kind].write_text(provider.call("sample")["sample"], "latin-1")
            print(
                f"cores: {os.cpu_count()}; load average {load0[0]:.2f} {load0[1]:.2f} "
                f"{load0[2]:.2f}; {args.contacts:,} contacts seeded in {seeded:.1f} s; "
                f"SMS {len(bench.samples['sms'].read_text('latin-1'))} chars, e-mail "
                f"{bench.samples['email'].stat().st_size:,} bytes",
                flush=True,
            )
            reps = []
            for n in range(1, args.repeat + 1):
                rep = bench.repetition(n)
                reps.append(rep)
                print(
                    f"run {n}: bare {rep.capacity:.0f}/s, ldis {rep.rate:.0f}/s "
                    f"({100 * rep.ratio:.0f} %), urgent p50 {med(rep.urgent_first):.2f} s, "
                    f"max {max(rep.urgent_first):.2f} s, RSS {rep.rss_mb:.0f} MB "
                    f"[{time.time() - began:.0f} s]",
                    flush=True,
                )
            memory = peak_memory(worker.pid)
            load1 = os.getloadavg()
            ok = report(reps, memory, args)
            print(
                f"\nload average at the end {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}; "
                f"whole run {time.time() - began:.0f} s"
            )
        except BaseException:
            with suppress(OSError):
                for log in sorted(logs.glob("*.log")):
                    print(f"--- {log.name} (tail)", file=sys.stderr)
                    print(log.read_text(errors="replace")[-4000:], file=sys.stderr)
            raise
        finally:
            processes.stop()
            twilio.stop()
            smtp.stop()
            container.close()
            if args.keep_logs:
                print(f"logs kept in {logs}")
            else:
                shutil.rmtree(logs, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
