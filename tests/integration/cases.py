"""A case the panel has graded and decided on, so an alert linked to it may be approved.

Nothing reaches services before the panel has decided: every test that approves an alert
first makes one of these, through the real use cases or the real API."""

from __future__ import annotations

from typing import Any

from ldis.bootstrap import Container
from ldis.domain.principal import SYSTEM_REPORTER, Principal
from ldis.services import intake, panel_cases

GRADE = {
    "local_relevance": "high",
    "internet_spread": "possible",
    "source": "direct",
    "plausibility": "high",
    "confirmation": "confirmed",
    "severity": 5,
    "likelihood": 4,
    "recommendation": "formal_alert",
    "reasons": "Lab-confirmed nitazene in tablets sold locally as oxycodone.",
}
DECISION = {"decision": "formal_alert", "reasons": "Confirmed, local and life-threatening."}


def near_miss(area: str) -> dict[str, Any]:
    return {
        "kind": "near_miss",
        "area": area,
        "occurred_at": "2026-11-21T23:40:00Z",
        "suspected_substances": ["heroin"],
        "naloxone_doses": 1,
        "outcome": "recovered_on_scene",
        "source": {"type": "outreach", "name": "Outreach team"},
    }


def decided_report(
    container: Container,
    panel_member: Principal,
    area: str,
    *,
    decision: str = "formal_alert",
) -> int:
    """File a near miss in `area`, grade it and record `decision`; return the report id."""
    view, _ = intake.file_report(container.db, SYSTEM_REPORTER, near_miss(area))
    report_id = int(view["id"])
    panel_cases.grade_case(container.db, panel_member, "report", report_id, GRADE)
    panel_cases.decide_case(
        container.db, panel_member, "report", report_id, {**DECISION, "decision": decision}
    )
    return report_id


def decide_over_http(call: Any, panel: dict[str, str], subject: str, subject_id: int) -> None:
    """The same through the API, for tests that drive HTTP only (`call` as in thin_path)."""
    status, body = call("POST", f"/api/v1/{subject}s/{subject_id}/grades", panel, GRADE)
    assert status == 201, body
    status, body = call("POST", f"/api/v1/{subject}s/{subject_id}/decision", panel, DECISION)
    assert status == 201, body


def decided_report_via(client: Any, panel: dict[str, str], area: str) -> int:
    """File, grade and decide a near miss with Flask's test client; return the report id."""

    def call(method: str, path: str, headers: dict[str, str], body: Any = None) -> Any:
        response = client.open(path, method=method, json=body, headers=headers)
        return response.status_code, response.get_json()

    status, report = call("POST", "/api/v1/reports", panel, near_miss(area))
    assert status == 201, report
    decide_over_http(call, panel, "report", report["id"])
    return int(report["id"])
