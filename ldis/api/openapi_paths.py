"""How the OpenAPI document describes a route (`Op`): who may call it, what it takes and what
it answers. The routes themselves are listed in `openapi_cases` and `openapi_recipients`;
`tests/integration/test_openapi.py` checks that list against the URL map both ways, so a
new route cannot be left out (nor a removed one linger)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ldis.api import openapi_schemas as s
from ldis.api.openapi_schemas import Schema
from ldis.domain.roles import Role

JSON = "application/json"
CSV = "text/csv"
EVERYONE = tuple(role.value for role in Role)
ADMIN = ("admin",)
PANEL = ("panel",)
PANEL_ADMIN = ("panel", "admin")
FILERS = ("reporter", "panel", "admin")
MANAGERS = ("admin", "service_manager")
AREA_READERS = ("panel", "admin", "service_manager")


@dataclass(frozen=True)
class Param:
    name: str
    schema: Schema
    description: str = ""
    required: bool = False


@dataclass(frozen=True)
class Op:
    method: str
    path: str  # as OpenAPI writes it: /api/v1/alerts/{alert_id}
    summary: str
    roles: tuple[str, ...]
    response: Schema | None  # None: 204, no body
    ok: int = 200
    media: str = JSON
    body: Schema | None = None
    body_media: str = JSON
    body_required: bool = True
    query: tuple[Param, ...] = field(default=())
    # Also answers 201 (something new) besides `ok` (already there), or vice versa.
    also: int | None = None


BOOL_FLAG = {"type": "string", "enum": ["true", "false", "1", "0"]}
AREA_CODE = {"type": "string", "minLength": 1, "maxLength": 40}
PATH_PARAMS: dict[str, Schema] = {
    "alert_id": s.ID,
    "report_id": s.ID,
    "signal_id": s.ID,
    "service_id": s.ID,
    "contact_id": s.ID,
    "user_id": s.ID,
    "code": {"type": "string", "minLength": 1, "maxLength": 60},
    "other": AREA_CODE,
    "channel": {"type": "string", "enum": ["sms", "email"]},
}


def path_parameters(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


def describe_roles(roles: tuple[str, ...]) -> str:
    return "Public." if not roles else "Roles: " + ", ".join(roles) + "."
