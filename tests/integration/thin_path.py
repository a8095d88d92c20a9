"""The thin path of the foundation issue, written once and driven through any HTTP client
(Flask's test client against PostgreSQL, or `requests` against a running `ldis run`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from tests.integration.cases import decide_over_http

AREA = "SELBY"
NEAR_MISS = {
    "kind": "near_miss",
    "area": AREA,
    "occurred_at": "2026-11-21T23:40:00Z",
    "location": {"lat": 53.9591, "lon": -1.0817},
    "suspected_substances": ["heroin"],
    "naloxone_doses": 2,
    "outcome": "hospital",
    "source": {"type": "outreach", "name": "York outreach"},
}
ALERT = {
    "title": "Nitazenes in fake oxycodone",
    "template": "professional",
    "level": "professional",
    "priority": "urgent",
    "areas": [AREA],
    "fields": {
        "summary": "Green tablets marked OC 80, sold as oxycodone, contain metonitazene.",
        "advice": "Carry extra naloxone; more than one dose may be needed.",
    },
}


class Call(Protocol):
    def __call__(
        self, method: str, path: str, headers: dict[str, str], body: Any = None
    ) -> tuple[int, Any]: ...


def run_thin_path(
    call: Call,
    admin: dict[str, str],
    reporter: dict[str, str],
    drafter: dict[str, str],
    approvers: list[dict[str, str]],
    wait_for: Callable[..., Any],
    otp: Callable[[dict[str, str]], str],
) -> dict[str, Any]:
    """Register recipients, file a near miss, draft, submit, approve, and wait for delivery.
    `otp(headers)` is the current two-factor code of whoever the headers belong to: a token
    alone cannot approve."""
    status, area = call("POST", "/api/v1/areas", admin, {"code": AREA.lower(), "name": "Selby"})
    assert status == 201 and area["code"] == AREA, area
    status, service = call(
        "POST",
        "/api/v1/services",
        admin,
        {"name": "York NSP", "type": "needle_syringe_programme", "areas": [AREA]},
    )
    assert status == 201, service
    status, contact = call(
        "POST",
        f"/api/v1/services/{service['id']}/contacts",
        admin,
        {
            "name": "Duty worker",
            "email": "duty@example.org",
            "phone": "07700 900123",
            "channels": ["sms", "email"],
            "verified": True,
        },
    )
    assert status == 201 and contact["phone"] == "+447700900123", contact

    status, report = call("POST", "/api/v1/reports", reporter, NEAR_MISS)
    assert status == 201, report
    assert report["kind"] == "near_miss"
    # Two naloxone doses is an unusual presentation: the filing raised a signal at once.
    assert [(s["kind"], s["severity"]) for s in report["signals"]] == [("presentation", "amber")]
    assert report["location"] == {"lat": 53.959, "lon": -1.082}, "location is rounded on storage"

    # Nothing goes out before the panel has graded the case and decided to alert.
    decide_over_http(call, drafter, "report", report["id"])
    status, alert = call("POST", "/api/v1/alerts", drafter, {**ALERT, "report_id": report["id"]})
    assert status == 201 and alert["status"] == "draft" and alert["version"] == 1, alert
    alert_id = alert["id"]
    status, submitted = call("POST", f"/api/v1/alerts/{alert_id}/submit", drafter)
    assert status == 200 and submitted["status"] == "awaiting_approval"

    approve = f"/api/v1/alerts/{alert_id}/approve"
    status, refused = call("POST", approve, approvers[0])
    assert status == 422 and "otp" in refused["fields"], refused  # the token alone: no
    status, refused = call("POST", approve, drafter, {"otp": otp(drafter)})
    assert status == 403 and refused["error"] == "forbidden", refused

    for number, approver in enumerate(approvers, start=1):
        status, approved = call("POST", approve, approver, {"otp": otp(approver)})
        assert status == 200, approved
        assert approved["approvals"] == number
        expected = "approved" if number == len(approvers) else "awaiting_approval"
        assert approved["status"] == expected
    status, again = call("POST", approve, approvers[0], {"otp": otp(approvers[0])})
    assert status == 409, again

    def all_sent() -> dict[str, Any] | None:
        _, view = call("GET", f"/api/v1/alerts/{alert_id}", drafter)
        counts = view["deliveries"]
        return view if counts["total"] == 2 and counts["sent"] == 2 else None

    return dict(wait_for(all_sent, timeout=30))
