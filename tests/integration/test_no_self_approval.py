"""The drafter can never approve, through any door: the API with their own valid code, the
web form with their own CSRF token, another member's approve request replayed with their
session or token, an edit that makes someone an author, a revision they wrote (also after
a rejection), a withdrawal they asked for. Each attempt is refused and the alert still
needs the required number of distinct panel members who wrote none of it.

Then a property test drives random actors and actions through the real use cases against
PostgreSQL and checks the invariant on every version ever sent: at least
LDIS_APPROVALS_REQUIRED standing approvals of the revision sent, from distinct people, none
of them an author of that version."""

from __future__ import annotations

import contextlib
import dataclasses
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from ldis.bootstrap import Container
from ldis.domain.errors import DomainError
from ldis.domain.principal import Principal
from ldis.domain.roles import Role
from ldis.services import alerts, areas, recipients
from ldis.services.accounts import create_user
from ldis.store.models import Alert, AlertApproval, AlertVersion, AuditEvent, Delivery
from ldis.web.app import create_app
from tests.integration import selfservice as s
from tests.integration.cases import decided_report, decided_report_via
from tests.integration.conftest import People
from tests.integration.thin_path import ALERT, AREA
from tests.integration.webpages import Web, csrf, make_web, text

pytestmark = pytest.mark.integration

API = "/api/v1"
MEMBERS = ("dana", "ali", "bea", "cy", "eve")  # dana drafts; the others approve or edit


# --- the invariant, read from the database ----------------------------------------------------


def assert_every_sent_version_had_distinct_non_author_approvals(
    container: Container, required: int
) -> int:
    """Check every version that went out (approved, or with deliveries written); return how
    many there were."""
    with container.db.transaction() as session:
        versions = session.scalars(select(AlertVersion)).all()
        delivered = {
            (alert_id, number)
            for alert_id, number in session.execute(
                select(Delivery.alert_id, Delivery.version).distinct()
            )
        }
        sent = 0
        for version in versions:
            key = (version.alert_id, version.version)
            if version.state != "approved":
                assert key not in delivered, f"{key} has deliveries but was never approved"
                continue
            sent += 1
            approvers = session.scalars(
                select(AlertApproval.user_id).where(
                    AlertApproval.alert_id == version.alert_id,
                    AlertApproval.version == version.version,
                    AlertApproval.revision == version.revision,
                    AlertApproval.voided_at.is_(None),
                )
            ).all()
            assert len(approvers) == len(set(approvers)), f"{key}: someone approved twice"
            authors = set(version.author_ids) | {version.drafter_id}
            assert not authors & set(approvers), f"{key}: an author approved {approvers}"
            assert len(set(approvers)) >= required, f"{key}: only {approvers}"
    return sent


# --- the doors --------------------------------------------------------------------------------


class Panel:
    """Five panel members, each with a browser (signed in with two-factor), an API token and
    an authenticator app; a decided case and a service that receives alerts."""

    def __init__(self, web: Web, client: FlaskClient, admin: dict[str, str]) -> None:
        self.web, self.client = web, client
        self.browsers = {name: web.browser(name, Role.panel) for name in MEMBERS}
        self.tokens = {name: web.token(name) for name in MEMBERS}
        self.report_id = decided_report_via(client, self.tokens["dana"], AREA)
        service = client.post(
            f"{API}/services",
            json={"name": "Selby NSP", "type": "needle_syringe_programme", "areas": [AREA]},
            headers=admin,
        ).get_json()
        response = client.post(
            f"{API}/services/{service['id']}/contacts",
            json={
                "name": "Duty worker",
                "email": "duty@example.org",
                "channels": ["email"],
                "verified": True,
            },
            headers=admin,
        )
        assert response.status_code == 201, response.get_json()

    def code(self, name: str) -> str:
        return self.web.apps.code(f"{name}@example.org")

    def call(self, name: str, method: str, path: str, body: Any = None) -> TestResponse:
        return self.client.open(f"{API}{path}", method=method, json=body, headers=self.tokens[name])

    def api_approve(self, name: str, alert_id: int, **extra: Any) -> TestResponse:
        body = {"otp": self.code(name), **extra}
        return self.call(name, "POST", f"/alerts/{alert_id}/approve", body)

    def draft(self, name: str = "dana") -> int:
        response = self.call(name, "POST", "/alerts", {**ALERT, "report_id": self.report_id})
        assert response.status_code == 201, response.get_json()
        return int(response.get_json()["id"])

    def submitted(self, name: str = "dana") -> int:
        alert_id = self.draft(name)
        assert self.call(name, "POST", f"/alerts/{alert_id}/submit").status_code == 200
        return alert_id

    def sent(self) -> int:
        alert_id = self.submitted()
        for name in ("ali", "bea"):
            assert self.api_approve(name, alert_id).status_code == 200
        assert self.view(alert_id)["status"] == "approved"
        return alert_id

    def view(self, alert_id: int) -> dict[str, Any]:
        body: dict[str, Any] = self.call("dana", "GET", f"/alerts/{alert_id}").get_json()
        return body

    def page(self, name: str, alert_id: int) -> str:
        return text(self.browsers[name].get(f"/alerts/{alert_id}"))

    def approve_form(self, name: str, alert_id: int) -> dict[str, str]:
        """What `name`'s browser would post to approve: their CSRF token, the revision read."""
        html = self.page(name, alert_id)
        revision = re.search(r'name="revision" value="(\d+)"', html)
        assert revision, f"no approve form for {name}"
        return {
            "csrf_token": csrf(self.browsers[name].get(f"/alerts/{alert_id}")),
            "revision": revision.group(1),
        }

    def web_post(self, name: str, alert_id: int, action: str, data: dict[str, str]) -> str:
        """Post from `name`'s browser; return the page the redirect leads to (or this one)."""
        browser = self.browsers[name]
        response = browser.post(f"/alerts/{alert_id}/{action}", data=data)
        if response.status_code == 302:
            return text(browser.get(response.headers["Location"]))
        return f"[{response.status_code}] " + text(response)

    def own_form(self, name: str, alert_id: int, revision: str) -> dict[str, str]:
        """A form post with `name`'s own valid CSRF token (read from any page of theirs)."""
        page = self.browsers[name].get(f"/alerts/{alert_id}")
        return {"csrf_token": csrf(page), "revision": revision}


@pytest.fixture
def panel(container: Container, people: People) -> Panel:
    local: Flask = create_app(dataclasses.replace(container, queue=s.RecordingQueue()))
    client = local.test_client()
    web = make_web(local, container, client, people)
    return Panel(web, client, people.headers("admin", Role.admin))


AUTHOR_REFUSED = "You wrote or edited this alert, so you cannot approve it."


def approvals(container: Container, alert_id: int) -> list[int]:
    with container.db.transaction() as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        return list(
            session.scalars(
                select(AlertApproval.user_id)
                .where(
                    AlertApproval.alert_id == alert_id,
                    AlertApproval.version == alert.current_version,
                    AlertApproval.voided_at.is_(None),
                )
                .order_by(AlertApproval.id)
            )
        )


def test_the_drafter_cannot_approve_by_api_web_or_replay(
    panel: Panel, container: Container
) -> None:
    alert_id = panel.submitted("dana")
    ids = {name: _user_id(container, name) for name in MEMBERS}

    # The API, with the drafter's own token and a good code of her own.
    refused = panel.api_approve("dana", alert_id)
    assert refused.status_code == 403 and refused.get_json()["message"] == AUTHOR_REFUSED
    refused = panel.api_approve("dana", alert_id, revision=1)
    assert refused.status_code == 403

    # The web form: no button for her, and a hand-made post with her own CSRF token.
    html = panel.page("dana", alert_id)
    assert f"/alerts/{alert_id}/approve" not in html and "you wrote or edited it" in html
    assert AUTHOR_REFUSED in panel.web_post(
        "dana", alert_id, "approve", panel.own_form("dana", alert_id, "1")
    )

    # Another member's approval, replayed: with his CSRF token in her session ...
    ali_form = panel.approve_form("ali", alert_id)
    replayed = panel.web_post("dana", alert_id, "approve", ali_form)
    assert replayed.startswith("[400]") and "Nothing was saved" in replayed
    # ... or with every field of his but her own token.
    mixed = {**ali_form, "csrf_token": panel.own_form("dana", alert_id, "1")["csrf_token"]}
    assert AUTHOR_REFUSED in panel.web_post("dana", alert_id, "approve", mixed)
    assert approvals(container, alert_id) == []

    # Ali's own post counts once; the same post again is a repeat, not a second approval.
    assert "Your approval is recorded: 1 of 2." in panel.web_post(
        "ali", alert_id, "approve", ali_form
    )
    again = panel.web_post("ali", alert_id, "approve", ali_form)
    assert "You have already approved this version of the alert." in again
    # Bea's API request (her code), replayed with Dana's token, is refused.
    bea_body = {"otp": panel.code("bea"), "revision": 1}
    stolen = panel.call("dana", "POST", f"/alerts/{alert_id}/approve", bea_body)
    assert stolen.status_code == 403
    assert approvals(container, alert_id) == [ids["ali"]]
    assert panel.view(alert_id)["status"] == "awaiting_approval"

    sent = panel.call("bea", "POST", f"/alerts/{alert_id}/approve", bea_body)
    assert sent.status_code == 200 and sent.get_json()["status"] == "approved"
    # Replaying Bea's request (her token, her used code) adds nothing.
    assert panel.call("bea", "POST", f"/alerts/{alert_id}/approve", bea_body).status_code in (
        403,
        409,
    )
    assert approvals(container, alert_id) == [ids["ali"], ids["bea"]]
    assert assert_every_sent_version_had_distinct_non_author_approvals(container, 2) == 1


def _user_id(container: Container, name: str) -> int:
    from ldis.store.models import User

    with container.db.transaction() as session:
        found = session.scalar(select(User.id).where(User.email == f"{name}@example.org"))
        assert found is not None
        return int(found)


def test_an_editor_becomes_an_author_and_cannot_approve(panel: Panel, container: Container) -> None:
    alert_id = panel.submitted("dana")
    assert panel.api_approve("ali", alert_id).status_code == 200
    edited = panel.call(
        "cy",
        "PUT",
        f"/alerts/{alert_id}",
        {**ALERT, "report_id": panel.report_id, "title": "Nitazenes in fake oxycodone (Selby)"},
    )
    assert edited.status_code == 200, edited.get_json()
    assert approvals(container, alert_id) == []  # the edit voided Ali's approval
    refused = panel.api_approve("cy", alert_id)
    assert refused.status_code == 403 and refused.get_json()["message"] == AUTHOR_REFUSED
    assert AUTHOR_REFUSED in panel.web_post(
        "cy", alert_id, "approve", panel.own_form("cy", alert_id, "2")
    )
    # An approval of the words before the edit is refused as stale, even for a non-author.
    stale = panel.api_approve("eve", alert_id, revision=1)
    assert stale.status_code == 409
    assert panel.api_approve("dana", alert_id).status_code == 403
    assert panel.api_approve("ali", alert_id).status_code == 200  # read again, approves again
    assert panel.view(alert_id)["status"] == "awaiting_approval"
    assert panel.api_approve("bea", alert_id, revision=2).status_code == 200
    assert panel.view(alert_id)["status"] == "approved"
    assert assert_every_sent_version_had_distinct_non_author_approvals(container, 2) == 1


def test_a_revision_its_writer_submits_needs_two_others(panel: Panel, container: Container) -> None:
    alert_id = panel.sent()
    revised = panel.call("dana", "POST", f"/alerts/{alert_id}/revise")
    assert revised.status_code == 201 and revised.get_json()["version"] == 2
    assert panel.call("dana", "POST", f"/alerts/{alert_id}/submit").status_code == 200
    assert panel.api_approve("dana", alert_id).status_code == 403
    # Rejected, then written again by the same person and submitted again: still hers.
    rejected = panel.call("ali", "POST", f"/alerts/{alert_id}/reject", {"reason": "Too vague."})
    assert rejected.status_code == 200
    again = panel.call("dana", "POST", f"/alerts/{alert_id}/revise")
    assert again.status_code == 201 and again.get_json()["version"] == 3
    assert panel.call("dana", "POST", f"/alerts/{alert_id}/submit").status_code == 200
    assert panel.api_approve("dana", alert_id).status_code == 403
    assert AUTHOR_REFUSED in panel.web_post(
        "dana", alert_id, "approve", panel.own_form("dana", alert_id, "1")
    )
    # Someone else's revision: Bea writes version 4 after another rejection, and may not
    # approve it, while Dana, who wrote none of version 4, may.
    panel.call("eve", "POST", f"/alerts/{alert_id}/reject", {"reason": "Wrong area."})
    assert panel.call("bea", "POST", f"/alerts/{alert_id}/revise").status_code == 201
    assert panel.call("bea", "POST", f"/alerts/{alert_id}/submit").status_code == 200
    assert panel.api_approve("bea", alert_id).status_code == 403
    assert panel.api_approve("dana", alert_id).status_code == 200
    assert panel.api_approve("cy", alert_id).status_code == 200
    view = panel.view(alert_id)
    assert view["status"] == "approved" and view["live_version"] == 4
    assert assert_every_sent_version_had_distinct_non_author_approvals(container, 2) == 2


def test_whoever_asks_for_a_withdrawal_cannot_approve_it(
    panel: Panel, container: Container
) -> None:
    alert_id = panel.sent()
    asked = panel.call(
        "ali",
        "POST",
        f"/alerts/{alert_id}/withdraw",
        {"reason": "The lab result was wrong.", "otp": panel.code("ali")},
    )
    assert asked.status_code == 200 and asked.get_json()["status"] == "withdrawal_requested"
    refused = panel.api_approve("ali", alert_id)
    assert refused.status_code == 403 and refused.get_json()["message"] == AUTHOR_REFUSED
    html = panel.page("ali", alert_id)
    assert "you asked for the withdrawal" in html
    assert AUTHOR_REFUSED in panel.web_post(
        "ali", alert_id, "approve", panel.own_form("ali", alert_id, "1")
    )
    assert approvals(container, alert_id) == []
    # The drafter of the alert did not ask for the withdrawal: she may approve it.
    assert panel.api_approve("dana", alert_id).status_code == 200
    assert panel.view(alert_id)["status"] == "withdrawal_requested"
    assert panel.api_approve("cy", alert_id).status_code == 200
    assert panel.view(alert_id)["status"] == "withdrawn"
    assert assert_every_sent_version_had_distinct_non_author_approvals(container, 2) == 2


# --- random actors and actions through the use cases ----------------------------------------


# Approvals and submissions weigh more, so that sequences get as far as sending.
ACTIONS = (
    "submit",
    "submit_by_author",  # `who` picks among the version's authors: submissions that count
    "approve",
    "approve",
    "approve",
    "approve_seen",
    "edit",
    "reject",
    "revise",
    "withdraw",
)


@pytest.fixture
def cast(container: Container) -> dict[str, Any]:
    admin = s.user(container, "admin", Role.admin)
    areas.create_area(container.db, admin, {"code": AREA, "name": "Selby"})
    service = recipients.create_service(
        container.db, admin, {"name": "Selby NSP", "type": "pharmacy", "areas": [AREA]}
    )
    recipients.add_contact(
        container.db,
        admin,
        service["id"],
        {"name": "Duty", "email": "duty@example.org", "channels": ["email"], "verified": True},
        sending=container.sending(),
    )
    members = []
    for n in range(4):
        email = f"member{n}@example.org"
        user_id = create_user(
            container.db, email=email, name=f"Member {n}", roles=frozenset({Role.panel})
        )
        members.append(Principal(user_id=user_id, email=email, roles=frozenset({Role.panel})))
    return {"members": members, "report_id": decided_report(container, members[0], AREA)}


def test_random_sequences_never_send_without_distinct_non_authors(
    container: Container, cast: dict[str, Any]
) -> None:
    members: list[Principal] = cast["members"]
    required = container.settings.approvals_required
    templates = container.templates()
    body = {**ALERT, "report_id": cast["report_id"]}
    sent_so_far: list[int] = []  # versions sent by all examples so far, after each

    @settings(
        max_examples=60,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(
        drafter=st.integers(0, 3),
        steps=st.lists(
            st.tuples(st.sampled_from(ACTIONS), st.integers(0, 3)), min_size=6, max_size=30
        ),
    )
    def run(drafter: int, steps: list[tuple[str, int]]) -> None:
        alert_id = alerts.draft_alert(container.db, members[drafter], body, templates=templates)[
            "id"
        ]
        for number, (action, who) in enumerate(steps):
            # A refusal (the state or the rule did not allow it) changes nothing; go on.
            with contextlib.suppress(DomainError):
                act(alert_id, action, members[who], number)
        sent_so_far.append(
            assert_every_sent_version_had_distinct_non_author_approvals(container, required)
        )
        assert_standing_approvals_are_by_non_authors(container)

    def act(alert_id: int, action: str, actor: Principal, number: int) -> None:
        if action == "edit":
            changed = {**body, "title": f"{ALERT['title']} ({number})"}
            alerts.edit_alert(container.db, actor, alert_id, changed, templates=templates)
        elif action == "submit":
            alerts.submit_alert(container.db, actor, alert_id)
        elif action == "submit_by_author":
            with container.db.transaction() as session:
                alert = session.get(Alert, alert_id)
                assert alert is not None
                authors = alert.version_row().author_ids
            author = next(m for m in members if m.user_id == authors[number % len(authors)])
            alerts.submit_alert(container.db, author, alert_id)
        elif action in ("approve", "approve_seen"):
            seen = None
            if action == "approve_seen":
                with container.db.transaction() as session:
                    alert = session.get(Alert, alert_id)
                    assert alert is not None
                    seen = alert.version_row().revision
            alerts.approve_alert(
                container.db,
                actor,
                alert_id,
                required=required,
                queue=s.RecordingQueue(),
                seen_revision=seen,
            )
        elif action == "reject":
            alerts.reject_alert(container.db, actor, alert_id, "Not yet.")
        elif action == "revise":
            alerts.revise_alert(container.db, actor, alert_id, None, templates=templates)
        else:
            alerts.withdraw_alert(container.db, actor, alert_id, "No longer true.")

    run()
    # Not vacuous: the random sequences did send versions (the invariant held for each).
    assert sent_so_far and sent_so_far[-1] >= 1, sent_so_far


def assert_standing_approvals_are_by_non_authors(container: Container) -> None:
    with container.db.transaction() as session:
        # Every standing approval is by a non-author of its version (an approver who then
        # edits becomes an author, and the edit voids every approval given so far).
        for approver, authors in session.execute(
            select(AlertApproval.user_id, AlertVersion.author_ids)
            .join(
                AlertVersion,
                (AlertVersion.alert_id == AlertApproval.alert_id)
                & (AlertVersion.version == AlertApproval.version),
            )
            .where(AlertApproval.voided_at.is_(None))
        ):
            assert approver not in authors
        given_events = session.scalar(
            select(func.count()).where(AuditEvent.action == "alert.approval_given")
        )
        assert given_events == session.scalar(select(func.count()).select_from(AlertApproval))
