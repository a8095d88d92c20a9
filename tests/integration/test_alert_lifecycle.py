"""The panel's whole loop through the API, against PostgreSQL with a real worker process:
grade, decide, draft, preview, approve (refused for authors and repeat approvers, voided by
an edit), send, revise (UPDATE to the same audience plus new), withdraw (approved like a
send, notice to everyone who got it), exercise, expiry, review reminders and the audit log.
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from ldis.bootstrap import Container
from ldis.domain.roles import Role
from ldis.services import alert_lifecycle
from ldis.store.models import AuditEvent, Delivery, Notice, OutboxMessage
from tests.integration.cases import DECISION, GRADE, near_miss
from tests.integration.conftest import People, wait_for

pytestmark = pytest.mark.integration

AREA, OTHER_AREA = "SELBY", "TADCASTER"
BODY: dict[str, Any] = {
    "title": "Nitazenes in fake oxycodone",
    "template": "professional",
    "priority": "urgent",
    "areas": [AREA],
    "fields": {
        "summary": "Green tablets marked OC 80, sold as oxycodone, contain metonitazene.",
        "advice": "Carry extra naloxone; more than one dose may be needed.",
    },
}


class Api:
    """The API as one panel member or another. Approving and withdrawing send the
    member's current two-factor code ("otp"), as they must: a token alone is not enough."""

    def __init__(self, client: FlaskClient, people: People) -> None:
        self.client, self.people = client, people

    def __call__(
        self, method: str, path: str, who: dict[str, str], body: Any = None
    ) -> tuple[int, Any]:
        if path.endswith(("/approve", "/withdraw")) and "otp" not in (body or {}):
            body = {**(body or {}), "otp": self.people.otp_for(who)}
        response = self.client.open(f"/api/v1{path}", method=method, json=body, headers=who)
        return response.status_code, response.get_json()

    def ok(self, method: str, path: str, who: dict[str, str], body: Any = None) -> Any:
        status, answer = self(method, path, who, body)
        assert status in (200, 201), (status, answer)
        return answer


def _service(api: Api, admin: dict[str, str], name: str, area: str, email: str) -> int:
    service = api.ok(
        "POST",
        "/services",
        admin,
        {"name": name, "type": "needle_syringe_programme", "areas": [area]},
    )
    api.ok(
        "POST",
        f"/services/{service['id']}/contacts",
        admin,
        {"name": f"{name} duty", "email": email, "channels": ["email"], "verified": True},
    )
    return int(service["id"])


@pytest.fixture
def world(client: FlaskClient, people: People) -> dict[str, Any]:
    api = Api(client, people)
    admin = people.headers("admin", Role.admin)
    for code, name in ((AREA, "Selby"), (OTHER_AREA, "Tadcaster")):
        api.ok("POST", "/areas", admin, {"code": code, "name": name})
    services = {
        "selby": _service(api, admin, "Selby NSP", AREA, "selby@example.org"),
        "selby2": _service(api, admin, "Selby hostel", AREA, "hostel@example.org"),
        "tad": _service(api, admin, "Tadcaster NSP", OTHER_AREA, "tad@example.org"),
    }
    panel = {n: people.headers(n, Role.panel) for n in ("drafter", "p2", "p3", "p4")}
    report = api.ok("POST", "/reports", panel["drafter"], near_miss(AREA))
    return {"api": api, "panel": panel, "services": services, "report_id": report["id"]}


def _decide(world: dict[str, Any], decision: str = "formal_alert") -> None:
    api, panel, report_id = world["api"], world["panel"], world["report_id"]
    for name in ("p2", "p3"):
        api.ok("POST", f"/reports/{report_id}/grades", panel[name], GRADE)
    api.ok(
        "POST",
        f"/reports/{report_id}/decision",
        panel["p2"],
        {**DECISION, "decision": decision},
    )


def _outbox(container: Container, alert_id: int, version: int) -> list[OutboxMessage]:
    with container.db.transaction() as session:
        rows = session.scalars(
            select(OutboxMessage)
            .join(Delivery, Delivery.id == OutboxMessage.delivery_id)
            .where(Delivery.alert_id == alert_id, Delivery.version == version)
            .order_by(OutboxMessage.recipient)
        ).all()
        session.expunge_all()
        return list(rows)


def _sent(api: Api, who: dict[str, str], alert_id: int, total: int) -> dict[str, Any] | None:
    view = api.ok("GET", f"/alerts/{alert_id}", who)
    counts = view["deliveries"]
    return view if counts["total"] == total and counts["sent"] == total else None


def test_the_whole_loop_send_revise_withdraw(
    container: Container, world: dict[str, Any], worker: subprocess.Popen[str]
) -> None:
    api, panel = world["api"], world["panel"]
    drafter, p2, p3, p4 = (panel[n] for n in ("drafter", "p2", "p3", "p4"))
    body = {**BODY, "report_id": world["report_id"]}

    # Nothing goes out before the panel has decided: drafting is fine, approval is not.
    alert = api.ok("POST", "/alerts", drafter, body)
    alert_id = alert["id"]
    assert (alert["status"], alert["version"], alert["purpose"]) == ("draft", 1, "alert")
    api.ok("POST", f"/alerts/{alert_id}/submit", drafter)
    status, refused = api("POST", f"/alerts/{alert_id}/approve", p2)
    assert status == 409 and "decided" in refused["message"], refused
    _decide(world)

    preview = api.ok("GET", f"/alerts/{alert_id}/preview", p2)
    assert preview["audience"] == {
        "services": 2,
        "contacts": 2,
        "messages": 2,
        "by_channel": {"email": 2},
    }
    email = preview["messages"]["channels"]["email"]
    assert "metonitazene" in email["text"] and "LDIS-" in email["text"]
    assert preview["messages"]["channels"]["sms"]["sms"]["segments"] >= 1

    # The drafter never approves; a repeat approval is refused.
    status, _ = api("POST", f"/alerts/{alert_id}/approve", drafter)
    assert status == 403
    assert api.ok("POST", f"/alerts/{alert_id}/approve", p2)["approvals"] == 1
    status, _ = api("POST", f"/alerts/{alert_id}/approve", p2)
    assert status == 409

    # An edit voids the approvals and makes the editor an author, who cannot approve.
    edited = api.ok(
        "PUT",
        f"/alerts/{alert_id}",
        p3,
        {**body, "fields": {**body["fields"], "appearance": "Green, round, OC 80"}},
    )
    assert (edited["approvals"], edited["revision"], edited["status"]) == (
        0,
        2,
        "awaiting_approval",
    )
    status, stale = api("POST", f"/alerts/{alert_id}/approve", p2, {"revision": 1})
    assert status == 409 and "revision" in stale["fields"], stale
    status, _ = api("POST", f"/alerts/{alert_id}/approve", p3)
    assert status == 403
    assert api.ok("POST", f"/alerts/{alert_id}/approve", p2, {"revision": 2})["approvals"] == 1
    sent = api.ok("POST", f"/alerts/{alert_id}/approve", p4, {"revision": 2})
    assert sent["status"] == "approved" and sent["live_version"] == 1

    view = wait_for(lambda: _sent(api, drafter, alert_id, 2), timeout=30)
    first = _outbox(container, alert_id, 1)
    assert [m.recipient for m in first] == ["hostel@example.org", "selby@example.org"]
    assert all("Green, round, OC 80" in m.text_body for m in first)
    timing = view["timing"]
    assert timing["first_report_at"] and timing["decided_at"] and timing["approved_at"]
    assert timing["first_delivery_at"] and timing["last_delivery_at"]
    assert timing["seconds"]["decision_to_approval"] >= 0
    assert timing["seconds"]["approval_to_last_delivery"] >= 0

    # Revise: a new version, approved again, to the same audience plus the new area.
    revised = api.ok(
        "POST",
        f"/alerts/{alert_id}/revise",
        p3,
        {
            **body,
            "areas": [OTHER_AREA],
            "fields": {**body["fields"], "what_changed": "Now also seen in Tadcaster."},
        },
    )
    assert (revised["version"], revised["purpose"], revised["status"]) == (2, "update", "draft")
    assert revised["live_version"] == 1 and revised["active"] is True
    api.ok("POST", f"/alerts/{alert_id}/submit", p3)
    preview = api.ok("GET", f"/alerts/{alert_id}/preview", p2)
    assert preview["audience"]["contacts"] == 3  # two who had it, one new
    api.ok("POST", f"/alerts/{alert_id}/approve", p2)
    api.ok("POST", f"/alerts/{alert_id}/approve", drafter)  # not an author of version 2
    wait_for(lambda: _sent(api, drafter, alert_id, 5), timeout=30)
    update = _outbox(container, alert_id, 2)
    assert [m.recipient for m in update] == [
        "hostel@example.org",
        "selby@example.org",
        "tad@example.org",
    ]
    assert all("UPDATE" in (m.subject or "") + m.text_body for m in update)

    # Withdraw: approved like a send, never by whoever asked; a notice to all who got it.
    status, _ = api("POST", f"/alerts/{alert_id}/withdraw", p4, {"reason": ""})
    assert status == 422
    asked = api.ok(
        "POST", f"/alerts/{alert_id}/withdraw", p4, {"reason": "Lab retest: no nitazene."}
    )
    assert (asked["status"], asked["version"], asked["purpose"]) == (
        "withdrawal_requested",
        3,
        "withdrawal",
    )
    status, _ = api("POST", f"/alerts/{alert_id}/approve", p4)
    assert status == 403
    api.ok("POST", f"/alerts/{alert_id}/approve", p2)
    withdrawn = api.ok("POST", f"/alerts/{alert_id}/approve", p3)
    assert withdrawn["status"] == "withdrawn" and withdrawn["active"] is False
    wait_for(lambda: _sent(api, drafter, alert_id, 8), timeout=30)
    notices = _outbox(container, alert_id, 3)
    assert len(notices) == 3
    assert all("WITHDRAWN" in m.text_body.upper() for m in notices)
    assert all("Lab retest: no nitazene." in m.text_body for m in notices)

    # A withdrawn alert cannot be approved, revised or withdrawn again.
    for action, payload in (("approve", None), ("revise", None), ("withdraw", {"reason": "x"})):
        status, answer = api("POST", f"/alerts/{alert_id}/{action}", p2, payload)
        assert status == 409, (action, answer)
    assert [a["id"] for a in api.ok("GET", "/alerts?state=ended", p2)] == [alert_id]
    assert api.ok("GET", "/alerts?state=active", p2) == []

    actions = [e["action"] for e in api.ok("GET", f"/alerts/{alert_id}/history", p2)]
    for expected in (
        "alert.drafted",
        "alert.submitted",
        "alert.approval_given",
        "alert.edited",
        "alert.approved",
        "alert.sent",
        "alert.revised",
        "alert.withdrawal_requested",
        "alert.withdrawn",
    ):
        assert expected in actions, (expected, actions)
    assert (
        actions.index("alert.drafted")
        < actions.index("alert.sent")
        < actions.index("alert.withdrawn")
    )
    edit = next(
        e for e in api.ok("GET", f"/alerts/{alert_id}/history", p2) if e["action"] == "alert.edited"
    )
    assert edit["actor"] == "P3" and "fields.appearance" in edit["detail"]["changes"]


def test_a_decision_not_to_alert_blocks_approval(
    container: Container, world: dict[str, Any]
) -> None:
    api, panel = world["api"], world["panel"]
    _decide(world, decision="no_further_action")
    alert = api.ok("POST", "/alerts", panel["drafter"], {**BODY, "report_id": world["report_id"]})
    api.ok("POST", f"/alerts/{alert['id']}/submit", panel["drafter"])
    status, answer = api("POST", f"/alerts/{alert['id']}/approve", panel["p2"])
    assert status == 409 and "not decided to share" in answer["message"]
    unlinked = api.ok("POST", "/alerts", panel["drafter"], BODY)
    api.ok("POST", f"/alerts/{unlinked['id']}/submit", panel["drafter"])
    status, answer = api("POST", f"/alerts/{unlinked['id']}/approve", panel["p2"])
    assert status == 409 and "signal_id" in answer["fields"]


def test_an_exercise_reaches_only_its_participants_and_says_so(
    container: Container, client: FlaskClient, world: dict[str, Any], worker: subprocess.Popen[str]
) -> None:
    api, panel, services = world["api"], world["panel"], world["services"]
    body = {
        **BODY,
        "title": "Exercise Nightingale: nitazene cluster",
        "exercise": True,
        "participants": [services["selby"], services["tad"]],
    }
    alert = api.ok("POST", "/alerts", panel["drafter"], body)
    assert alert["exercise"] is True and alert["kind"] == "exercise"
    api.ok("POST", f"/alerts/{alert['id']}/submit", panel["drafter"])
    preview = api.ok("GET", f"/alerts/{alert['id']}/preview", panel["p2"])
    assert preview["audience"]["services"] == 2
    for channel in preview["messages"]["channels"].values():
        assert "EXERCISE" in channel["text"]
    # Exercises need no panel decision: they rehearse the loop.
    api.ok("POST", f"/alerts/{alert['id']}/approve", panel["p2"])
    api.ok("POST", f"/alerts/{alert['id']}/approve", panel["p3"])
    wait_for(lambda: _sent(api, panel["p2"], alert["id"], 2), timeout=30)
    messages = _outbox(container, alert["id"], 1)
    assert [m.recipient for m in messages] == ["selby@example.org", "tad@example.org"]
    assert all(m.subject and m.subject.startswith("EXERCISE") for m in messages)
    assert all("EXERCISE" in m.text_body and "EXERCISE" in (m.html_body or "") for m in messages)

    with container.db.transaction() as session:
        delivery_id = session.scalar(
            select(OutboxMessage.delivery_id).where(OutboxMessage.recipient == "tad@example.org")
        )
    assert delivery_id is not None
    token = container.links.ack_url(delivery_id).rsplit("/", 1)[1]
    assert client.get(f"/ack/{token}").status_code == 200
    acks = api.ok("GET", f"/alerts/{alert['id']}/acknowledgements", panel["p2"])
    assert [(a["service"], a["channel"]) for a in acks] == [("Tadcaster NSP", "email")]
    assert acks[0]["seconds_after_sending"] >= 0
    assert [a["id"] for a in api.ok("GET", "/alerts?state=exercises", panel["p2"])] == [alert["id"]]


def test_expiry_takes_a_live_alert_off_the_active_list(
    container: Container, world: dict[str, Any]
) -> None:
    api, panel = world["api"], world["panel"]
    _decide(world)
    soon = datetime.now(UTC) + timedelta(hours=2)
    body = {**BODY, "report_id": world["report_id"], "expires_at": soon.isoformat()}
    alert = api.ok("POST", "/alerts", panel["drafter"], body)
    api.ok("POST", f"/alerts/{alert['id']}/submit", panel["drafter"])
    api.ok("POST", f"/alerts/{alert['id']}/approve", panel["p2"])
    api.ok("POST", f"/alerts/{alert['id']}/approve", panel["p3"])
    assert [a["id"] for a in api.ok("GET", "/alerts?state=active", panel["p2"])] == [alert["id"]]

    assert alert_lifecycle.expire_due(container.db, now=soon - timedelta(minutes=1)) == []
    assert alert_lifecycle.expire_due(container.db, now=soon) == [alert["id"]]
    assert alert_lifecycle.expire_due(container.db, now=soon) == []  # idempotent
    view = api.ok("GET", f"/alerts/{alert['id']}", panel["p2"])
    assert view["status"] == "expired" and view["active"] is False

    # What was still queued at expiry is cancelled, not sent (a worker may be mid-send).
    def settled() -> dict[str, int] | None:
        counts = api.ok("GET", f"/alerts/{alert['id']}", panel["p2"])["deliveries"]
        return counts if counts["queued"] == 0 else None

    counts = wait_for(settled, timeout=30)
    assert counts["cancelled"] + counts["sent"] == 2
    status, answer = api("POST", f"/alerts/{alert['id']}/revise", panel["p2"])
    assert status == 409 and "expired" in answer["message"]
    assert api.ok("GET", "/alerts?state=active", panel["p2"]) == []


def test_the_panel_is_reminded_once_before_review(
    container: Container, world: dict[str, Any]
) -> None:
    api, panel = world["api"], world["panel"]
    _decide(world)
    review = datetime.now(UTC) + timedelta(days=3)
    body = {**BODY, "report_id": world["report_id"], "review_by": review.isoformat()}
    alert = api.ok("POST", "/alerts", panel["drafter"], body)
    api.ok("POST", f"/alerts/{alert['id']}/submit", panel["drafter"])
    api.ok("POST", f"/alerts/{alert['id']}/approve", panel["p2"])
    api.ok("POST", f"/alerts/{alert['id']}/approve", panel["p3"])
    public_url = container.settings.public_url
    assert alert_lifecycle.review_reminders(container.db, public_url) == []
    due = review - timedelta(hours=12)
    ids = alert_lifecycle.review_reminders(container.db, public_url, now=due)
    assert len(ids) == 4  # every panel member
    assert alert_lifecycle.review_reminders(container.db, public_url, now=due) == []
    with container.db.transaction() as session:
        notices = session.scalars(select(Notice).where(Notice.id.in_(ids))).all()
        assert {n.recipient for n in notices} == {
            f"{n}@example.org" for n in ("drafter", "p2", "p3", "p4")
        }
        assert all(f"/alerts/{alert['id']}" in n.text_body for n in notices)


def test_the_audit_log_cannot_be_changed(container: Container, world: dict[str, Any]) -> None:
    api, panel = world["api"], world["panel"]
    api.ok("POST", "/alerts", panel["drafter"], BODY)
    for statement in ("UPDATE audit_events SET action = 'forged'", "DELETE FROM audit_events"):
        with (
            pytest.raises(DBAPIError, match="append-only"),
            container.db.transaction() as session,
        ):
            session.execute(text(statement))
    with container.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent)) > 0
        assert "forged" not in set(session.scalars(select(AuditEvent.action)))
