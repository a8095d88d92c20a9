"""Load test of the whole loop (issue 11), with locust: reporters file reports (one in ten
raises a signal), the panel grades and decides cases, drafts, submits and approves alerts
(two approvers, each with a two-factor code), and the workers fan them out; at the end,
`check` proves nothing was lost or sent twice and shows each process's peak memory.

Against a deployment you have started (web, workers, beat; any channels: the check reads
the database), with its LDIS_ settings in the environment of `prepare` and `check`:

    .venv/bin/pip install -e ".[load]"               # locust: not needed by ldis itself
    .venv/bin/python benchmarks/loadtest.py prepare --contacts 500 --out /tmp/ldis-load.json
    LDIS_LOAD_FILE=/tmp/ldis-load.json .venv/bin/locust -f benchmarks/loadtest.py --headless \
        --host http://127.0.0.1:8000 --users 20 --spawn-rate 5 --run-time 10m \
        --csv /tmp/ldis-load --only-summary
    .venv/bin/python benchmarks/loadtest.py check --in /tmp/ldis-load.json

locust reports throughput, p50/p95/p99 and errors per request name, and a pseudo-request
`fan-out: approval -> all sent` whose time is from the last approval to the moment the
alert's API shows every delivery sent. Raise the web's per-user limits for the run
(`LDIS_INTAKE_RATE=100000/minute`): otherwise the test measures the rate limit.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# The same grade and decision the tests give a case (as benchmarks/fanout.py does).
from tests.integration.cases import DECISION, GRADE  # noqa: E402

AREA = "LOADTOWN"
FAN_OUT_TIMEOUT_SECONDS = 120.0


# --- prepare and check (plain Python, run beside the deployment) ---------------------------


def prepare(contacts: int, out: Path) -> None:
    """An area with `contacts` verified SMS + e-mail contacts, and the people of the test:
    5 reporters, 3 drafters and 10 approvers (tokens; approvers with two-factor secrets)."""
    from sqlalchemy import insert

    from ldis.bootstrap import build
    from ldis.domain.roles import Role
    from ldis.services import two_factor
    from ldis.services.accounts import create_token, create_user
    from ldis.store.models import Area, Contact, ContactChannel, Service, ServiceArea

    c = build()
    tag = secrets.token_hex(3)
    now = datetime.now(UTC)
    with c.db.transaction() as session:
        area_id = session.scalar(
            insert(Area).values(code=f"{AREA}{tag}".upper(), name="Loadtown").returning(Area.id)
        )
        services = list(
            session.scalars(
                insert(Service).returning(Service.id),
                [
                    {
                        "name": f"Load service {n}",
                        "type": "needle_syringe_programme",
                        "alert_levels": ["professional", "public"],
                        "alert_kinds": [],
                    }
                    for n in range(-(-contacts // 10))
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
                        "service_id": services[n // 10],
                        "name": f"Load contact {n}",
                        "phone": f"+4477009{n:05d}",
                        "email": f"load{n}@example.org",
                    }
                    for n in range(contacts)
                ],
            )
        )
        session.execute(
            insert(ContactChannel),
            [
                {"contact_id": i, "channel": ch, "verified_at": now}
                for i in ids
                for ch in ("sms", "email")
            ],
        )

    def person(kind: str, n: int, role: Role) -> dict[str, str]:
        email = f"load-{kind}{n}-{tag}@example.org"
        create_user(c.db, email=email, name=f"Load {kind} {n}", roles=frozenset({role}))
        entry = {"token": create_token(c.db, email=email, label="loadtest")}
        if role is Role.panel:
            entry["secret"] = two_factor.provision(c.db, email, key=c.settings.secret())
        return entry

    plan = {
        "area": f"{AREA}{tag}".upper(),
        "contacts": contacts,
        "started": now.isoformat(),
        "reporters": [person("reporter", n, Role.reporter) for n in range(5)],
        "drafters": [person("drafter", n, Role.panel) for n in range(3)],
        "approvers": [person("approver", n, Role.panel) for n in range(10)],
    }
    out.write_text(json.dumps(plan, indent=1))
    c.close()
    print(f"prepared {plan['area']}: {contacts} contacts, 18 people -> {out}")


def check(plan_file: Path) -> int:
    """Every delivery of the test's alerts sent (or delivered) exactly once; peak memory."""
    from sqlalchemy import func, select

    from ldis.bootstrap import build
    from ldis.store.models import Alert, Delivery, DeliveryAttempt

    plan = json.loads(plan_file.read_text())
    c = build()
    with c.db.transaction() as session:
        alert_ids = list(
            session.scalars(
                select(Alert.id).where(Alert.created_at >= datetime.fromisoformat(plan["started"]))
            )
        )
        states = dict(
            session.execute(
                select(Delivery.status, func.count())
                .where(Delivery.alert_id.in_(alert_ids))
                .group_by(Delivery.status)
            ).all()
        )
        sent_twice = session.scalar(
            select(func.count()).select_from(
                select(DeliveryAttempt.delivery_id)
                .join(Delivery, Delivery.id == DeliveryAttempt.delivery_id)
                .where(Delivery.alert_id.in_(alert_ids), DeliveryAttempt.outcome == "sent")
                .group_by(DeliveryAttempt.delivery_id)
                .having(func.count() > 1)
                .subquery()
            )
        )
    c.close()
    pending = sum(n for s, n in states.items() if s not in ("sent", "delivered"))
    print(f"alerts: {len(alert_ids)}; deliveries by state: {states}")
    print(f"not sent: {pending}; sent more than once: {sent_twice}")
    for pid, name, peak in _peak_memory():
        print(f"  peak RSS {peak:7.1f} MB  pid {pid:>7}  {name}")
    return 1 if pending or sent_twice else 0


def _peak_memory() -> list[tuple[int, str, float]]:
    """VmHWM of every process of this deployment on this machine (web, workers, beat: the
    ones whose environment has this LDIS_DATABASE_URL), from /proc."""
    marker = f"LDIS_DATABASE_URL={os.environ.get('LDIS_DATABASE_URL', '')}\0".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker not in (entry / "environ").read_bytes():
                continue
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:110]
            status = (entry / "status").read_text()
        except OSError:
            continue
        if "gunicorn" not in cmd and "celery" not in cmd and "ldis" not in cmd:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                found.append((int(entry.name), cmd, int(line.split()[1]) / 1024))
    return sorted(found, key=lambda row: -row[2])


# --- the locust users ----------------------------------------------------------------------

try:
    from locust import HttpUser, between, events, task
except ImportError:  # `prepare` and `check` need no locust
    HttpUser = None  # type: ignore[assignment,misc]


class Approvers:
    """The approvers' authenticator apps: a code the server has not accepted yet (each code
    counts once), from whichever approver has one free now."""

    def __init__(self, people: list[dict[str, str]]) -> None:
        from ldis.domain import two_factor

        self._rules = two_factor
        self._people = people
        self._last: dict[int, int] = {}
        self._lock = threading.Lock()

    def take(self, exclude: set[int]) -> tuple[int, dict[str, str], str] | None:
        with self._lock:
            current = self._rules.time_step(datetime.now(UTC))
            order = list(range(len(self._people)))
            random.shuffle(order)
            for n in order:
                if n in exclude:
                    continue
                step = max(current, self._last.get(n, current - 1) + 1)
                if step <= current + self._rules.DRIFT_STEPS:
                    self._last[n] = step
                    person = self._people[n]
                    return n, person, self._rules.code_at(person["secret"], step)
        return None


PLAN: dict[str, Any] = {}
APPROVERS: Approvers | None = None
if HttpUser is not None and os.environ.get("LDIS_LOAD_FILE"):
    PLAN = json.loads(Path(os.environ["LDIS_LOAD_FILE"]).read_text())
    APPROVERS = Approvers(PLAN["approvers"])


def _auth(person: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {person['token']}"}


def _report(n: int) -> dict[str, Any]:
    return {
        "kind": "near_miss",
        "area": PLAN["area"],
        "occurred_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "suspected_substances": random.choice([["heroin"], ["heroin", "xylazine"], ["crack"]]),
        # Two doses of naloxone is an unusual presentation: a signal, one report in ten.
        "naloxone_doses": 2 if n % 10 == 0 else 1,
        "outcome": "recovered_on_scene",
        "source": {"type": "outreach", "name": "Load outreach"},
        "notes": f"load test report {n} {secrets.token_hex(4)}",
    }


if HttpUser is not None:

    class Reporter(HttpUser):
        """Frontline staff filing near misses (and now and then reading the list)."""

        weight = 8
        wait_time = between(0.5, 2.0)

        @task(10)
        def file_report(self) -> None:
            person = random.choice(PLAN["reporters"])
            self.client.post(
                "/api/v1/reports",
                json=_report(random.randrange(1_000_000)),
                headers=_auth(person),
                name="POST /api/v1/reports",
            )

        @task(1)
        def read_reports(self) -> None:
            self.client.get(
                "/api/v1/reports",
                headers=_auth(random.choice(PLAN["reporters"])),
                name="GET /api/v1/reports",
            )

    class Panel(HttpUser):
        """A panel member taking a case from report to a sent alert."""

        weight = 1
        wait_time = between(5.0, 15.0)

        @task
        def case_to_alert(self) -> None:
            assert APPROVERS is not None
            drafter = random.choice(PLAN["drafters"])
            reporter = random.choice(PLAN["reporters"])
            report = self.client.post(
                "/api/v1/reports",
                json=_report(1),
                headers=_auth(reporter),
                name="POST /api/v1/reports",
            ).json()
            rid = report["id"]
            self.client.post(
                f"/api/v1/reports/{rid}/grades",
                json=GRADE,
                headers=_auth(drafter),
                name="POST grades",
            )
            self.client.post(
                f"/api/v1/reports/{rid}/decision",
                json=DECISION,
                headers=_auth(drafter),
                name="POST decision",
            )
            alert = self.client.post(
                "/api/v1/alerts",
                headers=_auth(drafter),
                name="POST /api/v1/alerts",
                json={
                    "title": f"Load test alert {secrets.token_hex(3)}",
                    "template": "professional",
                    "priority": "standard",
                    "areas": [PLAN["area"]],
                    "report_id": rid,
                    "fields": {
                        "summary": "Green tablets marked OC 80 contain metonitazene.",
                        "advice": "Carry extra naloxone.",
                    },
                },
            ).json()
            aid = alert["id"]
            self.client.post(
                f"/api/v1/alerts/{aid}/submit", headers=_auth(drafter), name="POST submit"
            )
            used: set[int] = set()
            approved_at = 0.0
            for _ in range(2):
                taken = None
                while taken is None:  # every approver's code for now is used: wait a step
                    taken = APPROVERS.take(used)
                    if taken is None:
                        time.sleep(1.0)
                n, approver, code = taken
                used.add(n)
                approved_at = time.time()
                self.client.post(
                    f"/api/v1/alerts/{aid}/approve",
                    json={"otp": code},
                    headers=_auth(approver),
                    name="POST approve",
                )
            self._wait_for_fan_out(aid, drafter, approved_at)

        def _wait_for_fan_out(self, aid: int, drafter: dict[str, str], since: float) -> None:
            expected = 2 * int(PLAN["contacts"])
            while time.time() - since < FAN_OUT_TIMEOUT_SECONDS:
                view = self.client.get(
                    f"/api/v1/alerts/{aid}", headers=_auth(drafter), name="GET /api/v1/alerts/{id}"
                ).json()
                counts = view.get("deliveries", {})
                if (
                    counts.get("total") == expected
                    and counts.get("sent", 0) + counts.get("delivered", 0) >= expected
                ):
                    events.request.fire(
                        request_type="FANOUT",
                        name="fan-out: approval -> all sent",
                        response_time=(time.time() - since) * 1000,
                        response_length=expected,
                        exception=None,
                        context={},
                    )
                    return
                time.sleep(0.5)
            events.request.fire(
                request_type="FANOUT",
                name="fan-out: approval -> all sent",
                response_time=(time.time() - since) * 1000,
                response_length=0,
                exception=TimeoutError(f"alert {aid} not all sent in {FAN_OUT_TIMEOUT_SECONDS} s"),
                context={},
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--contacts", type=int, default=500)
    p.add_argument("--out", type=Path, required=True)
    ch = sub.add_parser("check")
    ch.add_argument("--in", dest="plan", type=Path, required=True)
    args = parser.parse_args()
    if args.command == "prepare":
        prepare(args.contacts, args.out)
    else:
        sys.exit(check(args.plan))


if __name__ == "__main__":
    main()
