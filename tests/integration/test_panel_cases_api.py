"""The panel grades cases and records decisions through the JSON API, against PostgreSQL:
one grade per member (a regrade replaces it and the audit keeps the change), decisions
appended with the grades' RAG by default, no further action dismissing a signal, response
targets, and who may do what."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from ldis.bootstrap import Container
from ldis.domain.errors import ValidationFailed
from ldis.domain.grading import RESPONSE_HOURS, URGENT_RESPONSE_HOURS
from ldis.domain.principal import Principal
from ldis.domain.roles import Role
from ldis.services import panel_cases
from ldis.store.models import AuditEvent, Grade, PanelDecision, Report, Signal
from tests.integration.conftest import People

pytestmark = pytest.mark.integration

AREA = "SELBY"
GRADE: dict[str, Any] = {
    "local_relevance": "high",
    "internet_spread": "possible",
    "source": "direct",
    "plausibility": "high",
    "confirmation": "confirmed",
    "severity": 5,
    "likelihood": 4,
    "recommendation": "formal_alert",
    "reasons": "Metonitazene confirmed by LC-MS in tablets sold as oxycodone.",
}


def lab(sold_as: str, *found: str, ref: str) -> dict[str, Any]:
    return {
        "kind": "drug_checking",
        "area": AREA,
        "sample_obtained_on": "2026-11-20",
        "sold_as": sold_as,
        "form": "tablet",
        "results": [{"substance": f, "method": "lc-ms"} for f in found],
        "source": {"type": "drug_checking_service", "name": "Lab", "reference": ref},
    }


@pytest.fixture
def reporter(client: FlaskClient, people: People) -> dict[str, str]:
    admin = people.headers("admin", Role.admin)
    assert (
        client.post("/api/v1/areas", json={"code": AREA, "name": "Selby"}, headers=admin)
    ).status_code == 201
    return people.headers("lab", Role.reporter)


@pytest.fixture
def case(client: FlaskClient, reporter: dict[str, str]) -> dict[str, Any]:
    """A fake oxycodone report: a red-list report raising a red red-list signal."""
    filed = client.post(
        "/api/v1/reports", json=lab("oxycodone", "metonitazene", ref="A"), headers=reporter
    )
    assert filed.status_code == 201, filed.get_json()
    body = filed.get_json()
    signal = next(s["id"] for s in body["signals"] if s["kind"] == "red_list")
    mismatch = next(s["id"] for s in body["signals"] if s["kind"] == "mismatch")
    return {"report": body["id"], "signal": signal, "mismatch": mismatch}


def grade(
    client: FlaskClient, headers: dict[str, str], path: str, **changes: Any
) -> dict[str, Any]:
    response = client.post(f"/api/v1/{path}/grades", json=GRADE | changes, headers=headers)
    assert response.status_code == 201, response.get_json()
    result: dict[str, Any] = response.get_json()
    return result


def audit_details(container: Container, action: str, entity: str, entity_id: int) -> list[Any]:
    with container.db.transaction() as session:
        return list(
            session.scalars(
                select(AuditEvent.detail)
                .where(
                    AuditEvent.action == action,
                    AuditEvent.entity == entity,
                    AuditEvent.entity_id == entity_id,
                )
                .order_by(AuditEvent.id)
            )
        )


def count(container: Container, model: Any) -> int:
    with container.db.transaction() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_a_regrade_replaces_the_members_grade_and_the_audit_keeps_the_change(
    client: FlaskClient, people: People, container: Container, case: dict[str, Any]
) -> None:
    p1 = people.headers("panel1", Role.panel)
    path = f"signals/{case['signal']}"
    first = grade(client, p1, path)
    assert first["score"] == 20 and first["rag"] == "red"
    assert first["replaced"] is False and first["member"]["name"] == "Panel1"

    second = grade(client, p1, path, likelihood=2, recommendation="information_only")
    assert second["replaced"] is True and second["id"] == first["id"]
    assert second["changes"] == {
        "likelihood": {"from": 4, "to": 2},
        "recommendation": {"from": "formal_alert", "to": "information_only"},
    }
    assert second["score"] == 10 and second["rag"] == "amber"
    assert count(container, Grade) == 1

    view = client.get(f"/api/v1/{path}/panel", headers=p1).get_json()
    assert [(g["likelihood"], g["rag"]) for g in view["grades"]] == [(2, "amber")]
    details = audit_details(container, "case.graded", "signal", case["signal"])
    assert [d["replaced"] for d in details] == [False, True]
    assert details[1]["changes"]["likelihood"] == {"from": 4, "to": 2}
    assert details[1]["criteria"]["severity"] == 5


def test_grades_side_by_side_show_where_members_differ(
    client: FlaskClient, people: People, case: dict[str, Any]
) -> None:
    p1, p2 = people.headers("panel1", Role.panel), people.headers("panel2", Role.panel)
    path = f"reports/{case['report']}"
    grade(client, p1, path)
    grade(client, p2, path, likelihood=2, recommendation="information_only")
    view = client.get(f"/api/v1/{path}/panel", headers=p2).get_json()
    assert [g["member"]["name"] for g in view["grades"]] == ["Panel1", "Panel2"]
    assert view["criteria"][0] == "local_relevance"
    summary = view["summary"]
    assert summary["grades"] == 2 and summary["median_score"] == 15.0
    assert summary["rag"] == "red" and view["suggested_rag"] == "red"
    assert summary["disagreements"] == ["likelihood"]
    assert summary["unanimous"] is False
    assert summary["recommendations"] == {
        "no_further_action": 0,
        "information_only": 1,
        "formal_alert": 1,
    }
    assert view["decision"] is None and view["decisions"] == []


def test_a_decision_is_refused_before_anyone_grades(
    client: FlaskClient, people: People, container: Container, case: dict[str, Any]
) -> None:
    p1 = people.headers("panel1", Role.panel)
    response = client.post(
        f"/api/v1/signals/{case['signal']}/decision",
        json={"decision": "formal_alert", "reasons": "Deaths elsewhere."},
        headers=p1,
    )
    assert response.status_code == 409
    body = response.get_json()
    assert body["error"] == "conflict" and "graded" in body["message"]
    assert count(container, PanelDecision) == 0


def test_the_decision_takes_the_median_rag_unless_told_and_is_appended(
    client: FlaskClient, people: People, container: Container, case: dict[str, Any]
) -> None:
    members = [people.headers(f"panel{i}", Role.panel) for i in (1, 2, 3)]
    path = f"reports/{case['report']}"
    grade(client, members[0], path)  # 20
    grade(client, members[1], path, severity=4, likelihood=2)  # 8
    grade(client, members[2], path, severity=3, likelihood=3)  # 9: the median, amber
    first = client.post(
        f"/api/v1/{path}/decision",
        json={"decision": "formal_alert", "reasons": "Nitazene in fake oxycodone."},
        headers=members[1],
    )
    assert first.status_code == 201, first.get_json()
    assert first.get_json()["rag"] == "amber"
    assert first.get_json()["decided_by"]["name"] == "Panel2"
    second = client.post(
        f"/api/v1/{path}/decision",
        json={"decision": "information_only", "reasons": "Lab now unsure.", "rag": "green"},
        headers=members[0],
    )
    assert second.status_code == 201 and second.get_json()["rag"] == "green"

    view = client.get(f"/api/v1/{path}/panel", headers=members[2]).get_json()
    assert [d["decision"] for d in view["decisions"]] == ["formal_alert", "information_only"]
    assert view["decision"]["id"] == second.get_json()["id"]
    with container.db.transaction() as session:
        current = panel_cases.current_decision(session, "report", case["report"])
        assert current is not None and current.decision == "information_only"
        assert panel_cases.current_decision(session, "signal", case["signal"]) is None
    details = audit_details(container, "case.decided", "report", case["report"])
    assert [(d["decision"], d["rag"]) for d in details] == [
        ("formal_alert", "amber"),
        ("information_only", "green"),
    ]
    assert details[0]["reasons"] == "Nitazene in fake oxycodone."


def test_no_further_action_dismisses_the_signal_and_any_decision_marks_it_reviewed(
    client: FlaskClient, people: People, container: Container, case: dict[str, Any]
) -> None:
    p1 = people.headers("panel1", Role.panel)
    for signal_id in (case["signal"], case["mismatch"]):
        grade(client, p1, f"signals/{signal_id}", recommendation="no_further_action")
    dismissed = client.post(
        f"/api/v1/signals/{case['signal']}/decision",
        json={"decision": "no_further_action", "reasons": "Known batch, already alerted."},
        headers=p1,
    )
    assert dismissed.status_code == 201
    assert dismissed.get_json()["case"]["status"] == "dismissed"
    signal = client.get(f"/api/v1/signals/{case['signal']}", headers=p1).get_json()
    assert signal["status"] == "dismissed"
    assert signal["reason"] == "Known batch, already alerted."

    kept = client.post(
        f"/api/v1/signals/{case['mismatch']}/decision",
        json={"decision": "information_only", "reasons": "Share with outreach."},
        headers=p1,
    )
    assert kept.status_code == 201 and kept.get_json()["case"]["status"] == "open"
    with container.db.transaction() as session:
        reviewed = session.scalar(select(Signal.reviewed_at).where(Signal.id == case["mismatch"]))
    assert reviewed is not None
    assert [
        d["status"] for d in audit_details(container, "signal.status", "signal", case["signal"])
    ] == ["dismissed"]


def test_response_targets_and_overdue(
    client: FlaskClient,
    people: People,
    container: Container,
    reporter: dict[str, str],
    case: dict[str, Any],
) -> None:
    p1 = people.headers("panel1", Role.panel)
    plain = client.post("/api/v1/reports", json=lab("MDMA", "MDMA", ref="B"), headers=reporter)
    plain_id = plain.get_json()["id"]
    with container.db.transaction() as session:
        received = {
            r.id: r.received_at
            for r in session.scalars(
                select(Report).where(Report.id.in_([case["report"], plain_id]))
            )
        }
        seen = panel_cases.case_seen_at(session, "signal", case["signal"])
        assert (
            panel_cases.first_report_at(session, "signal", case["signal"])
            == received[case["report"]]
        )
        assert panel_cases.case_seen_at(session, "report", plain_id) == received[plain_id]
        assert panel_cases.case_seen_at(session, "report", 99999) is None
    assert seen is not None

    def due(path: str) -> datetime:
        view = client.get(f"/api/v1/{path}/panel", headers=p1).get_json()
        return datetime.fromisoformat(view["response_due_at"].replace("Z", "+00:00"))

    assert due(f"reports/{plain_id}") == received[plain_id] + timedelta(hours=RESPONSE_HOURS)
    urgent = received[case["report"]] + timedelta(hours=URGENT_RESPONSE_HOURS)
    assert due(f"reports/{case['report']}") == urgent
    assert due(f"signals/{case['signal']}") == seen + timedelta(hours=URGENT_RESPONSE_HOURS)

    path = f"/api/v1/signals/{case['signal']}/panel"
    assert client.get(path, headers=p1).get_json()["overdue"] is False
    with container.db.transaction() as session:
        session.execute(
            update(Signal)
            .where(Signal.id == case["signal"])
            .values(detected_at=datetime.now(UTC) - timedelta(hours=5))
        )
    late = client.get(path, headers=p1).get_json()
    assert late["overdue"] is True and late["responded_at"] is None
    grade(client, p1, f"signals/{case['signal']}")
    client.post(
        f"/api/v1/signals/{case['signal']}/decision",
        json={"decision": "formal_alert", "reasons": "Red."},
        headers=p1,
    )
    answered = client.get(path, headers=p1).get_json()
    assert answered["overdue"] is False and answered["responded_at"] is not None


def test_only_the_panel_grades_and_decides_and_reporters_see_nothing(
    client: FlaskClient,
    people: People,
    reporter: dict[str, str],
    case: dict[str, Any],
) -> None:
    admin = people.headers("admin", Role.admin)
    for path in (f"signals/{case['signal']}", f"reports/{case['report']}"):
        for who in (reporter, admin):
            assert client.post(f"/api/v1/{path}/grades", json=GRADE, headers=who).status_code == 403
            decided = client.post(
                f"/api/v1/{path}/decision",
                json={"decision": "formal_alert", "reasons": "x"},
                headers=who,
            )
            assert decided.status_code == 403 and decided.get_json()["error"] == "forbidden"
        assert client.get(f"/api/v1/{path}/panel", headers=reporter).status_code == 403
        assert client.get(f"/api/v1/{path}/panel", headers=admin).status_code == 200
    assert client.post(f"/api/v1/signals/{case['signal']}/grades", json=GRADE).status_code == 401


def test_unknown_cases_are_404(client: FlaskClient, people: People, case: dict[str, Any]) -> None:
    p1 = people.headers("panel1", Role.panel)
    for path in ("signals/99999", "reports/99999"):
        response = client.post(f"/api/v1/{path}/grades", json=GRADE, headers=p1)
        assert response.status_code == 404 and response.get_json()["error"] == "not_found"
        assert client.get(f"/api/v1/{path}/panel", headers=p1).status_code == 404
        decided = client.post(
            f"/api/v1/{path}/decision",
            json={"decision": "formal_alert", "reasons": "x"},
            headers=p1,
        )
        assert decided.status_code == 404


def test_validation_names_the_fields(
    client: FlaskClient, people: People, container: Container, case: dict[str, Any]
) -> None:
    p1 = people.headers("panel1", Role.panel)
    path = f"/api/v1/signals/{case['signal']}"
    body = {k: v for k, v in GRADE.items() if k != "severity"} | {"recommendation": "panic"}
    bad = client.post(f"{path}/grades", json=body, headers=p1)
    assert bad.status_code == 422
    assert set(bad.get_json()["fields"]) == {"severity", "recommendation"}
    person = client.post(
        f"{path}/grades", json=GRADE | {"reasons": "Ring 07700 900123 for details"}, headers=p1
    )
    assert person.status_code == 422 and "phone" in person.get_json()["fields"]["reasons"]
    assert count(container, Grade) == 0

    grade(client, p1, f"signals/{case['signal']}")
    wrong = client.post(
        f"{path}/decision", json={"decision": "formal_alert", "rag": "purple"}, headers=p1
    )
    assert wrong.status_code == 422 and set(wrong.get_json()["fields"]) == {"rag", "reasons"}
    not_json = client.post(f"{path}/decision", data="decision", headers=p1)
    assert not_json.status_code == 415
    assert count(container, PanelDecision) == 0


def test_a_first_grade_sent_twice_at_once_keeps_one_row(
    client: FlaskClient, people: People, container: Container, case: dict[str, Any]
) -> None:
    people.headers("panel1", Role.panel)
    member = Principal(people.ids["panel1"], "panel1@example.org", frozenset({Role.panel}))
    results: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def send(likelihood: int) -> None:
        start.wait()
        try:
            results.append(
                panel_cases.grade_case(
                    container.db,
                    member,
                    "signal",
                    case["signal"],
                    GRADE | {"likelihood": likelihood},
                )
            )
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(n,)) for n in (3, 4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(r["replaced"] for r in results) == [False, True]
    assert count(container, Grade) == 1
    with pytest.raises(ValidationFailed) as caught:
        panel_cases.grade_case(container.db, member, "alert", case["signal"], GRADE)
    assert set(caught.value.fields) == {"subject"}
