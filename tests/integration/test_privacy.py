"""Privacy against PostgreSQL: reporters read their own service's reports and no others
(API, web, photos, duplicates); a contact who leaves is erased everywhere, down to the kept
copies of what was sent to them, while the delivery counts stay; everything held about a
contact can be exported (API and a link on the page); and the real processes' logs (the
Celery worker's set-up and `ldis web` under gunicorn) carry no e-mail address or number."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import socket
import subprocess
import sys
from datetime import time
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import func, select, text, update

from ldis.bootstrap import Container
from ldis.domain.errors import NotFound
from ldis.domain.principal import Principal
from ldis.domain.roles import Role
from ldis.services import notices, photos, preferences
from ldis.settings import PROJECT_ROOT
from ldis.store.models import (
    AuditEvent,
    Base,
    Contact,
    Delivery,
    DeliveryAttempt,
    Notice,
    OutboxMessage,
    ServiceManager,
)
from ldis.web.app import create_app
from tests.integration import selfservice as s
from tests.integration.conftest import People, wait_for
from tests.integration.webpages import Web
from tests.integration.webpages import text as page_text

pytestmark = pytest.mark.integration

API = "/api/v1"


@pytest.fixture
def queue() -> s.RecordingQueue:
    return s.RecordingQueue()


@pytest.fixture
def local(container: Container, queue: s.RecordingQueue) -> Flask:
    """The app with a queue that only records: nothing reaches the broker from here."""
    return create_app(dataclasses.replace(container, queue=queue))


@pytest.fixture
def api(local: Flask) -> FlaskClient:
    return local.test_client()


def _headers(people: People, name: str, *roles: Role) -> dict[str, str]:
    return people.headers(name, *roles)


# --- reporters read their service's reports ---------------------------------------------------


def _report(notes: str, reference: str) -> dict[str, Any]:
    return {
        "kind": "drug_checking",
        "area": "SELBY",
        "sample_obtained_on": "2026-11-20",
        "sold_as": "oxycodone 80 mg",
        "form": "tablet",
        "results": [{"substance": "metonitazene", "method": "lc-ms"}],
        "notes": notes,
        "source": {"type": "drug_checking_service", "name": "Lab", "reference": reference},
    }


def test_reporters_read_the_reports_of_their_own_service(
    api: FlaskClient, people: People, container: Container
) -> None:
    admin = _headers(people, "admin", Role.admin)
    assert api.post(f"{API}/areas", json={"code": "SELBY", "name": "Selby"}, headers=admin)
    services = [
        api.post(
            f"{API}/services",
            json={"name": name, "type": "needle_syringe_programme", "areas": ["SELBY"]},
            headers=admin,
        ).get_json()["id"]
        for name in ("Selby NSP", "Selby hostel")
    ]
    who = {name: _headers(people, name, Role.reporter) for name in ("alice", "bob", "carol", "dan")}
    ids = people.ids

    def link(name: str, service_id: int | None) -> Any:
        return api.patch(f"{API}/users/{ids[name]}", json={"service_id": service_id}, headers=admin)

    linked = link("alice", services[0])
    assert linked.status_code == 200, linked.get_json()
    assert linked.get_json() == {
        "id": ids["alice"],
        "name": "Alice",
        "email": "alice@example.org",
        "roles": ["reporter"],
        "active": True,
        "service_id": services[0],
    }
    assert link("bob", services[0]).status_code == 200
    assert link("carol", services[1]).status_code == 200

    filed = {}
    for name in who:
        response = api.post(
            f"{API}/reports", json=_report(f"Filed by {name}.", name), headers=who[name]
        )
        assert response.status_code == 201, response.get_json()
        filed[name] = response.get_json()

    def listed(name: str) -> set[str]:
        body = api.get(f"{API}/reports", headers=who[name]).get_json()
        return {r["notes"].split()[-1].rstrip(".") for r in body["reports"]}

    assert listed("alice") == listed("bob") == {"alice", "bob"}
    assert listed("carol") == {"carol"}
    assert listed("dan") == {"dan"}  # no service: only their own, as before
    for reader, report, status in [
        ("bob", "alice", 200),
        ("alice", "bob", 200),
        ("carol", "alice", 404),
        ("dan", "alice", 404),
        ("alice", "carol", 404),
    ]:
        got = api.get(f"{API}/reports/{filed[report]['id']}", headers=who[reader])
        assert got.status_code == status, (reader, report)
    # Filtering works within the scope, and never widens it.
    assert (
        api.get(f"{API}/reports?substance=metonitazene", headers=who["carol"]).get_json()[
            "reports"
        ][0]["id"]
        == filed["carol"]["id"]
    )
    # Reading is not writing: only the one who filed (or an admin) adds an update.
    update = api.post(
        f"{API}/reports/{filed['alice']['id']}/updates", json={"text": "More."}, headers=who["bob"]
    )
    assert update.status_code == 404

    # A resend of another service's report says it exists and shows nothing of it.
    resent = api.post(f"{API}/reports", json=_report("Other words.", "alice"), headers=who["carol"])
    assert resent.status_code == 200
    assert resent.get_json() == {
        "id": filed["alice"]["id"],
        "reference": filed["alice"]["reference"],
        "kind": "drug_checking",
        "duplicate": True,
    }
    colleague = api.post(f"{API}/reports", json=_report("Again.", "alice"), headers=who["bob"])
    assert colleague.get_json()["notes"] == "Filed by alice."

    # Unlinking returns to "only your own".
    assert link("bob", None).get_json()["service_id"] is None
    assert listed("bob") == {"bob"}
    with container.db.transaction() as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "user.service_changed")
        ).all()
    assert [e.detail for e in events][-1] == {
        "service_id": None,
        "previous_service_id": services[0],
    }
    assert len(events) == 4


def test_only_admins_set_a_users_service(api: FlaskClient, people: People) -> None:
    admin = _headers(people, "admin", Role.admin)
    reporter = _headers(people, "rita", Role.reporter)
    panel = _headers(people, "pat", Role.panel)
    rita = people.ids["rita"]
    for headers in (reporter, panel):
        response = api.patch(f"{API}/users/{rita}", json={"service_id": 1}, headers=headers)
        assert response.status_code == 403
    assert (
        api.patch(f"{API}/users/999", json={"service_id": None}, headers=admin).status_code == 404
    )
    for body, field in [
        ({"service_id": 42}, "service_id"),
        ({"service_id": "York"}, "service_id"),
        ({"roles": ["admin"]}, "roles"),
        ({}, "service_id"),
    ]:
        response = api.patch(f"{API}/users/{rita}", json=body, headers=admin)
        assert response.status_code == 422, body
        assert field in response.get_json()["fields"], response.get_json()
    assert api.patch(f"{API}/users/{rita}", data="x", headers=admin).status_code == 415


def _jpeg() -> bytes:
    out = BytesIO()
    Image.new("RGB", (40, 30), (10, 90, 40)).save(out, format="JPEG")
    return out.getvalue()


def test_report_pages_and_photos_follow_the_same_scope(
    app: Flask, container: Container, client: FlaskClient, people: People
) -> None:
    from ldis.services import intake

    admin = _headers(people, "admin", Role.admin)
    client.post(f"{API}/areas", json={"code": "SELBY", "name": "Selby"}, headers=admin)
    service = client.post(
        f"{API}/services",
        json={"name": "Selby NSP", "type": "needle_syringe_programme", "areas": ["SELBY"]},
        headers=admin,
    ).get_json()["id"]
    web = Web(app, container)
    browsers = {name: web.browser(name, Role.reporter) for name in ("lab", "desk", "other")}
    ids = {}
    with container.db.transaction() as session:
        for name in browsers:
            ids[name] = session.scalar(
                text("SELECT id FROM users WHERE email = :e"), {"e": f"{name}@example.org"}
            )
    for name in ("lab", "desk"):
        assert (
            client.patch(
                f"{API}/users/{ids[name]}", json={"service_id": service}, headers=admin
            ).status_code
            == 200
        )
    lab = Principal(ids["lab"], "lab@example.org", frozenset({Role.reporter}))
    view, _ = intake.file_report(
        container.db, lab, _report("With a photo.", "P-1"), photos.process(_jpeg())
    )
    path = f"/reports/{view['id']}"
    desk, other = browsers["desk"], browsers["other"]
    assert view["reference"] in page_text(desk.get("/reports"))
    page = desk.get(path)
    assert page.status_code == 200 and "With a photo." in page_text(page)
    assert 'name="text"' not in page_text(page)  # a colleague reads, does not add updates
    assert desk.get(path + "/photo").headers["Content-Type"] == "image/jpeg"
    assert view["reference"] not in page_text(other.get("/reports"))
    assert other.get(path).status_code == 404 and other.get(path + "/photo").status_code == 404
    desk_principal = Principal(ids["desk"], "desk@example.org", frozenset({Role.reporter}))
    assert photos.load(container.db, desk_principal, view["id"]).content_type == "image/jpeg"
    with pytest.raises(NotFound):
        photos.load(
            container.db,
            Principal(ids["other"], "other@example.org", frozenset({Role.reporter})),
            view["id"],
        )


# --- a contact who leaves is erased ---------------------------------------------------------

LEAVER = {"name": "Lee Leaving", "phone": "+447700900777", "email": "lee.leaving@example.org"}
LEAVER_TRACES = ("Lee Leaving", "+447700900777", "447700900777", "07700 900777", "07700900777")


def _rows_mentioning(container: Container, needle: str) -> list[tuple[str, dict[str, Any]]]:
    """Every row of every table whose text mentions `needle` (case-insensitively)."""
    found = []
    with container.db.transaction() as session:
        for table in Base.metadata.sorted_tables:
            for row in session.execute(table.select()).mappings():
                if needle.casefold() in str(dict(row)).casefold():
                    found.append((table.name, dict(row)))
    return found


@pytest.fixture
def leaver(container: Container, queue: s.RecordingQueue) -> dict[str, Any]:
    """A contact who has received an alert, texted us, been escalated to and listed for the
    panel to ring; the same person (same e-mail) is also a contact at a second service."""
    s.area(container)
    manager = s.user(container, "manager", Role.service_manager)
    service_id = s.service(container, "York NSP", managers=(manager.user_id,))
    contact_id = s.contact(container, service_id, **LEAVER)
    other_service = s.service(container, "Selby hostel")
    twin = s.contact(
        container, other_service, name="Lee L", phone="+447700900888", email=LEAVER["email"]
    )
    with container.db.transaction() as session:
        session.execute(
            update(Contact)
            .where(Contact.id == contact_id)
            .values(quiet_start=time(22, 0), quiet_end=time(7, 0))
        )
    alert_id = s.send_alert(container)
    s.text_in(s.twilio_app(container, queue).test_client(), "hello", sender=LEAVER["phone"])
    with container.db.transaction() as session:
        panel_email = "panel-lead@example.org"
        ids = [
            notices.queue_notice(
                session,
                dedupe_key=f"escalation:{alert_id}:v1:{contact_id}:email",
                purpose="alert_escalation",
                channel="email",
                recipient=LEAVER["email"],
                subject="URGENT: please confirm",
                text="Nobody at York NSP has yet confirmed the urgent alert.",
            ),
            notices.queue_notice(
                session,
                dedupe_key=f"escalation:{alert_id}:v1:{twin}:email",
                purpose="alert_escalation",
                channel="email",
                recipient=LEAVER["email"],
                subject="URGENT: please confirm",
                text="Nobody at Selby hostel has yet confirmed the urgent alert.",
            ),
            notices.queue_notice(
                session,
                dedupe_key=f"escalation-panel:{alert_id}:v1:1:99",
                purpose="alert_escalation",
                channel="email",
                recipient=panel_email,
                subject="URGENT: 1 service has not acknowledged",
                text="York NSP (Needle exchange)\n  Lee Leaving (primary): 07700 900777\n",
            ),
        ]
        notices.queue_notice(
            session,
            dedupe_key=f"verify:{contact_id}:email:later",
            purpose="verify_email",
            channel="email",
            recipient=LEAVER["email"],
            text="Confirm this address for Lee Leaving: http://ldis.test/verify/x",
        )
        delivery = session.scalar(
            select(Delivery).where(Delivery.contact_id == contact_id, Delivery.channel == "email")
        )
        assert delivery is not None
        delivery.last_error = f"550 5.1.1 <{LEAVER['email']}>: mailbox full"
        session.add(
            DeliveryAttempt(
                delivery_id=delivery.id,
                attempt=1,
                outcome="transient_error",
                error=f"452 <{LEAVER['email']}> over quota",
            )
        )
    s.send_notices(container, [i for i in ids if i is not None])
    with container.db.transaction() as session:
        copies = session.scalars(
            select(OutboxMessage.text_body)
            .join(Delivery, Delivery.id == OutboxMessage.delivery_id)
            .where(Delivery.contact_id == contact_id)
        ).all()
    link = re.search(r"http://ldis\.test(/preferences/[\w.\-]+)", "\n".join(copies))
    assert link, "alerts carry the contact's own settings link"
    return {
        "contact": contact_id,
        "twin": twin,
        "alert": alert_id,
        "manager": manager,
        "preferences": link.group(1),
    }


def test_a_contact_who_leaves_is_erased_everywhere_but_the_counts_stay(
    container: Container, api: FlaskClient, people: People, leaver: dict[str, Any]
) -> None:
    contact_id, twin = leaver["contact"], leaver["twin"]
    for trace in ("Lee Leaving", "+447700900777", "07700 900777"):
        assert _rows_mentioning(container, trace), f"the set-up must hold {trace!r}"
    with container.db.transaction() as session:
        delivery_rows = session.execute(
            select(Delivery.id, Delivery.alert_id, Delivery.channel, Delivery.status)
            .where(Delivery.contact_id == contact_id)
            .order_by(Delivery.id)
        ).all()
    assert len(delivery_rows) == 2
    assert api.get(leaver["preferences"]).status_code == 200

    admin = _headers(people, "admin", Role.admin)
    removed = api.delete(f"{API}/contacts/{contact_id}", headers=admin)
    assert removed.status_code == 200, removed.get_json()
    view = removed.get_json()
    assert (view["name"], view["email"], view["phone"], view["quiet_hours"]) == (
        "Former contact",
        None,
        None,
        None,
    )
    assert view["erased_at"] is not None and view["channels"] == []

    # Nothing anywhere still names them or holds their number ...
    for trace in LEAVER_TRACES:
        assert _rows_mentioning(container, trace) == [], trace
    # ... and their address survives only where it is also the other service's contact's.
    with container.db.transaction() as session:
        twin_deliveries = set(
            session.scalars(select(Delivery.id).where(Delivery.contact_id == twin))
        )
    for table, row in _rows_mentioning(container, LEAVER["email"]):
        if table == "contacts":
            assert row["id"] == twin
        elif table == "outbox_messages" and row["delivery_id"] is not None:
            assert row["delivery_id"] in twin_deliveries
        else:
            assert table in ("notices", "outbox_messages"), (table, row)
            notice = row if table == "notices" else None
            if notice is None:
                with container.db.transaction() as session:
                    key = session.scalar(
                        select(Notice.dedupe_key).where(Notice.id == row["notice_id"])
                    )
            else:
                key = notice["dedupe_key"]
            assert key is not None and key.endswith(f":{twin}:email"), key

    with container.db.transaction() as session:
        # The delivery history still adds up: same rows, same states.
        assert (
            session.execute(
                select(Delivery.id, Delivery.alert_id, Delivery.channel, Delivery.status)
                .where(Delivery.contact_id == contact_id)
                .order_by(Delivery.id)
            ).all()
            == delivery_rows
        )
        copies = session.scalars(
            select(OutboxMessage.recipient)
            .join(Delivery, Delivery.id == OutboxMessage.delivery_id)
            .where(Delivery.contact_id == contact_id)
        ).all()
        assert copies and set(copies) == {"(removed)"}
        panel_list = session.scalar(
            select(Notice).where(Notice.dedupe_key.startswith("escalation-panel:"))
        )
        assert panel_list is not None and panel_list.recipient == "panel-lead@example.org"
        assert "Former contact (primary): (removed)" in panel_list.text_body
        verify = session.scalar(select(Notice).where(Notice.purpose == "verify_email"))
        assert verify is not None and verify.status == "failed"
        erased = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "contact.erased")
        ).all()
    assert len(erased) == 1 and erased[0].entity_id == contact_id
    assert erased[0].detail["deliveries_kept"] == 2
    assert erased[0].detail["outbox_copies_scrubbed"] >= 3
    # Their own settings link no longer opens anything.
    assert api.get(leaver["preferences"]).status_code == 404
    # Removing again changes nothing and erases nothing twice.
    assert api.delete(f"{API}/contacts/{contact_id}", headers=admin).status_code == 200
    with container.db.transaction() as session:
        assert (
            session.scalar(select(func.count()).where(AuditEvent.action == "contact.erased")) == 1
        )


# --- everything held about a contact --------------------------------------------------------


def test_everything_held_about_a_contact_can_be_exported(
    container: Container, api: FlaskClient, people: People, leaver: dict[str, Any]
) -> None:
    contact_id = leaver["contact"]
    with container.db.transaction() as session:
        link_version = session.get(Contact, contact_id).link_version  # type: ignore[union-attr]
    preferences.set_kinds(container.db, contact_id, link_version, ["drug_alert", "cluster"])
    admin = _headers(people, "admin", Role.admin)
    response = api.get(f"{API}/contacts/{contact_id}/export", headers=admin)
    assert response.status_code == 200, response.get_json()
    held = response.get_json()
    assert held["format"] == "ldis.contact-export/1"
    assert held["contact"]["name"] == "Lee Leaving"
    assert (held["contact"]["email"], held["contact"]["phone"]) == (
        LEAVER["email"],
        LEAVER["phone"],
    )
    assert held["contact"]["quiet_hours"] == {
        "start": "22:00",
        "end": "07:00",
        "time_zone": "Europe/London",
    }
    assert held["contact"]["service"]["name"] == "York NSP"
    assert [c["channel"] for c in held["channels"]] == ["email", "sms"]
    assert all(c["verified_at"] for c in held["channels"])
    assert "verification_hash" not in json.dumps(held)
    assert {u["alert_kind"] for u in held["unsubscriptions"]} == {"information", "exercise"}
    assert sorted((d["alert_id"], d["version"], d["channel"]) for d in held["deliveries"]) == [
        (leaver["alert"], 1, "email"),
        (leaver["alert"], 1, "sms"),
    ]
    assert all(d["sent_at"] and d["status"] for d in held["deliveries"])
    purposes = sorted(n["purpose"] for n in held["notices"])
    # Both escalations to the address (one was for the same person at the other service),
    # the reply to their text and the code still to be sent; not the panel's list.
    assert purposes == ["alert_escalation", "alert_escalation", "sms_reply", "verify_email"]
    assert all(n["recipient"] in (LEAVER["email"], LEAVER["phone"]) for n in held["notices"])
    assert "text_body" not in json.dumps(held["notices"])
    assert len(held["outbox_messages"]) >= 4
    assert "contact.kinds_changed" in [e["action"] for e in held["audit_events"]]

    manager_token = _token_for(container, people, leaver["manager"])
    assert api.get(f"{API}/contacts/{contact_id}/export", headers=manager_token).status_code == 200
    stranger = s.user(container, "stranger", Role.service_manager)
    stranger_token = _token_for(container, people, stranger)
    assert api.get(f"{API}/contacts/{contact_id}/export", headers=stranger_token).status_code == 404
    reporter = _headers(people, "reporter", Role.reporter)
    assert api.get(f"{API}/contacts/{contact_id}/export", headers=reporter).status_code == 403
    with container.db.transaction() as session:
        exported = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "contact.exported")
        ).all()
    assert [e.actor_id for e in exported] == [people.ids["admin"], leaver["manager"].user_id]
    assert "lee" not in json.dumps([e.detail for e in exported]).lower()

    # After the person leaves, the export shows what is left: nothing personal.
    api.delete(f"{API}/contacts/{contact_id}", headers=admin)
    after = api.get(f"{API}/contacts/{contact_id}/export", headers=admin).get_json()
    assert after["contact"]["name"] == "Former contact" and after["contact"]["erased_at"]
    assert after["contact"]["email"] is None and after["channels"] == []
    assert len(after["deliveries"]) == 2
    for trace in (*LEAVER_TRACES, LEAVER["email"]):
        assert trace.casefold() not in json.dumps(after).casefold(), trace


def _token_for(container: Container, people: People, user: Principal) -> dict[str, str]:
    from ldis.services.accounts import create_token

    return {"Authorization": "Bearer " + create_token(container.db, email=user.email)}


def test_the_contact_page_links_to_the_export(
    container: Container, local: Flask, leaver: dict[str, Any]
) -> None:
    contact_id = leaver["contact"]
    web = Web(local, container)
    browser = web.browser("desk", Role.service_manager)
    stranger = web.browser("elsewhere", Role.service_manager)
    with container.db.transaction() as session:
        desk = session.scalar(text("SELECT id FROM users WHERE email = 'desk@example.org'"))
        contact = session.get(Contact, contact_id)
        assert contact is not None
        session.add(ServiceManager(service_id=contact.service_id, user_id=desk))
    page = page_text(browser.get(f"/contacts/{contact_id}"))
    link = f"/contacts/{contact_id}/export.json"
    assert f'href="{link}"' in page and "everything held about this contact" in page
    download = browser.get(link)
    assert download.status_code == 200 and download.mimetype == "application/json"
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert download.headers["Cache-Control"] == "no-store"
    assert json.loads(download.get_data(as_text=True))["contact"]["name"] == "Lee Leaving"
    assert stranger.get(link).status_code == 404


# --- logs from the real processes -----------------------------------------------------------

SECRETS = ("+447700900123", "7700900123", "07700 900123", "duty.desk@example.org", "duty.desk")

CELERY_SCRIPT = """
import logging, sys
from celery.utils.log import get_task_logger
from workers.celery_app import app

app.log.setup(loglevel="INFO", redirect_stdouts=False)  # what `celery worker|beat` do
logging.getLogger("ldis.services.delivery").warning("sms to %s failed", "+447700900123")
logging.getLogger("twilio.http_client").info(
    "GET Request: https://api.twilio.com/Messages.json?To=%2B447700900123"
)
get_task_logger("ldis.deliver_batch").info("mail to %s", "duty.desk@example.org")
try:
    raise RuntimeError("550 <duty.desk@example.org> rejected; reply from 07700 900123")
except RuntimeError:
    logging.getLogger("ldis.services.notices").exception("channel failed")
print("done", flush=True)
"""


def test_worker_and_scheduler_logs_mask_addresses_and_numbers(
    settings_env: dict[str, str],
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LDIS_")} | settings_env
    result = subprocess.run(
        [sys.executable, "-c", CELERY_SCRIPT],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    logged = result.stdout + result.stderr
    assert result.returncode == 0 and "done" in result.stdout, logged
    assert "sms to [phone] failed" in logged and "mail to [email]" in logged
    assert "To=[phone]" in logged and "RuntimeError" in logged
    for secret in SECRETS:
        assert secret not in logged, (secret, logged)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_web_server_logs_mask_addresses_and_numbers(
    settings_env: dict[str, str], tmp_path: Path, container: Container, log_format: str
) -> None:
    port = _free_port()
    env = (
        {k: v for k, v in os.environ.items() if not k.startswith("LDIS_")}
        | settings_env
        | {"LDIS_WEB_WORKERS": "1", "LDIS_LOG_FORMAT": log_format}
    )
    log_path = tmp_path / "web.log"
    with log_path.open("w") as log:
        web = subprocess.Popen(
            [sys.executable, "-m", "ldis.cli", "web", "--port", str(port)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            try:
                return requests.get(f"{base}/healthz", timeout=5).status_code == 200
            except requests.RequestException:
                return web.poll() is not None

        wait_for(up, timeout=30)
        assert web.poll() is None, log_path.read_text()
        requests.get(f"{base}/healthz?to=duty.desk@example.org&n=+447700900123", timeout=5)
        requests.get(
            f"{base}/no-such-page?phone=07700%20900123&m=duty.desk%40example.org", timeout=5
        )
        requests.get(f"{base}/api/v1/reports?email=duty.desk@example.org", timeout=5)
        wait_for(lambda: log_path.read_text().count("\n") >= 4, timeout=10)
    finally:
        web.send_signal(signal.SIGTERM)
        try:
            web.wait(timeout=20)
        except subprocess.TimeoutExpired:
            web.kill()
            web.wait()
    logged = log_path.read_text()
    if log_format == "text":  # gunicorn's access log, query and all
        assert "/healthz?to=[email]" in logged, logged
    else:  # the app's own request lines: the route, never the query
        lines = [json.loads(line) for line in logged.splitlines() if line.strip()]
        requests_logged = [line["message"] for line in lines if line["logger"] == "ldis.request"]
        assert "GET /healthz 200" in " ".join(requests_logged), logged
        assert "GET /api/v1/reports 401" in " ".join(requests_logged), logged
    for secret in (*SECRETS, "duty.desk%40example.org", "07700%20900123"):
        assert secret not in logged, (secret, logged)
