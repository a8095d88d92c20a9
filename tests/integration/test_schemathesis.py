"""Schemathesis against the live app: for every operation in GET /api/v1/openapi.json, cases
generated from the document itself (valid and invalid ones) are sent to the real Flask app
(in-process WSGI, real PostgreSQL) with a token holding every role. No answer may be a 500,
and every answer must match the document: status code, content type and body schema.

Each operation starts from the same small world (areas, a service with a manager and a
contact, two reports in a red-list signal, a graded and decided case, an alert awaiting
approval) and half of the cases aim at those rows' real ids rather than random ones.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ldis.api.openapi import OPERATIONS
from ldis.bootstrap import Container
from ldis.domain.roles import Role
from ldis.services.accounts import create_token, create_user

pytestmark = pytest.mark.integration

# Bounded: the whole module runs in about a minute on two shared cores, with the same cases
# every run. `SCHEMATHESIS_EXAMPLES=300 pytest tests/integration/test_schemathesis.py` looks
# further, with new random cases each time (docs/security.md).
EXPLORING = "SCHEMATHESIS_EXAMPLES" in os.environ
EXAMPLES_PER_OPERATION = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "25"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

BOUNDARY = {
    "type": "Polygon",
    "coordinates": [
        [[-1.10, 53.95], [-1.06, 53.95], [-1.06, 53.97], [-1.10, 53.97], [-1.10, 53.95]]
    ],
}
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


def drug_check(reference: str) -> dict[str, Any]:
    return {
        "kind": "drug_checking",
        "area": "YORK-C",
        "sample_obtained_on": "2026-01-20",
        "sold_as": "oxycodone",
        "form": "tablet",
        "appearance": {"colour": "green", "shape": "round", "markings": "OC 80"},
        "results": [{"substance": "metonitazene", "method": "lc-ms", "abundance": "primary"}],
        "source": {"type": "drug_checking_service", "name": "York lab", "reference": reference},
    }


@dataclass
class World:
    headers: dict[str, str]
    ids: dict[str, Any] = field(default_factory=dict)

    def path_parameters(self, path: str, generated: dict[str, Any]) -> dict[str, Any]:
        """The generated path parameters with every id or code replaced by a real one."""
        real = dict(generated)
        for name in generated:
            key = "type_code" if name == "code" and "/service-types/" in path else name
            if key in self.ids:
                real[name] = self.ids[key]
        return real


def _call(client: FlaskClient, method: str, path: str, headers: dict[str, str], body: Any) -> Any:
    response = client.open(path, method=method, json=body, headers=headers)
    assert response.status_code < 300, (method, path, response.get_json())
    return response.get_json()


@pytest.fixture
def world(container: Container, client: FlaskClient) -> World:
    db = container.db
    everyone = frozenset(Role)
    fuzzer_id = create_user(db, email="fuzzer@example.org", name="Fuzzer", roles=everyone)
    create_user(db, email="drafter@example.org", name="Drafter", roles=frozenset({Role.panel}))
    admin = {"Authorization": f"Bearer {create_token(db, email='fuzzer@example.org')}"}
    drafter = {"Authorization": f"Bearer {create_token(db, email='drafter@example.org')}"}

    def call(method: str, path: str, body: Any = None, who: dict[str, str] = admin) -> Any:
        return _call(client, method, f"/api/v1{path}", who, body)

    call("POST", "/areas", {"code": "NYORKS", "name": "North Yorkshire and York"})
    call("POST", "/areas", {"code": "YORK-C", "name": "York city centre", "parent": "NYORKS"})
    call("POST", "/areas", {"code": "YORK-W", "name": "York west", "parent": "NYORKS"})
    call("POST", "/areas/YORK-C/neighbours", {"code": "YORK-W"})
    call("PUT", "/areas/YORK-C/boundary", BOUNDARY)
    service = call(
        "POST", "/services", {"name": "York NSP", "type": "pharmacy", "areas": ["YORK-C"]}
    )
    call("POST", f"/services/{service['id']}/managers", {"email": "fuzzer@example.org"})
    contact = call(
        "POST",
        f"/services/{service['id']}/contacts",
        {
            "name": "Duty worker",
            "email": "duty@example.org",
            "phone": "07700 900123",
            "channels": ["sms", "email"],
        },
    )
    first = call("POST", "/reports", drug_check("LAB-1"))
    call("POST", "/reports", drug_check("LAB-2"))
    signal_id = first["signals"][0]["id"]
    call("POST", f"/reports/{first['id']}/grades", GRADE)
    call(
        "POST",
        f"/reports/{first['id']}/decision",
        {"decision": "formal_alert", "reasons": "Red list."},
    )
    call("POST", f"/signals/{signal_id}/grades", GRADE)
    alert = call(
        "POST",
        "/alerts",
        {
            "title": "Nitazenes in fake oxycodone",
            "priority": "urgent",
            "areas": ["YORK-C"],
            "report_id": first["id"],
            "fields": {
                "summary": "Green OC 80 tablets hold metonitazene.",
                "advice": "Carry naloxone.",
            },
        },
        drafter,
    )
    call("POST", f"/alerts/{alert['id']}/submit", None, drafter)
    return World(
        headers=admin,
        ids={
            "alert_id": alert["id"],
            "report_id": first["id"],
            "signal_id": signal_id,
            "service_id": service["id"],
            "contact_id": contact["id"],
            "user_id": fuzzer_id,
            "code": "YORK-C",
            "other": "YORK-W",
            "type_code": "pharmacy",
        },
    )


@pytest.fixture(scope="session")
def api_schema(app: Flask) -> Any:
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


def _label(op: Any) -> str:
    return f"{op.method.upper()} {op.path.removeprefix('/api/v1')}"


@pytest.mark.parametrize(
    ("method", "path"),
    [(o.method, o.path) for o in OPERATIONS],
    ids=[_label(o) for o in OPERATIONS],
)
def test_operation_matches_the_document(
    api_schema: Any, world: World, method: str, path: str
) -> None:
    operation = api_schema[path][method.upper()]
    cases = st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=not EXPLORING,  # in CI the same cases every run: failures reproduce
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases, aim_at_real_rows=st.booleans())
    def check(case: Any, aim_at_real_rows: bool) -> None:
        if aim_at_real_rows and case.path_parameters:
            case.path_parameters = world.path_parameters(path, case.path_parameters)
        case.call_and_validate(headers=world.headers, checks=CHECKS)

    started = time.monotonic()
    check()
    assert EXPLORING or time.monotonic() - started < 60, f"{method} {path} took too long"


# --- what schemathesis (and a review of the same paths) found: each once a 500 ------------


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "field"),
    [
        # An id the database cannot hold (integer out of range).
        ("GET", "/api/v1/services/32066311509087416/contacts", None, 404, None),
        ("POST", "/api/v1/signals/{signal_id}/merge", {"into": 2**31}, 422, "into"),
        ("POST", "/api/v1/signals/{signal_id}/split", {"report_ids": [2**40]}, 422, "report_ids"),
        ("PATCH", "/api/v1/users/{user_id}", {"service_id": 204698598948}, 422, "service_id"),
        (
            "POST",
            "/api/v1/audience/preview",
            {"areas": ["YORK-C"], "service_ids": [2**31]},
            422,
            "service_ids.0",
        ),
        # A NUL character (PostgreSQL text cannot hold one).
        ("GET", "/api/v1/areas/YORK%00C", None, 404, None),
        ("GET", "/api/v1/reports?substance=he%00roin", None, 422, "substance"),
        ("POST", "/api/v1/audience/preview", {"areas": ["YORK\x00C"]}, 422, "areas.0"),
        ("PATCH", "/api/v1/areas/YORK-C", {"name": "Y\x00rk"}, 422, "name"),
        # Dates at the edge of time: overflow when made UTC or given "the whole day".
        ("GET", "/api/v1/reports?until=9999-12-31", None, 422, "until"),
        ("GET", "/api/v1/reports?since=9999-12-31T23:59:59-23:59", None, 422, "since"),
        (
            "POST",
            "/api/v1/alerts",
            {
                "title": "Edge of time",
                "areas": ["YORK-C"],
                "fields": {"summary": "s", "advice": "a"},
                "expires_at": "9999-12-31T23:59:59-23:59",
            },
            422,
            "expires_at",
        ),
        # Longer than the column that keeps it.
        ("POST", "/api/v1/service-types", {"code": "long", "label": "a" * 150}, 422, "label"),
        ("PATCH", "/api/v1/service-types/pharmacy", {"label": "b" * 150}, 422, "label"),
        ("POST", "/api/v1/substances", {"name": "x" * 300, "class": "opioid"}, 422, "name"),
        # A time zone on a local time of day (out of PostgreSQL's range, even).
        (
            "PATCH",
            "/api/v1/contacts/{contact_id}",
            {"quiet_hours": {"start": "01:23:00-13:58", "end": "18:13:48+18:48"}},
            422,
            "quiet_hours.start",
        ),
    ],
)
def test_input_the_database_cannot_hold_is_refused(
    client: FlaskClient,
    world: World,
    method: str,
    path: str,
    body: Any,
    status: int,
    field: str | None,
) -> None:
    response = client.open(
        path.format(**world.ids), method=method, json=body, headers=world.headers
    )
    assert response.status_code == status, response.get_json()
    error = response.get_json()
    assert set(error) >= {"error", "message", "fields"}
    if field:
        assert field in error["fields"], error


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 100_000 + b"]" * 100_000,  # deeper than the parser's stack
        b'{"a": ' * 40 + b"1" + b"}" * 40,  # deeper than any body of ours
        b'{"name": NaN}',
        b'{"name": Infinity}',
        b'{"lat": 1e400}',
    ],
    ids=["stack-deep", "too-deep", "nan", "infinity", "overflow"],
)
def test_json_beyond_strict_json_is_a_bad_request(
    client: FlaskClient, world: World, raw: bytes
) -> None:
    headers = {**world.headers, "Content-Type": "application/json"}
    response = client.patch("/api/v1/areas/YORK-C", data=raw, headers=headers)
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"] == "bad_request"


def test_a_long_colour_and_marking_still_files(client: FlaskClient, world: World) -> None:
    # Their normalised key was once wider than its column.
    body = drug_check("LAB-LONG")
    body["appearance"] = {"colour": "c" * 200, "markings": "m" * 200, "shape": "round"}
    response = client.post("/api/v1/reports", json=body, headers=world.headers)
    assert response.status_code == 201, response.get_json()
