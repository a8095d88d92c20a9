"""The rig the delivery reliability tests share, and tests of its parts.

`Rig` runs the real thing as deployed, in processes of its own: `ldis worker` (the main and
the urgent-only Celery workers) and `ldis beat` (the sweeper), with Twilio SMS aimed at the
fake and SMTP e-mail at a local aiosmtpd, on a broker prefix (or a Redis) of its own, so
nothing here is consumed by the session's worker. `seed` writes thousands of recipients
straight into the tables; `approve` makes an alert through the real use cases.

The tests here check the parts the others stand on: the fake's message list and the
channel's reconciliation against it, and the token bucket shared through Redis.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from aiosmtpd.controller import Controller
from sqlalchemy import func, insert, select

from ldis.bootstrap import Container, build
from ldis.domain.messages import OutgoingMessage
from ldis.domain.roles import Role
from ldis.services import alerts
from ldis.settings import PROJECT_ROOT, load_settings
from ldis.store.models import Area, Contact, ContactChannel, Delivery, Service, ServiceArea
from tests.fakes.twilio_api import FakeTwilio
from tests.integration.cases import decided_report
from tests.integration.conftest import REDIS_URL, drop_broker, new_broker, wait_for
from tests.integration.selfservice import user
from workers.channels.twilio_sms import TwilioSender
from workers.ratelimit import MAX_BLOCK, RedisBucket, urgency

pytestmark = pytest.mark.integration

SID = "AC" + "7" * 32
TOKEN = "rig-auth-token"
FROM = "+447700900000"
ACK = re.compile(r"/ack/([A-Za-z0-9._-]+)")
MESSAGE_ID = re.compile(rb"^Message-ID:\s*<delivery-(\d+)@ldis>", re.MULTILINE | re.IGNORECASE)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class MailCounter:
    """An aiosmtpd handler that only counts mails per delivery (by Message-ID), and refuses
    the addresses in `refuse` with a permanent 550."""

    def __init__(self) -> None:
        self.by_delivery: Counter[int] = Counter()
        self.refuse: set[str] = set()
        self._lock = threading.Lock()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        found = MESSAGE_ID.search(envelope.original_content or envelope.content)
        with self._lock:
            self.by_delivery[int(found.group(1)) if found else -1] += 1
        return "250 2.0.0 queued"


@contextlib.contextmanager
def smtp_server() -> Iterator[tuple[MailCounter, int]]:
    handler = MailCounter()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


@contextlib.contextmanager
def redis_server() -> Iterator[RedisProcess]:
    """A redis-server of our own that keeps nothing on disk, to be killed and restarted."""
    server = RedisProcess(free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class RedisProcess:
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        wait_for(lambda: _pings(client), timeout=10)

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        self.kill()


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


class Rig:
    """Worker and scheduler processes with settings of their own, over the test database."""

    def __init__(
        self, base_env: dict[str, str], tmp_path: Path, fake: FakeTwilio, smtp_port: int, **env: str
    ) -> None:
        self.tmp_path = tmp_path
        # A broker of its own (a Redis prefix or a RabbitMQ virtual host): the session's
        # worker must not take the rig's tasks.
        self._broker = new_broker(f"ldis-rig-{secrets.token_hex(4)}:")
        self.env = {
            **base_env,
            "LDIS_INSTANCE_PATH": str(tmp_path),
            **self._broker,
            "LDIS_SMS_CHANNEL": "twilio",
            "LDIS_TWILIO_ACCOUNT_SID": SID,
            "LDIS_TWILIO_AUTH_TOKEN": TOKEN,
            "LDIS_TWILIO_FROM": FROM,
            "LDIS_TWILIO_BASE_URL": fake.url,
            "LDIS_EMAIL_CHANNEL": "smtp",
            "LDIS_SMTP_HOST": "127.0.0.1",
            "LDIS_SMTP_PORT": str(smtp_port),
            "LDIS_SMTP_STARTTLS": "false",
            "LDIS_STUCK_AFTER_SECONDS": "3",
            "LDIS_SWEEP_INTERVAL_SECONDS": "1",
            "LDIS_SMS_RATE_PER_SECOND": "1000",
            "LDIS_EMAIL_RATE_PER_SECOND": "1000",
            "LDIS_LOG_LEVEL": "INFO",
            **env,
        }
        self.settings = load_settings(self.env)
        self.container: Container = build(self.settings)
        self.workers: list[subprocess.Popen[bytes]] = []
        self.beat: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def _spawn(self, args: list[str], log_name: str) -> subprocess.Popen[bytes]:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("LDIS_")} | self.env
        log = (self.tmp_path / log_name).open("ab")
        try:
            return subprocess.Popen(
                [sys.executable, "-m", "ldis.cli", *args],
                cwd=PROJECT_ROOT,
                env=environ,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # one process group: kill -9 takes every process
            )
        finally:
            log.close()

    def start_worker(self, *, urgent_worker: bool = True) -> None:
        """`ldis worker` (with its urgent-only worker beside the main one, by default)."""
        self.starts += 1
        log_name = f"worker-{self.starts}.log"
        extra = [] if urgent_worker else ["--urgent-concurrency", "0"]
        process = self._spawn(["worker", "--concurrency", "2", *extra], log_name)
        self.workers.append(process)
        expected = 2 if urgent_worker else 1
        log_path = self.tmp_path / log_name
        wait_for(
            lambda: log_path.read_text().count(" ready.") >= expected or process.poll() is not None,
            timeout=60,
        )
        if process.poll() is not None:
            raise RuntimeError("worker failed to start:\n" + log_path.read_text())

    def start_beat(self) -> None:
        self.beat = self._spawn(["beat"], "beat.log")

    def kill_workers(self) -> None:
        """kill -9 every worker process at once (main, urgent, pool children)."""
        for process in self.workers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        self.workers = []

    def stop(self) -> None:
        for process in [*self.workers, *([self.beat] if self.beat else [])]:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in [*self.workers, *([self.beat] if self.beat else [])]:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.workers, self.beat = [], None
        with contextlib.suppress(redis.RedisError, subprocess.CalledProcessError):
            drop_broker(self._broker)
        self.container.close()

    def log(self) -> str:
        return "\n".join(p.read_text() for p in sorted(self.tmp_path.glob("*.log")))


def seed(
    container: Container,
    area_code: str,
    count: int,
    *,
    channels: tuple[str, ...] = ("sms", "email"),
    per_service: int = 10,
    first_phone: int = 0,
) -> list[int]:
    """`count` verified contacts in services covering a new area, written in bulk; return
    the contact ids. Phones are +4477009NNNNN from `first_phone`, e-mails cN@example.org."""
    now = datetime.now(UTC)
    with container.db.transaction() as session:
        area_id = session.scalar(
            insert(Area).values(code=area_code, name=area_code.title()).returning(Area.id)
        )
        services = list(
            session.scalars(
                insert(Service).returning(Service.id),
                [
                    {
                        "name": f"{area_code} service {n}",
                        "type": "needle_syringe_programme",
                        "alert_levels": ["professional", "public"],
                        "alert_kinds": [],
                    }
                    for n in range(-(-count // per_service))
                ],
            )
        )
        session.execute(
            insert(ServiceArea), [{"service_id": s, "area_id": area_id} for s in services]
        )
        contact_ids = list(
            session.scalars(
                insert(Contact).returning(Contact.id),
                [
                    {
                        "service_id": services[n // per_service],
                        "name": f"Contact {n}",
                        "phone": f"+4477009{first_phone + n:05d}" if "sms" in channels else None,
                        "email": f"c{first_phone + n}@example.org" if "email" in channels else None,
                    }
                    for n in range(count)
                ],
            )
        )
        session.execute(
            insert(ContactChannel),
            [
                {"contact_id": c, "channel": channel, "verified_at": now}
                for c in contact_ids
                for channel in channels
            ],
        )
    return contact_ids


def approve(
    container: Container, rig: Rig, area_code: str, *, priority: str = "urgent", title: str = ""
) -> int:
    """Draft, submit and approve (two others) an alert to `area_code`; the fan-out goes to
    the rig's broker. Returns the alert id."""
    tag = secrets.token_hex(3)
    drafter = user(container, f"drafter-{tag}", Role.panel)
    body = {
        "title": title or f"Nitazenes in fake oxycodone {tag}",
        "template": "professional",
        "priority": priority,
        "areas": [area_code],
        "report_id": decided_report(container, drafter, area_code),
        "fields": {
            "summary": "Green tablets marked OC 80 contain metonitazene.",
            "advice": "Carry extra naloxone.",
        },
    }
    alert_id = int(
        alerts.draft_alert(container.db, drafter, body, templates=container.templates())["id"]
    )
    alerts.submit_alert(container.db, drafter, alert_id)
    for n in (1, 2):
        approver = user(container, f"approver{n}-{tag}", Role.panel)
        alerts.approve_alert(
            container.db, approver, alert_id, required=2, queue=rig.container.queue
        )
    return alert_id


def counts(container: Container, alert_id: int) -> dict[tuple[str, str], int]:
    """{(channel, status): deliveries} for an alert."""
    with container.db.transaction() as session:
        rows = session.execute(
            select(Delivery.channel, Delivery.status, func.count())
            .where(Delivery.alert_id == alert_id)
            .group_by(Delivery.channel, Delivery.status)
        ).all()
    return {(channel, status): n for channel, status, n in rows}


def sms_per_delivery(fake: FakeTwilio, container: Container) -> Counter[object]:
    """Texts the fake accepted, counted per delivery (read from the signed ack link)."""

    def delivery_of(message: Any) -> object:
        found = ACK.search(message.body)
        return container.links.delivery_for_ack(found.group(1)) if found else None

    return fake.count_by(delivery_of)


# --- tests of the rig's parts --------------------------------------------------------------


def _sender(container: Container, base_url: str) -> TwilioSender:
    settings = container.settings.model_copy(
        update={
            "sms_channel": "twilio",
            "twilio_account_sid": SID,
            "twilio_auth_token": TOKEN,
            "twilio_from": FROM,
            "twilio_base_url": base_url,
        }
    )
    return TwilioSender(settings)


def _sms(delivery_id: int, to: str) -> OutgoingMessage:
    text = f"LDIS ALERT: test. Confirm receipt: http://ldis.test/ack/token-{delivery_id}.x"
    return OutgoingMessage(delivery_id=delivery_id, channel="sms", to=to, text=text)


def test_reconciliation_finds_what_twilio_already_has(container: Container) -> None:
    with FakeTwilio(SID, TOKEN) as fake:
        sender = _sender(container, fake.url)
        before = datetime.now(UTC) - timedelta(seconds=1)
        sent, other_number, never = (
            _sms(1, "+447700900101"),
            _sms(2, "+447700900102"),
            _sms(3, "+447700900101"),
        )
        [result] = sender.send_many([sent])
        # A different text to the same number, and ours to another number, do not count.
        sender.send_many([OutgoingMessage(9, "sms", sent.to, "something else")])
        sender.send_many([OutgoingMessage(2, "sms", "+447700900999", other_number.text)])

        found = sender.find_sent([sent, other_number, never], before)

        assert found == {sent.ref: result.provider_id, other_number.ref: None, never.ref: None}
        # Only messages since the given time are read.
        assert sender.find_sent([sent], datetime.now(UTC) + timedelta(minutes=1)) == {
            sent.ref: None
        }
        assert fake.list_requests == 4


def test_reconciliation_leaves_out_what_it_could_not_ask(container: Container) -> None:
    sender = _sender(container, f"http://127.0.0.1:{free_port()}")  # nothing listens
    assert sender.find_sent([_sms(1, "+447700900101")], datetime.now(UTC)) == {}


def test_the_bucket_is_shared_by_every_worker_and_urgent_goes_first(settings: Any) -> None:
    key = f"{settings.broker_prefix}test-bucket-{secrets.token_hex(3)}"
    clients = [redis.Redis.from_url(REDIS_URL) for _ in range(2)]
    buckets = [RedisBucket(c, key, rate=50, capacity=5) for c in clients]
    took = Counter[int]()

    def spend(n: int, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            buckets[n].acquire()
            took[n] += 1

    threads = [threading.Thread(target=spend, args=(n, 1.0)) for n in range(2)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    # Two takers, one bucket: together no more than the burst plus the rate allows.
    assert sum(took.values()) <= 5 + 50 * elapsed + 2
    assert sum(took.values()) >= 0.7 * 50 * 1.0
    assert min(took.values()) > 0

    # While an urgent sender takes tokens, a standard one waits.
    with urgency(True):
        buckets[0].acquire()
    assert buckets[1].try_take(urgent=False) > 0
    assert buckets[0].try_take(urgent=True) >= 0
    clients[0].delete(key, key + ":urgent")


def test_a_high_rate_takes_tokens_from_redis_in_blocks(settings: Any) -> None:
    key = f"{settings.broker_prefix}test-bucket-{secrets.token_hex(3)}"
    client = redis.Redis.from_url(REDIS_URL)
    bucket = RedisBucket(client, key, rate=5000)
    assert bucket.block == MAX_BLOCK

    def tokens() -> float:
        return float(client.hget(key, "tokens") or 0)

    bucket.acquire()
    assert tokens() == 5000 - MAX_BLOCK  # one call took a whole block
    for _ in range(MAX_BLOCK - 1):
        bucket.acquire()  # spent from the block: Redis is not asked
    assert tokens() == 5000 - MAX_BLOCK
    bucket.acquire()
    assert tokens() <= 5000 - MAX_BLOCK  # the next block (after a refill of at most 10)
    client.delete(key, key + ":urgent")


def test_the_bucket_goes_on_locally_when_redis_is_down() -> None:
    client = redis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2)
    bucket = RedisBucket(client, "nowhere", rate=100, capacity=2)
    waits = [bucket.try_take() for _ in range(3)]
    assert waits[:2] == [0, 0] and waits[2] > 0  # a local bucket of the same size
