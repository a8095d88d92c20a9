"""The OpenAPI 3.1 document of API v1, served at GET /api/v1/openapi.json (no token needed).

Request bodies come from the pydantic models the use cases validate with, so the document
cannot drift from what is checked; responses and the few bodies read by hand are written
out in `openapi_schemas`, and the routes are listed in `openapi_paths`."""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from flask import jsonify
from flask.typing import ResponseReturnValue
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from ldis.api import openapi_schemas, openapi_schemas_recipients
from ldis.api.openapi_cases import CASE_OPERATIONS
from ldis.api.openapi_examples import EXAMPLES
from ldis.api.openapi_paths import JSON, PATH_PARAMS, Op, describe_roles, path_parameters
from ldis.api.openapi_recipients import RECIPIENT_OPERATIONS
from ldis.api.openapi_schemas import Schema, ref
from ldis.api.v1 import bp
from ldis.domain.alerts import AlertDraft
from ldis.domain.areas import AreaUpdate, NeighbourInput
from ldis.domain.audience import AudienceQuery
from ldis.domain.grading import DecisionInput, GradeInput
from ldis.domain.recipients import (
    AreaInput,
    ContactInput,
    ContactUpdate,
    ManagerInput,
    ServiceInput,
    ServiceTypeInput,
    ServiceTypeUpdate,
    ServiceUpdate,
)
from ldis.domain.reports import REPORT_KINDS
from ldis.web.access import public

__all__ = ["OPERATIONS", "bp", "document"]

# Every route of API v1 (tests/integration/test_openapi.py holds this to the URL map).
OPERATIONS: tuple[Op, ...] = (*CASE_OPERATIONS, *RECIPIENT_OPERATIONS)

INPUT_MODELS: tuple[type[BaseModel], ...] = (
    *REPORT_KINDS.values(),
    GradeInput,
    DecisionInput,
    AlertDraft,
    AudienceQuery,
    AreaInput,
    AreaUpdate,
    NeighbourInput,
    ServiceTypeInput,
    ServiceTypeUpdate,
    ServiceInput,
    ServiceUpdate,
    ManagerInput,
    ContactInput,
    ContactUpdate,
)

ERRORS: dict[int, str] = {
    400: "The body is not valid JSON.",
    401: "No token, or a wrong or revoked one.",
    403: "Your roles do not allow it.",
    404: "No such record (or not one you may see).",
    409: "The record's state does not allow it, or it clashes with another.",
    413: "The body is too large.",
    415: "The body is not sent with the content type this route reads.",
    422: "Some fields need fixing: `fields` names each one.",
    429: "Too many requests; wait and try again.",
    503: "A dependency (the database) is down; retry after `Retry-After` seconds.",
}
MUTATING = frozenset({"post", "put", "patch", "delete"})


def _input_schemas() -> dict[str, Schema]:
    """Pydantic's JSON schemas of the input models, named as components."""
    _, top = models_json_schema(
        [(model, "validation") for model in INPUT_MODELS],
        ref_template="#/components/schemas/{model}",
    )
    schemas: dict[str, Schema] = top.get("$defs", {})
    # A report's `kind` picks the model: say so, so that each body names exactly one.
    for name, model in REPORT_KINDS.items():
        schemas[model.__name__]["properties"]["kind"] = {"const": name}
    # In a batch of call-outs `kind` may be left out.
    item = copy.deepcopy(schemas[REPORT_KINDS["callout"].__name__])
    item["required"] = [f for f in item["required"] if f != "kind"]
    item["title"] = "CalloutItem"
    schemas["CalloutItem"] = item
    return schemas


def _responses(op: Op) -> dict[str, Any]:
    media = {op.media: {"schema": op.response}} if op.response is not None else None
    ok: dict[str, Any] = {"description": "Done."}
    if media:
        ok["content"] = media
    responses: dict[str, Any] = {str(op.ok): ok}
    if op.also is not None:
        responses[str(op.also)] = {**ok, "description": "Already there."}
    if not op.roles:
        return responses
    codes = {401, 403, 429, 503}
    if path_parameters(op.path):
        codes.add(404)
    if op.query or op.body is not None or path_parameters(op.path):
        codes.add(422)
    if op.method in MUTATING:
        codes |= {400, 409, 413, 415, 422}
    for code in sorted(codes):
        responses[str(code)] = {"$ref": f"#/components/responses/E{code}"}
    return responses


def _operation(op: Op) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": PATH_PARAMS[name]}
        for name in path_parameters(op.path)
    ]
    for param in op.query:
        entry: dict[str, Any] = {
            "name": param.name,
            "in": "query",
            "required": param.required,
            "schema": param.schema,
        }
        if param.description:
            entry["description"] = param.description
        parameters.append(entry)
    operation: dict[str, Any] = {
        "operationId": f"{op.method}_{op.path.removeprefix('/api/v1/')}",
        "summary": op.summary,
        "description": describe_roles(op.roles),
        "tags": [op.path.split("/")[3].split(".")[0]],
        "responses": _responses(op),
    }
    if parameters:
        operation["parameters"] = parameters
    if op.body is not None:
        media: dict[str, Any] = {"schema": op.body}
        if (op.method, op.path) in EXAMPLES:
            media["example"] = EXAMPLES[(op.method, op.path)]
        operation["requestBody"] = {
            "required": op.body_required,
            "content": {op.body_media: media},
        }
    if not op.roles:
        operation["security"] = []
    return operation


@cache
def document() -> dict[str, Any]:
    """The whole document (built once per process)."""
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    error_responses = {
        f"E{code}": {
            "description": text,
            "content": {JSON: {"schema": ref("Error")}},
            **({"headers": {"Retry-After": {"schema": {"type": "string"}}}} if code == 503 else {}),
        }
        for code, text in ERRORS.items()
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ldis API",
            "version": "1",
            "description": "Local Drug Information System: reports in, signals, panel "
            "approval, alerts out. Errors are always JSON: "
            '`{"error": code, "message": sentence, "fields": {"field.path": problem}}`.',
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token from `ldis tokens create --email E`.",
                }
            },
            "schemas": {
                **_input_schemas(),
                **openapi_schemas.COMPONENTS,
                **openapi_schemas_recipients.COMPONENTS,
            },
            "responses": error_responses,
        },
    }


@bp.get("/openapi.json")
@public
def openapi_document() -> ResponseReturnValue:
    return jsonify(document())
