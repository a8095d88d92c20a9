"""Backup and restore (docs/operations.md) done for real: `pg_dump -Fc` of a system in the
middle of a fan-out, `pg_restore` into a new database, a worker started on the restored
database, and the outcome checked against what the providers received.

The workers are frozen (SIGSTOP) for the dump and killed after it: the dump is the last
moment the old system sent anything, as when a server dies right after its backup. What the
restore must then get right: a delivery recorded as sent is never sent again; one that was
being sent (it may or may not have reached Twilio) is reconciled with Twilio, not sent
twice; one still queued is sent once; and the audit log comes back whole, still append-only.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

from ldis.bootstrap import Container
from tests.fakes.twilio_api import FakeTwilio
from tests.integration.conftest import PG_ADMIN_URL, wait_for
from tests.integration.test_delivery_crash import _ids, _outcomes, _sent
from tests.integration.test_delivery_rig import (
    SID,
    TOKEN,
    Rig,
    approve,
    counts,
    seed,
    sms_per_delivery,
    smtp_server,
)

pytestmark = pytest.mark.integration

RECIPIENTS = 600
RATES = {"LDIS_SMS_RATE_PER_SECOND": "100", "LDIS_EMAIL_RATE_PER_SECOND": "100"}


@pytest.fixture
def restored_url(container: Container) -> Iterator[str]:
    name = container.db.engine.url.database + "_restored"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _libpq_url(c: Container) -> str:
    return c.db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def _freeze(rig: Rig) -> None:
    for process in [*rig.workers, *([rig.beat] if rig.beat else [])]:
        os.killpg(process.pid, signal.SIGSTOP)


def _kill(rig: Rig) -> None:
    if rig.beat is not None:
        os.killpg(rig.beat.pid, signal.SIGKILL)
        rig.beat.wait()
        rig.beat = None
    rig.kill_workers()


def _audit(c: Container) -> tuple[int, str, set[str]]:
    """Rows, a digest of every row in order, and the triggers on the audit log."""
    with c.db.transaction() as session:
        rows = session.scalar(text("SELECT count(*) FROM audit_events"))
        digest = session.scalar(
            text("SELECT md5(string_agg(a::text, '|' ORDER BY a.id)) FROM audit_events a")
        )
        triggers = set(
            session.scalars(
                text(
                    "SELECT tgname FROM pg_trigger WHERE tgrelid = 'audit_events'::regclass "
                    "AND NOT tgisinternal"
                )
            )
        )
    return int(rows or 0), str(digest), triggers


def _attempts(c: Container, ids: set[int]) -> dict[int, int]:
    with c.db.transaction() as session:
        rows = session.execute(
            text(
                "SELECT delivery_id, count(*) FROM delivery_attempts "
                "WHERE delivery_id = ANY(:ids) GROUP BY delivery_id"
            ),
            {"ids": sorted(ids)},
        )
        return {int(delivery_id): int(n) for delivery_id, n in rows}


def test_a_restored_backup_sends_nothing_twice_and_keeps_the_audit_log(
    container: Container, settings_env: dict[str, str], tmp_path: Path, restored_url: str
) -> None:
    with FakeTwilio(SID, TOKEN) as fake, smtp_server() as (mails, smtp_port):
        live = Rig(settings_env, tmp_path / "live", fake, smtp_port, **RATES)
        restored: Rig | None = None
        try:
            (tmp_path / "live").mkdir(exist_ok=True)
            seed(container, "BACKUPTOWN", RECIPIENTS)
            live.start_worker()
            live.start_beat()
            alert_id = approve(container, live, "BACKUPTOWN")
            total = 2 * RECIPIENTS
            wait_for(lambda: _sent(container, alert_id) >= total * 0.3, timeout=60, interval=0.05)

            _freeze(live)
            dump = tmp_path / "ldis.dump"
            subprocess.run(
                ["pg_dump", "--format=custom", "--file", str(dump), _libpq_url(container)],
                check=True,
                timeout=120,
            )
            _kill(live)
            at_dump = counts(container, alert_id)
            assert at_dump.get(("sms", "queued"), 0) + at_dump.get(("email", "queued"), 0) > 0
            audit_at_dump = _audit(container)
            assert audit_at_dump[0] > 0 and "audit_events_append_only" in audit_at_dump[2]

            subprocess.run(
                [
                    "pg_restore",
                    "--no-owner",
                    "--exit-on-error",
                    "--dbname",
                    restored_url,
                    str(dump),
                ],
                check=True,
                timeout=120,
            )
            restored = Rig(
                settings_env,
                tmp_path / "restored",
                fake,
                smtp_port,
                LDIS_DATABASE_URL=restored_url,
                **RATES,
            )
            back = restored.container
            assert counts(back, alert_id) == at_dump
            assert _audit(back) == audit_at_dump, "the audit log came back row for row"
            with pytest.raises(Exception, match="append-only"), back.db.transaction() as session:
                session.execute(text("UPDATE audit_events SET action = 'tampered'"))
            with pytest.raises(Exception, match="append-only"), back.db.transaction() as session:
                session.execute(text("DELETE FROM audit_events"))

            done_at_dump = _ids(back, alert_id, "sms", "sent", "delivered") | _ids(
                back, alert_id, "email", "sent", "delivered"
            )
            in_flight_emails = at_dump.get(("email", "sending"), 0)
            tried_before = _outcomes(back, alert_id)
            attempts_at_dump = _attempts(back, done_at_dump)
            assert len(done_at_dump) >= total * 0.3 and len(attempts_at_dump) == len(done_at_dump)
            (tmp_path / "restored").mkdir(exist_ok=True)
            restored.start_worker()
            restored.start_beat()
            wait_for(lambda: _sent(back, alert_id) == total, timeout=120, interval=0.2)

            # Every text reached Twilio exactly once, across both systems.
            texts = sms_per_delivery(fake, container)
            assert set(texts) == _ids(back, alert_id, "sms")
            assert max(texts.values()) == 1, [d for d, n in texts.items() if n > 1]
            # Every e-mail arrived; only one claimed but unrecorded at the dump may repeat.
            emails = _ids(back, alert_id, "email")
            assert set(mails.by_delivery) == emails
            assert sum(n - 1 for n in mails.by_delivery.values()) <= in_flight_emails
            # Nothing recorded as sent in the backup was tried again.
            assert _attempts(back, done_at_dump) == attempts_at_dump
            after = _outcomes(back, alert_id)
            assert after["sent"] + after.get("reconciled", 0) == total
            print(f"at dump: {at_dump}; attempts before {tried_before}, after {after}")
        except BaseException:
            print(live.log()[-10_000:])
            if restored is not None:
                print(restored.log()[-10_000:])
            raise
        finally:
            live.stop()
            if restored is not None:
                restored.stop()
