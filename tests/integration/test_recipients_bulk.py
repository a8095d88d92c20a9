"""CSV import and export of services and contacts through the admin API and the command
line, against PostgreSQL: dry run, apply, re-run writes nothing, verification reset on a
changed address, bad files and rows change nothing, export -> import is a no-op, racing
applies write once."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from ldis.bootstrap import Container
from ldis.domain.errors import Conflict
from ldis.domain.recipients_csv import COLUMNS
from ldis.domain.roles import Role
from ldis.services import recipients_bulk
from ldis.settings import PROJECT_ROOT
from ldis.store.models import Area, AuditEvent, Contact, ContactChannel, Notice, Service
from tests.integration.conftest import People

pytestmark = pytest.mark.integration
HEADER = ",".join(COLUMNS)
ROWS = [
    "NSP-YORK,York NSP,needle_syringe_programme,YORK-C;YORK-W,,,Jo Bloggs,primary,"
    "jo@example.org,07700 900101,sms;email,22:00-07:00",
    "NSP-YORK,York NSP,needle_syringe_programme,YORK-C;YORK-W,,,Al Smith,backup,"
    "al@example.org,,email,",
    "ED-YORK,York Hospital ED,emergency_department,YORK-C,professional,drug_alert;cluster,"
    "ED nurse in charge,,ed@example.org,07700 900102,sms,",
    "OUT-SELBY,Selby outreach,outreach,SELBY,,,,,,,,",
]
IMPORT = "/api/v1/recipients/import"
CSV = {"Content-Type": "text/csv"}


def csv_file(*rows: str) -> bytes:
    return ("\r\n".join([HEADER, *rows]) + "\r\n").encode()


@pytest.fixture
def admin(container: Container, people: People) -> dict[str, str]:
    with container.db.transaction() as session:
        session.add_all(
            Area(code=code, name=name)
            for code, name in (
                ("YORK-C", "York centre"),
                ("YORK-W", "York west"),
                ("SELBY", "Selby"),
            )
        )
    return people.headers("admin", Role.admin) | CSV


def count(container: Container, model: Any) -> int:
    with container.db.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def imports(container: Container) -> int:
    """Audit events of applied imports (users and tokens made by the fixtures have theirs)."""
    with container.db.transaction() as session:
        query = select(func.count()).where(AuditEvent.action == "recipients.imported")
        return int(session.scalar(query) or 0)


def purposes(container: Container) -> list[str]:
    with container.db.transaction() as session:
        return sorted(session.scalars(select(Notice.purpose)))


def post(client: FlaskClient, headers: dict[str, str], data: bytes, apply: bool) -> Any:
    return client.post(f"{IMPORT}?apply={'true' if apply else 'false'}", data=data, headers=headers)


def channels(container: Container) -> dict[tuple[str, str], datetime | None]:
    """(contact e-mail or phone, channel) -> verified_at."""
    with container.db.transaction() as session:
        rows = session.execute(
            select(
                Contact.email, Contact.phone, ContactChannel.channel, ContactChannel.verified_at
            ).join(ContactChannel)
        ).all()
    return {(email or phone, channel): verified for email, phone, channel, verified in rows}


def verify_all(container: Container) -> None:
    with container.db.transaction() as session:
        for channel in session.scalars(select(ContactChannel)):
            channel.verified_at = datetime.now(UTC)


def test_dry_run_lists_what_would_be_created_and_writes_nothing(
    client: FlaskClient, container: Container, admin: dict[str, str]
) -> None:
    response = post(client, admin, csv_file(*ROWS), apply=False)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["applied"] is False and body["errors"] == []
    assert body["summary"] == {
        "rows": 4,
        "bad_rows": 0,
        "services": {"create": 3, "update": 0, "unchanged": 0, "not_in_file": 0},
        "contacts": {"create": 3, "update": 0, "unchanged": 0, "not_in_file": 0},
        "awaiting_verification": 4,
    }
    first, contact = body["changes"][0], body["changes"][1]
    assert first == {
        "entity": "service",
        "action": "create",
        "row": 2,
        "service_ref": "NSP-YORK",
        "service_name": "York NSP",
        "fields": {
            "service_name": "York NSP",
            "service_type": "needle_syringe_programme",
            "service_areas": ["YORK-C", "YORK-W"],
            "alert_levels": ["professional", "public"],
            "alert_kinds": [],
        },
    }
    # The plan never echoes a contact's name or addresses.
    assert contact == {
        "entity": "contact",
        "action": "create",
        "row": 2,
        "service_ref": "NSP-YORK",
        "fields": {"contact_role": "primary", "channels": ["sms", "email"]},
        "awaiting_verification": ["sms", "email"],
    }
    assert "jo@example.org" not in response.get_data(as_text=True)
    assert count(container, Service) == 0 and imports(container) == 0


def test_apply_creates_unverified_and_a_rerun_writes_nothing(
    client: FlaskClient, container: Container, admin: dict[str, str]
) -> None:
    data = csv_file(*ROWS)
    first = post(client, admin, data, apply=True)
    assert first.status_code == 200, first.get_json()
    assert first.get_json()["applied"] is True
    assert count(container, Service) == 3 and count(container, Contact) == 3
    assert set(channels(container).values()) == {None}  # nothing goes out until verified
    # A code or link went to each new address, as when a contact is added on its own.
    assert first.get_json()["verification_sent"] == 4
    assert purposes(container) == ["verify_email", "verify_email", "verify_sms", "verify_sms"]
    with container.db.transaction() as session:
        service = session.scalars(select(Service).where(Service.ref == "ED-YORK")).one()
        assert (service.alert_levels, service.alert_kinds) == (
            ["professional"],
            ["drug_alert", "cluster"],
        )
        contact = session.scalars(select(Contact).where(Contact.email == "jo@example.org")).one()
        assert (contact.phone, contact.role) == ("+447700900101", "primary")
        assert (str(contact.quiet_start), str(contact.quiet_end)) == ("22:00:00", "07:00:00")
        (event,) = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "recipients.imported")
        ).all()
        assert event.action == "recipients.imported"
        assert event.detail["services"] == {"create": 3, "update": 0, "unchanged": 0}
        assert event.detail["contacts"] == {"create": 3, "update": 0, "unchanged": 0}
        detail = str(event.detail)
        assert "example.org" not in detail and "Jo" not in detail and "0770" not in detail
        stamps = session.execute(select(Service.updated_at, Service.created_at)).all()

    again = post(client, admin, data, apply=True)
    assert again.status_code == 200
    summary = again.get_json()["summary"]
    assert summary["services"] == {"create": 0, "update": 0, "unchanged": 3, "not_in_file": 0}
    assert summary["contacts"] == {"create": 0, "update": 0, "unchanged": 3, "not_in_file": 0}
    assert imports(container) == 1  # nothing written, not even an audit event
    assert count(container, Notice) == 4
    with container.db.transaction() as session:
        assert session.execute(select(Service.updated_at, Service.created_at)).all() == stamps


def test_a_changed_phone_is_an_update_that_resets_only_that_channel(
    client: FlaskClient, container: Container, admin: dict[str, str]
) -> None:
    assert post(client, admin, csv_file(*ROWS), apply=True).status_code == 200
    verify_all(container)
    changed = [
        ROWS[0].replace("07700 900101", "07700 900199").replace("primary", "backup"),
        *ROWS[1:],
    ]
    plan = post(client, admin, csv_file(*changed), apply=False).get_json()
    updates = [c for c in plan["changes"] if c["action"] == "update"]
    assert updates == [
        {
            "entity": "contact",
            "action": "update",
            "row": 2,
            "service_ref": "NSP-YORK",
            "fields": {"contact_role": {"old": "primary", "new": "backup"}, "phone": "changed"},
            "awaiting_verification": ["sms"],
        }
    ]
    assert "900101" not in str(plan) and "900199" not in str(plan)
    assert post(client, admin, csv_file(*changed), apply=True).status_code == 200
    after = channels(container)
    assert after[("jo@example.org", "sms")] is None  # the new number must be verified again
    assert after[("jo@example.org", "email")] is not None
    assert after[("ed@example.org", "sms")] is not None
    assert purposes(container).count("verify_sms") == 3  # a code went to the new number
    with container.db.transaction() as session:
        contact = session.scalars(select(Contact).where(Contact.email == "jo@example.org")).one()
        assert contact.phone == "+447700900199" and contact.updated_at is not None


def test_service_changes_show_old_and_new_and_contacts_not_in_file_are_left_alone(
    client: FlaskClient, container: Container, admin: dict[str, str]
) -> None:
    assert post(client, admin, csv_file(*ROWS), apply=True).status_code == 200
    moved = ROWS[0].replace("YORK-C;YORK-W", "YORK-C").replace("NSP,", "needle exchange,")
    plan = post(client, admin, csv_file(moved, *ROWS[2:]), apply=True).get_json()
    service = next(
        c for c in plan["changes"] if c["entity"] == "service" and c["action"] == "update"
    )
    assert service["fields"] == {
        "service_name": {"old": "York NSP", "new": "York needle exchange"},
        "service_areas": {"old": ["YORK-C", "YORK-W"], "new": ["YORK-C"]},
    }
    absent = [c for c in plan["changes"] if c["action"] == "not_in_file"]
    assert [(c["entity"], c["service_ref"], c["contact_name"]) for c in absent] == [
        ("contact", "NSP-YORK", "Al Smith")
    ]
    assert count(container, Contact) == 3  # an import never removes anyone


def test_bad_rows_refuse_the_apply_with_422_and_change_nothing(
    client: FlaskClient, container: Container, admin: dict[str, str]
) -> None:
    bad = [*ROWS, "X-1,Bad,barber,NOWHERE,,,Jo,,,0113 496 0000,sms,"]
    dry = post(client, admin, csv_file(*bad), apply=False)
    assert dry.status_code == 200 and dry.get_json()["summary"]["bad_rows"] == 1
    response = post(client, admin, csv_file(*bad), apply=True)
    assert response.status_code == 422
    body = response.get_json()
    assert body["error"] == "validation_failed" and body["applied"] is False
    assert body["message"] == "1 row needs fixing; nothing was changed."
    assert [(e["row"], e["field"]) for e in body["errors"]] == [
        (6, "service_type"),
        (6, "service_areas"),
        (6, "phone"),
    ]
    assert body["fields"]["rows.6.service_areas"] == "unknown area codes: NOWHERE"
    assert count(container, Service) == 0 and imports(container) == 0


@pytest.mark.parametrize(
    ("data", "field", "reason"),
    [
        (
            (HEADER + "\nNSP-1,Caf\u00e9 \u00a35 NSP,pharmacy,YORK-C,,,,,,,,\n").encode("cp1252"),
            "file",
            "is not UTF-8: byte 0xE9 on line 2 cannot be read (a £, é or curly quote saved in "
            'another encoding); open it in your spreadsheet, choose "Save As" and the type '
            '"CSV UTF-8 (Comma delimited)", then upload that file',
        ),
        (
            csv_file(*ROWS).replace(b"phone", b"mobile", 1),
            "header",
            "unknown columns: mobile; missing columns: phone. The columns are: "
            + ",".join(COLUMNS),
        ),
        (b"", "file", "is empty; it needs a header row: " + ",".join(COLUMNS)),
    ],
)
@pytest.mark.parametrize("apply", [False, True])
def test_wrong_encoding_or_columns_get_one_clear_error_and_change_nothing(
    client: FlaskClient,
    container: Container,
    admin: dict[str, str],
    data: bytes,
    field: str,
    reason: str,
    apply: bool,
) -> None:
    response = post(client, admin, data, apply=apply)
    assert response.status_code == 422
    assert response.get_json()["fields"] == {field: reason}
    assert count(container, Service) == 0


def test_only_csv_only_admins_and_only_up_to_the_body_limit(
    client: FlaskClient, container: Container, admin: dict[str, str], people: People
) -> None:
    as_json = client.post(
        IMPORT, json={"rows": []}, headers={"Authorization": admin["Authorization"]}
    )
    assert as_json.status_code == 415 and as_json.get_json()["error"] == "unsupported_media_type"
    panel = people.headers("panel", Role.panel) | CSV
    assert post(client, panel, csv_file(*ROWS), apply=True).status_code == 403
    assert client.get("/api/v1/recipients/export.csv", headers=panel).status_code == 403
    huge = csv_file(*ROWS * (container.settings.max_body_bytes // 300))
    assert len(huge) > container.settings.max_body_bytes
    too_large = post(client, admin, huge, apply=True)
    assert too_large.status_code == 413 and too_large.get_json()["error"] == "too_large"
    wrong_flag = client.post(f"{IMPORT}?apply=maybe", data=csv_file(*ROWS), headers=admin)
    assert wrong_flag.status_code == 422 and wrong_flag.get_json()["fields"] == {
        "apply": "must be true or false"
    }
    assert count(container, Service) == 0


def test_export_then_import_changes_nothing(
    client: FlaskClient, container: Container, admin: dict[str, str]
) -> None:
    # A comma, a pound sign, an accent, and a name a spreadsheet would run as a formula.
    tricky = (
        'T-1,=Tricky \u00a3 caf\u00e9,pharmacy,SELBY,public,,"Smith, Jo",backup,,07700 900150,sms,'
    )
    assert post(client, admin, csv_file(*ROWS, tricky), apply=True).status_code == 200
    verify_all(container)
    response = client.get("/api/v1/recipients/export.csv", headers=admin)
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith(
        'attachment; filename="ldis-recipients-'
    )
    exported = response.get_data()
    text = exported.decode("utf-8-sig")
    lines = text.splitlines()
    assert lines[0] == HEADER
    refs = [line.split(",")[0] for line in lines[1:]]
    assert refs == ["ED-YORK", "NSP-YORK", "NSP-YORK", "OUT-SELBY", "T-1"]
    assert lines[2].split(",")[7] == "primary" and lines[3].split(",")[7] == "backup"
    assert "verified" not in text and "opted" not in text
    assert (
        'T-1,\'=Tricky £ café,pharmacy,SELBY,public,,"Smith, Jo",backup,,07700 900150,sms,' in lines
    )
    assert (
        "ED-YORK,York Hospital ED,emergency_department,YORK-C,professional,drug_alert;cluster,"
        in text
    )
    assert "OUT-SELBY,Selby outreach,outreach,SELBY,professional;public,,,,,,," in lines
    again = post(client, admin, exported, apply=True).get_json()
    assert again["summary"]["services"]["unchanged"] == 4
    assert again["summary"]["contacts"]["unchanged"] == 4
    assert [c for c in again["changes"] if c["action"] != "unchanged"] == []
    assert imports(container) == 1
    assert None not in channels(container).values()  # verification kept
    # Stable: a second export is byte for byte the same.
    assert client.get("/api/v1/recipients/export.csv", headers=admin).get_data() == exported


def test_a_service_without_a_ref_is_adopted_by_name_not_doubled(
    client: FlaskClient, container: Container, admin: dict[str, str]
) -> None:
    with container.db.transaction() as session:
        selby = session.scalars(select(Area).where(Area.code == "SELBY")).one()
        session.add(Service(name="Selby outreach", type="outreach", areas=[selby]))
    plan = post(client, admin, csv_file(ROWS[3]), apply=True).get_json()
    assert plan["changes"][0]["action"] == "update"
    assert plan["changes"][0]["fields"] == {"service_ref": {"old": None, "new": "OUT-SELBY"}}
    with container.db.transaction() as session:
        assert session.scalars(select(Service.ref)).all() == ["OUT-SELBY"]


def test_two_contacts_can_swap_numbers(
    client: FlaskClient, container: Container, admin: dict[str, str]
) -> None:
    one = "S-1,Swap,pharmacy,SELBY,,,A,,a@example.org,07700 900111,sms,"
    two = "S-1,Swap,pharmacy,SELBY,,,B,,b@example.org,07700 900122,sms,"
    assert post(client, admin, csv_file(one, two), apply=True).status_code == 200
    swapped = [one.replace("900111", "900122"), two.replace("900122", "900111")]
    response = post(client, admin, csv_file(*swapped), apply=True)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["summary"]["contacts"]["update"] == 2
    with container.db.transaction() as session:
        phones = {e: p for e, p in session.execute(select(Contact.email, Contact.phone))}
    assert phones == {"a@example.org": "+447700900122", "b@example.org": "+447700900111"}


def test_an_address_held_by_a_contact_not_in_the_file_is_refused(
    client: FlaskClient, container: Container, admin: dict[str, str]
) -> None:
    one = "S-1,Swap,pharmacy,SELBY,,,A,,a@example.org,07700 900111,sms,"
    two = "S-1,Swap,pharmacy,SELBY,,,B,,b@example.org,07700 900122,sms,"
    assert post(client, admin, csv_file(one, two), apply=True).status_code == 200
    response = post(client, admin, csv_file(one.replace("900111", "900122")), apply=True)
    assert response.status_code == 422
    assert [(e["row"], e["field"]) for e in response.get_json()["errors"]] == [(2, "phone")]


def test_racing_applies_write_once(container: Container, admin: dict[str, str]) -> None:
    data = csv_file(*ROWS)
    results: list[dict[str, Any]] = []
    barrier = threading.Barrier(3)

    def run() -> None:
        barrier.wait()
        results.append(
            recipients_bulk.apply_import(
                container.db, recipients_bulk.COMMAND_LINE_ADMIN, data, sending=container.sending()
            )
        )

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 3 and all(r["applied"] for r in results)
    assert sorted(r["summary"]["services"]["create"] for r in results) == [0, 0, 3]
    assert count(container, Service) == 3 and imports(container) == 1


def test_apply_refuses_when_the_records_changed_since_the_preview(
    client: FlaskClient, container: Container, admin: dict[str, str]
) -> None:
    preview = post(client, admin, csv_file(*ROWS), apply=False).get_json()
    # Someone else imports a different version of the list in between.
    assert post(client, admin, csv_file(ROWS[3]), apply=True).status_code == 200
    with pytest.raises(Conflict):
        recipients_bulk.apply_import(
            container.db,
            recipients_bulk.COMMAND_LINE_ADMIN,
            csv_file(*ROWS),
            sending=container.sending(),
            expected_plan=preview["plan"],
        )
    stale = client.post(
        f"{IMPORT}?apply=true&plan={preview['plan']}", data=csv_file(*ROWS), headers=admin
    )
    assert stale.status_code == 409
    assert count(container, Service) == 1
    fresh = post(client, admin, csv_file(*ROWS), apply=False).get_json()
    ok = client.post(
        f"{IMPORT}?apply=true&plan={fresh['plan']}", data=csv_file(*ROWS), headers=admin
    )
    assert ok.status_code == 200 and count(container, Service) == 3


def ldis(settings_env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LDIS_")} | settings_env
    return subprocess.run(
        [sys.executable, "-m", "ldis.cli", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_command_line_dry_run_apply_and_export(
    settings_env: dict[str, str], container: Container, admin: dict[str, str], tmp_path: Path
) -> None:
    source = tmp_path / "recipients.csv"
    source.write_bytes(csv_file(*ROWS))
    dry = ldis(settings_env, "recipients", "import", str(source))
    assert dry.returncode == 0, dry.stderr
    assert "create: service NSP-YORK (row 2)" in dry.stdout
    assert "create: contact of NSP-YORK (row 2): awaiting verification: sms, email" in dry.stdout
    assert dry.stdout.rstrip().endswith("dry run: nothing written (add --apply to write)")
    assert count(container, Service) == 0

    applied = ldis(settings_env, "recipients", "import", str(source), "--apply")
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.rstrip().endswith("applied")
    assert count(container, Service) == 3
    with container.db.transaction() as session:
        (event,) = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "recipients.imported")
        ).all()
        assert event.actor_id is None and event.action == "recipients.imported"

    exported = tmp_path / "export.csv"
    assert ldis(settings_env, "recipients", "export", str(exported)).returncode == 0
    to_stdout = ldis(settings_env, "recipients", "export")
    assert to_stdout.stdout.lstrip("\ufeff").splitlines()[0] == HEADER
    again = ldis(settings_env, "recipients", "import", str(exported), "--apply")
    assert "services: 0 to create, 0 to update, 3 unchanged" in again.stdout
    assert again.stdout.rstrip().endswith("nothing to change: already as the file says")
    assert imports(container) == 1

    bad = tmp_path / "bad.csv"
    bad.write_bytes(csv_file("X-1,Bad,barber,SELBY,,,,,,,,"))
    refused = ldis(settings_env, "recipients", "import", str(bad), "--apply")
    assert refused.returncode == 1
    assert "row 2, service_type: 'barber' is not a service type" in refused.stdout
    assert "ldis: 1 bad rows; nothing was written" in refused.stderr
    wrong = tmp_path / "wrong.csv"
    wrong.write_bytes(csv_file(*ROWS).decode().encode("utf-16"))
    encoding = ldis(settings_env, "recipients", "import", str(wrong))
    assert encoding.returncode == 1
    assert encoding.stderr.startswith("ldis: file: is UTF-16 text, not UTF-8")


def test_removed_contacts_are_neither_exported_nor_listed(
    client: FlaskClient, container: Container, admin: dict[str, str]
) -> None:
    assert post(client, admin, csv_file(*ROWS), apply=True).status_code == 200
    with container.db.transaction() as session:
        service = session.scalars(select(Service).where(Service.ref == "NSP-YORK")).one()
        # What removing a contact leaves: a row for the delivery history, no details.
        session.add(Contact(service=service, name="Former contact", channels=[]))
    exported = client.get("/api/v1/recipients/export.csv", headers=admin).get_data()
    assert b"Former contact" not in exported
    plan = post(client, admin, exported, apply=False).get_json()
    assert plan["summary"]["contacts"] == {
        "create": 0,
        "update": 0,
        "unchanged": 3,
        "not_in_file": 0,
    }
