"""ldis's own CPU per message in the send loop, without any provider: what the fan-out
benchmark's ratio is made of, measured where the machine's noise cannot reach it.

Run:  .venv/bin/python benchmarks/delivery_cpu.py [--contacts 10000] [--repeat 5]
      (needs PostgreSQL and Redis on 127.0.0.1, as `make test` does)

`benchmarks/fanout.py` compares ldis with bare clients on the same 2 shared cores, so its
ratio moves with whatever else the machine is doing (the same bare client has measured
0.8 and 1.1 ms of CPU per text minutes apart). This one takes out everything both sides
share (the providers' stand-ins, the `twilio` client, smtplib) and times, in this
process, what only ldis does: `ldis.services.delivery.deliver` on batches of 100 of an
approved alert's 2N deliveries (claim, render, sign the links, build each e-mail's bytes
with the real SMTP channel, record the results in groups), against a throwaway
PostgreSQL database built by the real migrations and seeded as `fanout.py` seeds it. The
channels here accept every message at once: an e-mail is built (`SmtpSender._build`) but
not sent, a text not even built (the Twilio client's own work is shared by both sides).

Reports, per repetition (a new alert each) and as medians: this process's CPU per
message (`time.process_time`) and the PostgreSQL backends' (`/proc`), in milliseconds.
Not measured here: Celery's per-task work (a task per 100 messages) and the rate limit
(a Redis call per up to 25 messages).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for path in (REPO, REPO / "benchmarks"):  # allow plain `python benchmarks/delivery_cpu.py`
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from _fanout_rig import MAIL_FROM, PUBLIC_URL, cpu_by_group, seed  # noqa: E402
from fanout import REDIS_URL, Panel, database, redis_prefix  # noqa: E402

from ldis.bootstrap import build  # noqa: E402
from ldis.domain.messages import OutgoingMessage, SendOutcome, SendResult  # noqa: E402
from ldis.services import delivery  # noqa: E402
from ldis.settings import load_settings  # noqa: E402
from ldis.store.migrate import upgrade  # noqa: E402
from workers.channels.smtp_email import SmtpSender  # noqa: E402

BATCH = 100  # LDIS_DELIVERY_BATCH_SIZE's default


class Accepting:
    """A channel that takes every message at once; e-mails are first built as the SMTP
    channel builds them (their bytes are ldis's work, their sending is not)."""

    def __init__(self, build_email: Callable[[OutgoingMessage], Any] | None = None) -> None:
        self.build_email = build_email

    def send_many(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        return [result for _, result in self.send_each(messages)]

    def send_each(
        self, messages: list[OutgoingMessage], gate: Callable[[OutgoingMessage], bool] | None = None
    ) -> Generator[tuple[OutgoingMessage, SendResult], None, None]:
        for message in messages:
            if self.build_email is not None:
                self.build_email(message)
            if gate is not None and not gate(message):
                continue
            yield message, SendResult(SendOutcome.sent, provider_id=f"P{message.delivery_id}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    with database() as (db_name, db_url), redis_prefix() as prefix:
        settings = load_settings(
            {
                "LDIS_INSTANCE_PATH": str(Path("/tmp") / f"ldis-delivery-cpu-{db_name}"),
                "LDIS_DATABASE_URL": db_url,
                "LDIS_BROKER_URL": REDIS_URL,
                "LDIS_BROKER_PREFIX": prefix,
                "LDIS_SECRET_KEY": "delivery-cpu-benchmark-secret-key",
                "LDIS_PUBLIC_URL": PUBLIC_URL,
                "LDIS_MAIL_FROM": MAIL_FROM,
                "LDIS_EMAIL_CHANNEL": "smtp",
                "LDIS_SMTP_HOST": "127.0.0.1",
                "LDIS_SMTP_PORT": "25",
            }
        )
        container = build(settings)
        try:
            upgrade(container.db.engine)
            seed(container, args.contacts, 1, 1)  # (one small urgent area: the seed wants one)
            panel = Panel(container)
            smtp = SmtpSender(settings)
            senders: Any = {"sms": Accepting(), "email": Accepting(smtp._build)}
            worker_ms: list[float] = []
            postgres_ms: list[float] = []
            for n in range(args.repeat + 1):  # the first warms the caches: not counted
                alert_id = panel.prepare("BENCHSHIRE", "standard", f"Delivery CPU {n}")
                panel.approve(alert_id)
                ids = delivery.queued_ids(container.db, alert_id, 1)
                pg0 = cpu_by_group({}, db_name)["postgres (backends of this db)"]
                cpu0 = time.process_time()
                for i in range(0, len(ids), BATCH):
                    retry = delivery.deliver(
                        container.db,
                        ids[i : i + BATCH],
                        senders,
                        container.renderer,
                        container.links,
                    )
                    assert not retry, f"{len(retry)} deliveries not sent"
                cpu1 = time.process_time()
                pg1 = cpu_by_group({}, db_name)["postgres (backends of this db)"]
                if n == 0:
                    continue
                worker_ms.append(1000 * (cpu1 - cpu0) / len(ids))
                postgres_ms.append(1000 * (pg1 - pg0) / len(ids))
                print(
                    f"run {n}: {len(ids):,} messages; ldis {worker_ms[-1]:.3f} ms, "
                    f"PostgreSQL {postgres_ms[-1]:.3f} ms of CPU per message",
                    flush=True,
                )
        finally:
            container.close()
    print(
        f"\nmedians of {args.repeat}: ldis {statistics.median(worker_ms):.3f} ms, "
        f"PostgreSQL {statistics.median(postgres_ms):.3f} ms, together "
        f"{statistics.median(w + p for w, p in zip(worker_ms, postgres_ms, strict=True)):.3f} "
        "ms of CPU per message"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
