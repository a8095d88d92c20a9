"""Rule signals raised at filing, joined by key, listed for the panel, and their lifecycle."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from ldis.bootstrap import Container
from ldis.domain.principal import Principal
from ldis.domain.roles import Role
from ldis.services import intake, signals
from ldis.store.models import Signal
from tests.integration.conftest import People
from tests.integration.test_intake_api import DRUG_CHECK
from tests.integration.thin_path import AREA

pytestmark = pytest.mark.integration


def lab(sold_as: str, *found: str, ref: str, **extra: Any) -> dict[str, Any]:
    return {
        **DRUG_CHECK,
        "sold_as": sold_as,
        "results": [{"substance": f, "method": "lc-ms"} for f in found],
        "source": {"type": "drug_checking_service", "name": "Lab", "reference": ref},
        "appearance": {},  # the same colour and markings three times is a signal of its own
        **extra,
    }


@pytest.fixture
def reporter(client: FlaskClient, people: People) -> dict[str, str]:
    admin = people.headers("admin", Role.admin)
    client.post("/api/v1/areas", json={"code": AREA, "name": "Selby"}, headers=admin)
    return people.headers("lab", Role.reporter)


def test_fake_oxycodone_raises_red_signals_and_a_second_report_joins_them(
    client: FlaskClient, reporter: dict[str, str], people: People
) -> None:
    first = client.post(
        "/api/v1/reports", json=lab("oxycodone", "metonitazene", ref="A"), headers=reporter
    )
    assert first.status_code == 201
    raised = {(s["kind"], s["severity"]) for s in first.get_json()["signals"]}
    assert raised == {("red_list", "red"), ("mismatch", "red")}
    second = client.post(
        "/api/v1/reports", json=lab("Oxycodone", "Metonitazine", ref="B"), headers=reporter
    )
    assert {s["id"] for s in second.get_json()["signals"]} == {
        s["id"] for s in first.get_json()["signals"]
    }
    pure = client.post("/api/v1/reports", json=lab("MDMA", "MDMA", ref="C"), headers=reporter)
    assert pure.get_json()["signals"] == []

    panel = people.headers("panel", Role.panel)
    listed = client.get("/api/v1/signals?status=open", headers=panel).get_json()
    assert len(listed) == 2
    one = listed[0]
    assert set(one) >= {
        "id",
        "kind",
        "area",
        "severity",
        "status",
        "report_ids",
        "summary",
        "detected_at",
        "window",
    }
    assert one["report_ids"] == [first.get_json()["id"], second.get_json()["id"]]
    assert one["area"] == AREA and set(one["window"]) == {"start", "end"}
    detail = client.get(f"/api/v1/reports/{first.get_json()['id']}", headers=panel).get_json()
    assert len(detail["signals"]) == 2
    assert client.get("/api/v1/signals?status=nonsense", headers=panel).status_code == 422
    assert client.get("/api/v1/signals", headers=reporter).status_code == 403


def test_lifecycle_merge_and_split(
    client: FlaskClient, reporter: dict[str, str], people: People
) -> None:
    a = client.post(
        "/api/v1/reports", json=lab("heroin", "heroin", "xylazine", ref="1"), headers=reporter
    ).get_json()
    b = client.post(
        "/api/v1/reports", json=lab("diazepam", "bromazolam", ref="2"), headers=reporter
    ).get_json()
    panel = people.headers("panel", Role.panel)
    xylazine = next(s["id"] for s in a["signals"] if s["kind"] == "red_list")
    bromazolam = next(s["id"] for s in b["signals"] if s["kind"] == "red_list")

    path = f"/api/v1/signals/{xylazine}/status"
    no_reason = client.post(path, json={"status": "dismissed"}, headers=panel)
    assert no_reason.status_code == 422 and "reason" in no_reason.get_json()["fields"]
    watched = client.post(path, json={"status": "monitoring"}, headers=panel)
    assert watched.status_code == 200 and watched.get_json()["status"] == "monitoring"
    dismissed = client.post(
        path, json={"status": "dismissed", "reason": "known batch"}, headers=panel
    )
    assert dismissed.get_json()["reason"] == "known batch"
    assert client.post(path, json={"status": "alerted"}, headers=panel).status_code == 409

    merged = client.post(
        f"/api/v1/signals/{bromazolam}/merge", json={"into": xylazine}, headers=panel
    )
    assert merged.status_code == 200
    assert set(merged.get_json()["report_ids"]) == {a["id"], b["id"]}
    split = client.post(
        f"/api/v1/signals/{xylazine}/split", json={"report_ids": [b["id"]]}, headers=panel
    )
    assert split.status_code == 201 and split.get_json()["report_ids"] == [b["id"]]
    bad = client.post(
        f"/api/v1/signals/{xylazine}/split", json={"report_ids": [999]}, headers=panel
    )
    assert bad.status_code == 422


def test_same_appearance_three_times_in_a_week(
    client: FlaskClient, reporter: dict[str, str]
) -> None:
    kinds = []
    for n in range(3):
        body = lab("MDMA", "MDMA", ref=f"T{n}", appearance={"colour": "pink", "markings": "Tesla"})
        kinds.append(
            [
                s["kind"]
                for s in client.post("/api/v1/reports", json=body, headers=reporter).get_json()[
                    "signals"
                ]
            ]
        )
    assert kinds == [[], [], ["presentation"]]


def test_simultaneous_reports_open_one_signal(
    container: Container, people: People, client: FlaskClient
) -> None:
    people.headers("admin", Role.admin)
    reporter = people.headers("lab", Role.reporter)
    client.post(
        "/api/v1/areas", json={"code": AREA, "name": "Selby"}, headers=people.headers("admin")
    )
    actor = Principal(
        user_id=people.ids["lab"], email="lab@example.org", roles=frozenset({Role.reporter})
    )
    assert reporter
    barrier = threading.Barrier(4)

    def file(n: int) -> None:
        barrier.wait()
        intake.file_report(container.db, actor, lab("oxycodone", "metonitazene", ref=f"R{n}"))

    threads = [threading.Thread(target=file, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with container.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Signal)) == 2  # red list + mismatch


def test_unseen_red_signals_escalate_once(
    container: Container, client: FlaskClient, reporter: dict[str, str]
) -> None:
    client.post("/api/v1/reports", json=lab("heroin", "fentanyl", ref="E"), headers=reporter)
    assert signals.escalate(container.db, timedelta(minutes=30)) == []
    with container.db.transaction() as session:
        session.execute(update(Signal).values(detected_at=datetime.now(UTC) - timedelta(hours=1)))
    escalated = signals.escalate(container.db, timedelta(minutes=30))
    assert len(escalated) == 2
    assert signals.escalate(container.db, timedelta(minutes=30)) == []
