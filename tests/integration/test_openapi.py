"""The OpenAPI document stays true: every route of API v1 is in it and nothing else, each
with the roles the route really checks; it is served without a token."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from ldis.api.openapi import OPERATIONS, document
from ldis.api.openapi_paths import describe_roles
from ldis.web.access import ACCESS_ATTR

pytestmark = pytest.mark.integration

IGNORED_METHODS = {"HEAD", "OPTIONS"}


def _openapi_path(rule: str) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def _routes(app: Flask) -> dict[tuple[str, str], str]:
    """(method, OpenAPI path) -> endpoint of every API route in the URL map."""
    found = {}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        for method in (rule.methods or set()) - IGNORED_METHODS:
            found[(method.lower(), _openapi_path(rule.rule))] = rule.endpoint
    return found


def test_every_api_route_is_in_the_document_and_nothing_else(app: Flask) -> None:
    in_app = set(_routes(app))
    in_document = {(method, path) for path, item in document()["paths"].items() for method in item}
    assert in_app - in_document == set(), "routes missing from the OpenAPI document"
    assert in_document - in_app == set(), "documented operations with no route"


def test_each_operation_names_the_roles_the_route_checks(app: Flask) -> None:
    routes = _routes(app)
    for op in OPERATIONS:
        access = getattr(app.view_functions[routes[(op.method, op.path)]], ACCESS_ATTR)
        expected = () if access == "public" else tuple(sorted(access))
        assert tuple(sorted(op.roles)) == expected, f"{op.method} {op.path}"
        described = document()["paths"][op.path][op.method]["description"]
        assert described == describe_roles(op.roles)


def test_path_parameters_are_declared(app: Flask) -> None:
    for path, item in document()["paths"].items():
        named = set(re.findall(r"{([^}]+)}", path))
        for method, operation in item.items():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == named, f"{method} {path}"


def test_every_reference_resolves() -> None:
    doc = document()
    text = repr(doc)
    for kind, name in set(re.findall(r"'#/components/(\w+)/(\w+)'", text)):
        assert name in doc["components"][kind], f"{kind}/{name}"


def test_the_document_is_served_without_a_token(client: FlaskClient) -> None:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["openapi"].startswith("3.1")
    assert body["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert body["paths"]["/api/v1/openapi.json"]["get"]["security"] == []
    # Bodies validated by pydantic are described by its own schema of the model.
    draft = body["components"]["schemas"]["AlertDraft"]
    assert draft["additionalProperties"] is False
    assert {"title", "areas", "fields"} <= set(draft["required"])
    error = body["components"]["schemas"]["Error"]
    assert error["required"] == ["error", "message", "fields"]
    for code in (400, 401, 403, 404, 409, 413, 415, 422, 429, 503):
        assert f"E{code}" in body["components"]["responses"]
