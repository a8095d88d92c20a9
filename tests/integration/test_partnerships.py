"""Several partnerships on one deployment (PostgreSQL, row-level security): each sees only its
own reports, signals, cases, alerts, services, contacts and areas, over the API and the web
pages; a host operator sees all; the database refuses a row written into another
partnership; an alert shared on purpose with a neighbour is readable there, not approvable,
and reaches the neighbour's services exactly once through a real worker."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError

from ldis.bootstrap import Container
from ldis.domain.roles import Role
from ldis.services import partnerships
from ldis.services.accounts import create_token, create_user
from ldis.store.models import Delivery, OutboxMessage, Report
from ldis.store.tenancy import TenancyError, acting_for
from tests.integration.cases import DECISION, GRADE, near_miss
from tests.integration.conftest import Authenticators, wait_for
from tests.integration.test_embedded_run import Embedded
from tests.integration.test_intake_api import DRUG_CHECK
from tests.integration.webpages import PASSWORD, Web, csrf

pytestmark = pytest.mark.integration

A, B = 1, 2  # the default partnership, and a neighbour added here


def lab(area: str, ref: str) -> dict[str, Any]:
    """A red-list drug-checking result: raises a red signal in its partnership."""
    return {
        **DRUG_CHECK,
        "area": area,
        "sold_as": "oxycodone",
        "results": [{"substance": "metonitazene", "method": "lc-ms"}],
        "source": {"type": "drug_checking_service", "name": "Lab", "reference": ref},
        "appearance": {},
    }


class Deployment:
    """Two partnerships with their own people, areas, services, contacts, reports, signals
    and (in B) a drafted alert, all made through the API as each partnership's people."""

    def __init__(self, container: Container, client: FlaskClient) -> None:
        self.container, self.client = container, client
        self.apps = Authenticators(container)
        self.names: dict[str, str] = {}
        assert partnerships.create(container.db, "durham", "Durham and Darlington")["id"] == B

    def person(self, name: str, partnership: int | None, *roles: Role) -> dict[str, str]:
        email = f"{name}@example.org"
        create_user(
            self.container.db,
            email=email,
            name=name.title(),
            roles=frozenset(roles),
            password=PASSWORD,
            partnership_id=partnership,
            host_operator=partnership is None,
        )
        if Role.panel in roles or Role.admin in roles:
            self.apps.enrol(email)
        token = create_token(self.container.db, email=email, label="test")
        self.names[token] = email
        return {"Authorization": f"Bearer {token}"}

    def call(self, method: str, path: str, who: dict[str, str], body: Any = None) -> Any:
        if path.endswith(("/approve", "/withdraw")):
            email = self.names[who["Authorization"].removeprefix("Bearer ")]
            body = {**(body or {}), "otp": self.apps.code(email)}
        return self.client.open(f"/api/v1{path}", method=method, json=body, headers=who)

    def ok(self, method: str, path: str, who: dict[str, str], body: Any = None) -> Any:
        response = self.call(method, path, who, body)
        assert response.status_code in (200, 201), (response.status_code, response.get_json())
        return response.get_json()


@pytest.fixture
def world(container: Container, client: FlaskClient) -> dict[str, Any]:
    d = Deployment(container, client)
    w: dict[str, Any] = {"d": d}
    for side, partnership, area, name in ((A, A, "YORK", "York"), (B, B, "DURHAM", "Durham")):
        p = "a" if side == A else "b"
        admin = d.person(f"admin-{p}", partnership, Role.admin)
        panel = {n: d.person(f"{n}-{p}", partnership, Role.panel) for n in ("p1", "p2", "p3")}
        d.ok("POST", "/areas", admin, {"code": area, "name": name})
        service = d.ok(
            "POST",
            "/services",
            admin,
            {"name": f"{name} NSP", "type": "needle_syringe_programme", "areas": [area]},
        )
        contact = d.ok(
            "POST",
            f"/services/{service['id']}/contacts",
            admin,
            {
                "name": f"{name} duty",
                "email": f"{name.lower()}@example.org",
                "channels": ["email"],
                "verified": True,
            },
        )
        report = d.ok("POST", "/reports", panel["p1"], near_miss(area))
        # The same lab result filed in both partnerships: stored in each, no "duplicate".
        filed = d.call("POST", "/reports", panel["p1"], lab(area, ref="lab-1"))
        assert filed.status_code == 201, filed.get_json()
        red = filed.get_json()
        w[p] = {
            "admin": admin,
            "panel": panel,
            "area": area,
            "service": service["id"],
            "contact": contact["id"],
            "report": report["id"],
            "red": red["id"],
            "signals": [s["id"] for s in red["signals"]],
        }
    alert = d.ok(
        "POST",
        "/alerts",
        w["b"]["panel"]["p1"],
        {
            "title": "Nitazenes in fake oxycodone",
            "template": "professional",
            "priority": "urgent",
            "areas": ["DURHAM"],
            "report_id": w["b"]["report"],
            "fields": {
                "summary": "Green tablets sold as oxycodone contain metonitazene.",
                "advice": "Carry extra naloxone.",
            },
        },
    )
    w["b"]["alert"] = alert["id"]
    w["host"] = d.person("host", None, Role.admin, Role.panel)
    return w


def _ids(answer: Any) -> set[int]:
    # Each list answers under its own key ("reports", "signals", "items" ...).
    items = (
        next(v for v in answer.values() if isinstance(v, list))
        if isinstance(answer, dict)
        else answer
    )
    return {int(item["id"]) for item in items}


def _alerts(d: Deployment, who: dict[str, str]) -> set[int]:
    lists = ("active", "pending", "ended")
    return set().union(*(_ids(d.ok("GET", f"/alerts?state={s}", who)) for s in lists))


def test_each_partnership_sees_only_its_own_over_the_api(world: dict[str, Any]) -> None:
    d, a, b = world["d"], world["a"], world["b"]
    # Each side's red report raised its own signals (one live signal per key per partnership).
    assert a["signals"] and b["signals"] and not set(a["signals"]) & set(b["signals"])
    for mine, theirs in ((a, b), (b, a)):
        panel, admin = mine["panel"]["p1"], mine["admin"]
        assert _ids(d.ok("GET", "/reports", panel)) == {mine["report"], mine["red"]}
        assert _ids(d.ok("GET", "/signals", panel)) == set(mine["signals"])
        assert _ids(d.ok("GET", "/services", admin)) == {mine["service"]}
        assert [x["code"] for x in d.ok("GET", "/areas", admin)] == [mine["area"]]
        assert _alerts(d, panel) == ({b["alert"]} if mine is b else set())
        # Their records answer 404, exactly like records that do not exist.
        for path, who in (
            (f"/reports/{theirs['report']}", panel),
            (f"/reports/{theirs['report']}/panel", panel),
            (f"/signals/{theirs['signals'][0]}", panel),
            (f"/signals/{theirs['signals'][0]}/panel", panel),
            (f"/services/{theirs['service']}", admin),
            (f"/services/{theirs['service']}/contacts", admin),
            (f"/contacts/{theirs['contact']}", admin),
            (f"/areas/{theirs['area']}", admin),
        ):
            response = d.call("GET", path, who)
            assert response.status_code == 404, (path, response.get_json())
        # Nor can they write into the other's records.
        grade = d.call("POST", f"/reports/{theirs['report']}/grades", mine["panel"]["p2"], GRADE)
        assert grade.status_code == 404
    status = d.call("GET", f"/alerts/{b['alert']}", a["panel"]["p1"]).status_code
    assert status == 404
    # Codes are unique across the deployment: a clash says only "already used".
    clash = d.call("POST", "/areas", a["admin"], {"code": "DURHAM", "name": "Mine"})
    assert clash.status_code == 409 and clash.get_json()["fields"] == {"code": "is already used"}
    # A host operator (a user of no partnership) sees both.
    host = world["host"]
    reports = _ids(d.ok("GET", "/reports", host))
    assert {a["report"], a["red"], b["report"], b["red"]} <= reports
    assert {a["service"], b["service"]} <= _ids(d.ok("GET", "/services", host))
    assert d.call("GET", f"/alerts/{b['alert']}", host).status_code == 200


def _browser(app: Flask, d: Deployment, email: str) -> FlaskClient:
    web = Web(app, d.container, d.apps)
    client = app.test_client()
    assert web.login(client, email).status_code == 302
    return client


def test_each_partnership_sees_only_its_own_web_pages(app: Flask, world: dict[str, Any]) -> None:
    d, a, b = world["d"], world["a"], world["b"]
    browser = _browser(app, d, "p1-a@example.org")
    admin = _browser(app, d, "admin-a@example.org")
    listing = browser.get("/reports").get_data(as_text=True)
    assert f'/reports/{a["report"]}"' in listing and f'/reports/{b["report"]}"' not in listing
    for path in (
        f"/reports/{b['report']}",
        f"/signals/{b['signals'][0]}",
        f"/panel/reports/{b['report']}",
        f"/alerts/{b['alert']}",
    ):
        assert browser.get(path).status_code == 404, path
    for path in (f"/services/{b['service']}", f"/contacts/{b['contact']}", "/areas/DURHAM"):
        assert admin.get(path).status_code == 404, path
    assert "DURHAM" not in admin.get("/areas").get_data(as_text=True)
    assert "Durham NSP" not in admin.get("/services").get_data(as_text=True)
    assert browser.get(f"/reports/{a['report']}").status_code == 200
    own_service = admin.get(f"/services/{a['service']}")
    assert own_service.status_code == 200 and "York NSP" in own_service.get_data(as_text=True)


def test_the_database_refuses_rows_written_into_another_partnership(
    container: Container, world: dict[str, Any]
) -> None:
    a, b = world["a"], world["b"]
    with acting_for(A), container.db.transaction() as session:
        # The restricted role, whoever the application connects as (here a superuser).
        assert session.scalar(text("SELECT current_user")) == "ldis_partnership"
        assert session.scalar(select(func.count()).select_from(Report)) == 2
        assert session.get(Report, b["report"]) is None
        # An UPDATE cannot reach their rows ...
        moved = session.execute(
            update(Report).where(Report.id == b["report"]).values(kind="callout")
        )
        assert moved.rowcount == 0  # type: ignore[attr-defined]
    # ... nor move one of ours to them, nor insert one as theirs (WITH CHECK).
    for statement in (
        update(Report).where(Report.id == a["report"]).values(partnership_id=B),
        text(
            "INSERT INTO reports (reference, kind, partnership_id, received_at, source_type, "
            "red_list, content_hash, data) VALUES ('X1', 'near_miss', 2, now(), 'x', false, "
            "'h', '{}')"
        ),
        text("INSERT INTO service_areas (service_id, area_id) VALUES (:s, :a)").bindparams(
            s=b["service"], a=1
        ),
    ):
        with (
            pytest.raises(DBAPIError, match="row-level security"),
            acting_for(A),
            container.db.transaction() as session,
        ):
            session.execute(statement)
    # SET LOCAL would not hold on an autocommit connection: refused, not run unrestricted.
    autocommit = container.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    with acting_for(A), autocommit, pytest.raises(TenancyError):
        autocommit.execute(select(func.count()).select_from(Report))
    with container.db.transaction() as session:  # host level: untouched, and both seen
        assert session.get(Report, a["report"]).partnership_id == A  # type: ignore[union-attr]
        assert session.scalar(select(func.count()).select_from(Report)) == 4


def _decide_and_send(d: Deployment, side: dict[str, Any], alert_id: int) -> None:
    panel = side["panel"]
    for name in ("p2", "p3"):
        d.ok("POST", f"/reports/{side['report']}/grades", panel[name], GRADE)
    d.ok("POST", f"/reports/{side['report']}/decision", panel["p2"], DECISION)
    d.ok("POST", f"/alerts/{alert_id}/submit", panel["p1"])
    d.ok("POST", f"/alerts/{alert_id}/approve", panel["p2"])
    assert d.ok("POST", f"/alerts/{alert_id}/approve", panel["p3"])["status"] == "approved"


def _received(container: Container, alert_id: int) -> list[tuple[str, int]]:
    with container.db.transaction() as session:
        return [
            (recipient, version)
            for recipient, version in session.execute(
                select(OutboxMessage.recipient, Delivery.version)
                .join(Delivery, Delivery.id == OutboxMessage.delivery_id)
                .where(Delivery.alert_id == alert_id)
                .order_by(OutboxMessage.recipient, Delivery.version)
            )
        ]


def test_an_alert_shared_with_a_neighbour(
    container: Container, world: dict[str, Any], worker: subprocess.Popen[str]
) -> None:
    d, a, b = world["d"], world["a"], world["b"]
    alert_id = b["alert"]
    _decide_and_send(d, b, alert_id)
    wait_for(lambda: _received(container, alert_id) == [("durham@example.org", 1)], timeout=30)

    # Only B's own panel shares it; A cannot share what it cannot see.
    refused = d.call("POST", f"/alerts/{alert_id}/shares", a["panel"]["p1"], {"partnership": "x"})
    assert refused.status_code == 404
    unknown = d.call("POST", f"/alerts/{alert_id}/shares", b["panel"]["p1"], {"partnership": "x"})
    assert unknown.status_code == 422 and "partnership" in unknown.get_json()["fields"]
    shared = d.ok(
        "POST", f"/alerts/{alert_id}/shares", b["panel"]["p1"], {"partnership": "default"}
    )
    assert [s["code"] for s in shared["shared_with"]] == ["default"]
    # Sharing again changes nothing (and sends nothing twice).
    d.ok("POST", f"/alerts/{alert_id}/shares", b["panel"]["p2"], {"partnership": "default"})

    # A's panel now reads it, but cannot approve, change or share it.
    seen = d.ok("GET", f"/alerts/{alert_id}", a["panel"]["p1"])
    assert seen["id"] == alert_id
    assert alert_id in _alerts(d, a["panel"]["p1"])
    web = _browser(d.client.application, d, "p1-a@example.org")
    assert web.get(f"/alerts/{alert_id}").status_code == 200
    for method, path, body in (
        ("POST", f"/alerts/{alert_id}/withdraw", {"reason": "not ours"}),
        ("POST", f"/alerts/{alert_id}/approve", None),
        ("POST", f"/alerts/{alert_id}/shares", {"partnership": "durham"}),
    ):
        response = d.call(method, path, a["panel"]["p2"], body)
        assert response.status_code == 403, (path, response.get_json())
    # B's other records stay B's: its report and its service are still hidden from A.
    assert d.call("GET", f"/reports/{b['report']}", a["panel"]["p1"]).status_code == 404

    # A's services get the live version once, through the worker; B's contact still once.
    wait_for(
        lambda: (
            _received(container, alert_id) == [("durham@example.org", 1), ("york@example.org", 1)]
        ),
        timeout=30,
    )
    with container.db.transaction() as session:
        rows = session.execute(
            select(Delivery.contact_id, func.count())
            .where(Delivery.alert_id == alert_id)
            .group_by(Delivery.contact_id)
        ).all()
    assert sorted(rows) == sorted([(a["contact"], 1), (b["contact"], 1)])

    # B withdraws it: the notice reaches everyone who had it, on both sides, once.
    panel = b["panel"]
    d.ok("POST", f"/alerts/{alert_id}/withdraw", panel["p1"], {"reason": "Lab retracted it."})
    d.ok("POST", f"/alerts/{alert_id}/approve", panel["p2"])
    assert d.ok("POST", f"/alerts/{alert_id}/approve", panel["p3"])["status"] == "withdrawn"
    both = [("durham@example.org", 1), ("durham@example.org", 2)]
    both += [("york@example.org", 1), ("york@example.org", 2)]
    wait_for(lambda: _received(container, alert_id) == both, timeout=30)


def test_sharing_from_the_alert_page(app: Flask, world: dict[str, Any]) -> None:
    d, b = world["d"], world["b"]
    alert_id = b["alert"]
    reader = _browser(app, d, "p1-a@example.org")
    assert reader.get(f"/alerts/{alert_id}").status_code == 404
    owner = _browser(app, d, "p1-b@example.org")
    page = owner.get(f"/alerts/{alert_id}").get_data(as_text=True)
    assert 'action="/alerts/1/share"' in page and '<option value="default">' in page
    token = csrf(owner.get(f"/alerts/{alert_id}"))
    answer = owner.post(
        f"/alerts/{alert_id}/share", data={"csrf_token": token, "partnership": "default"}
    )
    assert answer.status_code == 302
    page = owner.get(f"/alerts/{alert_id}").get_data(as_text=True)
    assert "Shared with: Default partnership." in page and 'id="share"' not in page
    shown = reader.get(f"/alerts/{alert_id}")
    assert shown.status_code == 200 and 'id="shared-in"' in shown.get_data(as_text=True)
    assert 'action="/alerts/1/submit"' not in shown.get_data(as_text=True)


def test_sqlite_refuses_a_second_partnership(tmp_path: Path) -> None:
    """The embedded default has no row-level security: one partnership only, said clearly;
    users still go to the default partnership (or are host operators)."""
    service = Embedded(tmp_path)
    assert service.ldis("db", "upgrade").returncode == 0
    refused = service.ldis("partnerships", "create", "durham", "Durham and Darlington")
    assert refused.returncode == 1
    assert "several partnerships need PostgreSQL" in refused.stderr
    assert service.ldis("partnerships", "list").stdout.split("\n")[0] == (
        "1\tdefault\tDefault partnership"
    )
    made = service.ldis(
        "users", "create", "--email", "ops@example.org", "--name", "Ops", "--role", "admin"
    )
    assert made.returncode == 0 and "(partnership default)" in made.stdout
    unknown = service.ldis(
        "users",
        "create",
        "--email",
        "x@example.org",
        "--name",
        "X",
        "--role",
        "admin",
        "--partnership",
        "durham",
    )
    assert unknown.returncode == 1 and "no partnership 'durham'" in unknown.stderr


# Tables every partnership shares, on purpose (docs/operations.md, "Deployment-wide").
DEPLOYMENT_WIDE = {
    "alembic_version",
    "partnerships",
    "service_types",
    "substance_entries",
    "public_texts",
    "public_form_tokens",
    "notices",
    "audit_events",
}


def test_every_table_is_isolated_or_shared_on_purpose(container: Container) -> None:
    """A table a later migration adds is usable by a partnership's requests (`ldis db
    upgrade` grants it) but has no policy until someone writes one: this fails until it is
    given row-level security or listed above as deployment-wide."""
    with container.db.transaction() as session:
        rows = session.execute(
            text(
                "SELECT c.relname, c.relrowsecurity, "
                "(SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) "
                "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind = 'r'"
            )
        ).all()
    open_tables = {name for name, secured, _ in rows if not secured}
    assert open_tables == DEPLOYMENT_WIDE
    assert all(policies > 0 for _, secured, policies in rows if secured)
