"""Parts of `benchmarks/fanout.py`: the providers, the bare client loops, the data set,
the worker processes and the /proc readings (CPU time, peak memory).

The providers run as processes of their own, so neither shares a GIL with the other, with
the benchmark driver or with ldis: `python benchmarks/_fanout_rig.py provider twilio|smtp`
serves the fake Twilio Messages API (`tests/fakes/twilio_api.py`) or an aiosmtpd server,
prints one JSON line (`{"url": ..., "port": ...}`) when it listens, then answers commands
on standard input, one JSON line each:

    reset                  forget everything received
    count                  {"standard": {n, first, last}, "urgent": {...}, "dups": n}
    first A,B,...          {"t": the earliest arrival of any message to these addresses}
    sample                 {"sample": the last message received (SMS body, raw e-mail)}

Arrival times are `time.time()` when the provider accepted the message (the fake Twilio
before its 201, aiosmtpd at the end of DATA), on the same clock as the driver's.

`python benchmarks/_fanout_rig.py bare sms|email TARGET START_AT SECONDS SAMPLE_FILE` is
one bare client loop: the real `twilio` client (as `workers/channels/twilio_sms.py` builds
it) or smtplib over one reused connection, sending the sample ldis sent (as bytes, with
`sendmail`, as ldis does), one message after another from START_AT for SECONDS; it prints
{"n", "t0", "t1", "cpu"}.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # allow plain `python benchmarks/_fanout_rig.py`
    sys.path.insert(0, str(REPO))

SID = "AC" + "8" * 32
TOKEN = "fanout-bench-auth-token"
FROM = "+447700900000"
MAIL_FROM = "ldis@example.org"
PUBLIC_URL = "http://ldis.test"
STATUS_CALLBACK = f"{PUBLIC_URL}/webhooks/twilio/status"

# Addresses by group: the fakes count the standard fan-out and the urgent alerts apart.
URGENT_PHONE, URGENT_MAIL = "+4477008", "@urgent.example.org"


def standard_phone(n: int) -> str:
    return f"+4477009{n:05d}"


def standard_mail(n: int) -> str:
    return f"c{n}@example.org"


def urgent_phone(j: int) -> str:
    return f"{URGENT_PHONE}{j:05d}"


def urgent_mail(j: int) -> str:
    return f"u{j}{URGENT_MAIL}"


def _group(to: str) -> str:
    return "urgent" if to.startswith(URGENT_PHONE) or to.endswith(URGENT_MAIL) else "standard"


# --- the providers (each in a process of its own) ------------------------------------------


class Tally:
    """What a provider accepted: counts and first/last arrival per group, first arrival per
    address (a second message to an address within one phase is a duplicate)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.groups: dict[str, dict[str, Any]] = {}
        self.first_by_to: dict[str, float] = {}
        self.dups = 0
        self.sample = ""

    def add(self, to: str, sample: str) -> None:
        now = time.time()
        with self.lock:
            g = self.groups.setdefault(_group(to), {"n": 0, "first": now, "last": now})
            g["n"] += 1
            g["last"] = now
            if to in self.first_by_to:
                self.dups += 1
            else:
                self.first_by_to[to] = now
            self.sample = sample

    def command(self, line: str) -> dict[str, Any]:
        verb, _, arg = line.strip().partition(" ")
        with self.lock:
            if verb == "reset":
                self.reset()
                return {"ok": True}
            if verb == "count":
                return {**{k: dict(v) for k, v in self.groups.items()}, "dups": self.dups}
            if verb == "first":
                times = [self.first_by_to[a] for a in arg.split(",") if a in self.first_by_to]
                if not times:
                    return {"t": None, "last": None, "n": 0}
                return {"t": min(times), "last": max(times), "n": len(times)}
            if verb == "sample":
                return {"sample": self.sample}
        return {"error": f"unknown command {verb!r}"}


def _serve_twilio(tally: Tally) -> tuple[dict[str, Any], Any]:
    from tests.fakes.twilio_api import FakeTwilio, ReceivedMessage

    class CountingTwilio(FakeTwilio):
        def _record(self, message: ReceivedMessage) -> None:
            if message.sid is not None:
                tally.add(message.to, message.body)
            super()._record(message)  # kept: reconciliation reads the list on a retry

    fake = CountingTwilio(SID, TOKEN).start()
    original_reset = tally.reset

    def reset() -> None:  # also the fake's own list (memory, and GETs that scan it)
        original_reset()
        with fake._lock:
            fake.requests.clear()

    tally.reset = reset  # type: ignore[method-assign]
    return {"url": fake.url}, fake.stop


def _serve_smtp(tally: Tally) -> tuple[dict[str, Any], Any]:
    from aiosmtpd.controller import Controller

    class Counting:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            raw = envelope.original_content or envelope.content
            tally.add(envelope.rcpt_tos[0], raw.decode("latin-1"))
            return "250 2.0.0 queued"

    port = free_port()
    controller = Controller(Counting(), hostname="127.0.0.1", port=port)
    controller.start()
    return {"port": port}, controller.stop


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def provider_main(kind: str) -> None:
    tally = Tally()
    address, stop = (_serve_twilio if kind == "twilio" else _serve_smtp)(tally)
    print(json.dumps(address), flush=True)
    try:
        for line in sys.stdin:
            print(json.dumps(tally.command(line)), flush=True)
    finally:
        stop()


class Provider:
    """Driver side of a provider process."""

    def __init__(self, kind: str, log_dir: Path) -> None:
        self.kind = kind
        self.process = subprocess.Popen(
            [sys.executable, __file__, "provider", kind],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=(log_dir / f"provider-{kind}.log").open("wb"),
            text=True,
            bufsize=1,
        )
        self.address = self._read()
        self._lock = threading.Lock()

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"provider {self.kind} exited (see its log)")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def call(self, command: str) -> dict[str, Any]:
        assert self.process.stdin is not None
        with self._lock:
            self.process.stdin.write(command + "\n")
            self.process.stdin.flush()
            return self._read()

    def count(self, group: str = "standard") -> int:
        return int(self.call("count").get(group, {}).get("n", 0))

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            if self.process.stdin:
                self.process.stdin.close()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# --- the bare client loops -----------------------------------------------------------------


def _twilio_sender(url: str) -> Any:
    """The client as `workers/channels/twilio_sms.py` builds it (without ldis's header
    keeping subclass): one `requests` session, keep-alive, per process."""
    from twilio.http.http_client import TwilioHttpClient
    from twilio.rest import Client

    from workers.channels.twilio_sms import environment_once

    http = TwilioHttpClient(timeout=15.0)
    environment_once(http, url)
    client = Client(SID, TOKEN, http_client=http)
    client.edge = None
    client.region = None
    client.api.base_url = url.rstrip("/")
    messages = client.api.v2010.account.messages
    return messages


def bare_main(kind: str, target: str, start_at: float, seconds: float, sample: Path) -> None:
    body = sample.read_text(encoding="latin-1")
    tag = secrets.token_hex(3)
    if kind == "sms":
        messages = _twilio_sender(target)

        def send(i: int) -> None:
            messages.create(
                to=f"+4477007{i % 100_000:05d}",
                from_=FROM,
                body=body,
                status_callback=STATUS_CALLBACK,
            )

        close = None
    else:
        host, port = target.rsplit(":", 1)
        connection = smtplib.SMTP(host, int(port), timeout=30)
        connection.ehlo()
        # The leanest client: the very bytes ldis sent, with only To and Message-ID put in
        # per message, handed to smtplib as bytes (as ldis does), never re-serialised.
        raw = sample.read_bytes()  # as received: CRLF line ends (read_text would drop the CRs)
        head = message_from_bytes(raw, policy=SMTP_POLICY)
        old_to = f"\r\nTo: {head['To']}\r\n".encode()
        old_id = f"\r\nMessage-ID: {head['Message-ID']}\r\n".encode()
        assert old_to in raw and old_id in raw, "the sample's headers are not where expected"

        def send(i: int) -> None:
            to = f"b{i}-{tag}@bare.example.org"
            data = raw.replace(old_to, f"\r\nTo: {to}\r\n".encode(), 1).replace(
                old_id, f"\r\nMessage-ID: <bare-{tag}-{i}@ldis>\r\n".encode(), 1
            )
            connection.sendmail(MAIL_FROM, [to], data)

        close = connection.quit
    for i in range(10):  # warm: connection made, code paths run once
        send(i)
    time.sleep(max(0.0, start_at - time.time()))
    n, t0, cpu0 = 0, time.time(), time.process_time()
    end = start_at + seconds
    while time.time() < end:
        send(10 + n)
        n += 1
    t1, cpu = time.time(), time.process_time() - cpu0
    if close:
        close()
    print(json.dumps({"n": n, "t0": t0, "t1": t1, "cpu": cpu}), flush=True)


@dataclass
class BareResult:
    rates: dict[str, float]  # kind -> messages/s (summed over that kind's processes)
    cpu_ms: dict[str, float]  # kind -> client CPU ms per message
    late: float  # worst start delay, s
    busy: float  # share of the machine's CPU busy during the timed window

    @property
    def total(self) -> float:
        return sum(self.rates.values())


def run_bare(
    plan: dict[str, int], targets: dict[str, str], samples: dict[str, Path], seconds: float
) -> BareResult:
    """Start `plan[kind]` loops of each kind at once; messages/s per kind."""
    start_at = time.time() + 2.5  # imports and warm-up done by then on this machine
    # The machine's CPU over the timed window only: the clients' start-up (imports, warm-up)
    # and exit are busy too, and once made a latency-bound plan look CPU-bound or not.
    window: list[tuple[float, float, float]] = []

    def sample() -> None:
        time.sleep(max(0.0, start_at - time.time()))
        window.append(machine_cpu())
        time.sleep(seconds)
        window.append(machine_cpu())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    procs = [
        (
            kind,
            subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "bare",
                    kind,
                    targets[kind],
                    repr(start_at),
                    repr(seconds),
                    str(samples[kind]),
                ],
                stdout=subprocess.PIPE,
                text=True,
            ),
        )
        for kind, count in plan.items()
        for _ in range(count)
    ]
    rates: dict[str, float] = {}
    cpu: dict[str, list[float]] = {}
    late = 0.0
    for kind, proc in procs:
        out, _ = proc.communicate(timeout=seconds + 60)
        if proc.returncode:
            raise RuntimeError(f"bare {kind} loop failed")
        r = json.loads(out.strip().splitlines()[-1])
        rates[kind] = rates.get(kind, 0.0) + r["n"] / (r["t1"] - r["t0"])
        cpu.setdefault(kind, []).append(1000 * r["cpu"] / max(1, r["n"]))
        late = max(late, r["t0"] - start_at)
    per_kind = {k: sum(v) / len(v) for k, v in cpu.items()}
    sampler.join()
    (busy0, _, total0), (busy1, _, total1) = window
    return BareResult(rates, per_kind, late, (busy1 - busy0) / max(1e-9, total1 - total0))


# --- the data set --------------------------------------------------------------------------


def seed(
    container: Any, contacts: int, urgent_areas: int, urgent_contacts: int
) -> dict[str, list[str]]:
    """Core bulk inserts: one area with `contacts` verified SMS + e-mail contacts (10 per
    service), `urgent_areas` small areas of `urgent_contacts` each, and a warm-up area.
    Returns {area code: [addresses]} for the urgent and warm-up areas."""
    from sqlalchemy import insert

    from ldis.store.models import Area, Contact, ContactChannel, Service, ServiceArea

    now = datetime.now(UTC)
    per_service = 10
    addresses: dict[str, list[str]] = {}

    def area(session: Any, code: str, people: list[tuple[str, str, str]]) -> None:
        area_id = session.scalar(
            insert(Area).values(code=code, name=code.title()).returning(Area.id)
        )
        services = list(
            session.scalars(
                insert(Service).returning(Service.id),
                [
                    {
                        "name": f"{code} service {n}",
                        "type": "needle_syringe_programme",
                        "alert_levels": ["professional", "public"],
                        "alert_kinds": [],
                    }
                    for n in range(-(-len(people) // per_service))
                ],
            )
        )
        session.execute(
            insert(ServiceArea), [{"service_id": s, "area_id": area_id} for s in services]
        )
        ids = list(
            session.scalars(
                insert(Contact).returning(Contact.id),
                [
                    {
                        "service_id": services[n // per_service],
                        "name": name,
                        "phone": ph,
                        "email": em,
                    }
                    for n, (name, ph, em) in enumerate(people)
                ],
            )
        )
        session.execute(
            insert(ContactChannel),
            [
                {"contact_id": c, "channel": kind, "verified_at": now}
                for c in ids
                for kind in ("sms", "email")
            ],
        )

    with container.db.transaction() as session:
        area(
            session,
            "BENCHSHIRE",
            [(f"Contact {n}", standard_phone(n), standard_mail(n)) for n in range(contacts)],
        )
        j = 0
        for k in range(urgent_areas + 1):
            code = f"URGENT{k}" if k < urgent_areas else "WARMUP"
            people = []
            for _ in range(urgent_contacts):
                people.append((f"Urgent {j}", urgent_phone(j), urgent_mail(j)))
                j += 1
            addresses[code] = [a for _, ph, em in people for a in (ph, em)]
            area(session, code, people)
    return addresses


# --- processes: workers, /proc ------------------------------------------------------------


@dataclass
class Processes:
    """`ldis worker` and `ldis beat` with the benchmark's settings, each in its own session."""

    env: dict[str, str]
    log_dir: Path
    running: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("LDIS_")} | self.env
        with (self.log_dir / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "ldis.cli", *args],
                cwd=REPO,
                env=environ,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.running[name] = process
        return process

    def start_worker(self, concurrency: int = 4) -> subprocess.Popen[bytes]:
        process = self.spawn("worker", ["worker", "--concurrency", str(concurrency)])
        log = self.log_dir / "worker.log"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if log.read_text(errors="replace").count(" ready.") >= 2:
                return process
            if process.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError("ldis worker did not start:\n" + log.read_text(errors="replace")[-5000:])

    def stop(self) -> None:
        """SIGTERM to `ldis worker` and `ldis beat` themselves (warm shutdown: the worker
        passes it on to its Celery workers), then SIGKILL to what is left after 20 s."""
        for process in self.running.values():
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
        for process in self.running.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # pool children, if any are left
        self.running.clear()


def _proc_table() -> dict[int, tuple[int, float, str]]:
    """pid -> (parent pid, CPU seconds, command line) for every process."""
    tick = os.sysconf("SC_CLK_TCK")
    table = {}
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            stat = (p / "stat").read_text()
            cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        table[int(p.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick, cmd)
    return table


def descendants(pid: int, table: dict[int, tuple[int, float, str]] | None = None) -> list[int]:
    table = table if table is not None else _proc_table()
    children: dict[int, list[int]] = {}
    for child, (parent, _, _) in table.items():
        children.setdefault(parent, []).append(child)
    found, todo = [], [pid]
    while todo:
        cur = todo.pop()
        if cur in table:
            found.append(cur)
        todo.extend(children.get(cur, []))
    return found


def machine_cpu() -> tuple[float, float, float]:
    """(busy, steal, total) CPU seconds of the whole machine so far (/proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (values + [0] * 8)[:8]
    tick = os.sysconf("SC_CLK_TCK")
    busy = user + nice + system + irq + softirq
    return busy / tick, steal / tick, (busy + idle + iowait + steal) / tick


def cpu_by_group(groups: dict[str, list[int]], db_name: str) -> dict[str, float]:
    """CPU seconds so far: each group's processes and their descendants, this benchmark's
    PostgreSQL backends (by database name), PostgreSQL's own shared processes, Redis."""
    table = _proc_table()
    out = {
        name: sum(table[p][1] for r in roots for p in descendants(r, table))
        for name, roots in groups.items()
    }
    me = os.getpid()  # the driver alone: its children are in the groups
    out["benchmark driver"] = table[me][1] if me in table else 0.0
    out["postgres (backends of this db)"] = sum(
        cpu
        for _, cpu, cmd in table.values()
        if cmd.startswith("postgres:") and f" {db_name} " in cmd
    )
    out["postgres (wal writer, checkpointer...)"] = sum(
        cpu
        for _, cpu, cmd in table.values()
        if cmd.startswith("postgres:") and "127.0.0.1(" not in cmd and "[local]" not in cmd
    )
    out["redis-server"] = sum(
        cpu for _, cpu, cmd in table.values() if cmd.startswith("redis-server")
    )
    return out


def peak_memory(root: int) -> list[tuple[str, int, float]]:
    """(label, pid, peak RSS in MB: VmHWM) of `root` and every process under it."""
    table = _proc_table()
    out = []
    for pid in descendants(root, table):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        hwm = next((ln.split()[1] for ln in status.splitlines() if ln.startswith("VmHWM:")), "0")
        parent, _, cmd = table[pid]
        if "ldis-urgent@" in cmd:
            label = "urgent worker"
        elif "celery" in cmd:
            label = "main worker"
        else:
            label = "ldis worker (supervisor)"
        if "celery" in cmd and "celery" in table.get(parent, (0, 0, ""))[2]:
            label += ", pool child"
        out.append((label, pid, int(hwm) / 1024))
    return sorted(out)


if __name__ == "__main__":
    if sys.argv[1] == "provider":
        provider_main(sys.argv[2])
    elif sys.argv[1] == "bare":
        kind, target, start_at, seconds, sample = sys.argv[2:7]
        bare_main(kind, target, float(start_at), float(seconds), Path(sample))
    else:
        raise SystemExit(f"unknown mode {sys.argv[1]!r}")
