"""Schemas of the OpenAPI document that pydantic cannot give: what each route answers, and the
bodies read by hand rather than through a model. Pydantic's own are built in `openapi`.

Response schemas name the fields clients rely on and their types; extra fields are allowed,
so adding one to a view is not a breaking change (removing or retyping one is)."""

from __future__ import annotations

from typing import Any

from ldis.domain.reports import REPORT_KINDS
from ldis.services.alert_views import LISTS
from ldis.services.signals import STATUSES

Schema = dict[str, Any]

STR: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
NUM: Schema = {"type": "number"}
BOOL: Schema = {"type": "boolean"}
ANY: Schema = {}
OBJ: Schema = {"type": "object"}
STR_N: Schema = {"type": ["string", "null"]}
INT_N: Schema = {"type": ["integer", "null"]}
NUM_N: Schema = {"type": ["number", "null"]}
WHEN: Schema = {"type": ["string", "null"], "format": "date-time"}
WHEN_SET: Schema = {"type": "string", "format": "date-time"}
# Largest id a record can have (PostgreSQL `integer`).
MAX_ID = 2**31 - 1
ID: Schema = {"type": "integer", "minimum": 1, "maximum": MAX_ID}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def array(items: Schema, **extra: Any) -> Schema:
    return {"type": "array", "items": items, **extra}


def obj(required: dict[str, Schema], optional: dict[str, Schema] | None = None) -> Schema:
    """An object with these fields (required ones always present); others may appear."""
    return {
        "type": "object",
        "required": list(required),
        "properties": {**required, **(optional or {})},
    }


def closed(required: dict[str, Schema], optional: dict[str, Schema] | None = None) -> Schema:
    """A request body: exactly these fields, unknown ones refused."""
    return {**obj(required, optional), "additionalProperties": False}


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


ERROR = obj(
    {
        "error": {**STR, "description": "a stable code, e.g. validation_failed"},
        "message": {**STR, "description": "one sentence for a person"},
        "fields": {
            "type": "object",
            "additionalProperties": STR,
            "description": "dotted field path -> what is wrong with it",
        },
    }
)

# --- reports, signals, substances ---------------------------------------------------------

SIGNAL_BRIEF = obj({"id": INT, "kind": STR, "severity": STR, "status": STR, "summary": STR})
SUBSTANCE_MATCH = obj(
    {
        "field": STR,
        "written": STR,
        "canonical": STR_N,
        "class": STR_N,
        "red_list": BOOL,
        "known": BOOL,
    }
)
REPORT = obj(
    {
        "id": INT,
        "reference": STR,
        "kind": {"type": "string", "enum": [*sorted(REPORT_KINDS), "public"]},
        "area": STR_N,
        "occurred_at": WHEN,
        "received_at": WHEN,
        "red_list": BOOL,
        "substances": array(ref("SubstanceMatch")),
        "updates": array(obj({"text": STR, "created_at": WHEN})),
        "signals": array(ref("SignalBrief")),
    },
    {
        "duplicate": BOOL,
        "source": OBJ,
        "notes": STR,
        "origin": {
            "type": "string",
            "enum": ["staff", "public_web", "public_sms"],
            "description": "public_*: anonymous, from the public report doors",
        },
        "verified": {**BOOL, "description": "false for public reports"},
    },
)
REPORT_LIST = obj(
    {"reports": array(ref("Report")), "offset": INT, "limit": INT, "more": BOOL},
)
BATCH_RESULT = obj(
    {
        "accepted": INT,
        "duplicates": INT,
        "rejected": array(
            obj({"index": INT, "fields": {"type": "object", "additionalProperties": STR}})
        ),
    }
)
SIGNAL = obj(
    {
        "id": INT,
        "kind": {
            "type": "string",
            "enum": ["red_list", "mismatch", "presentation", "cluster", "public"],
        },
        "area": STR_N,
        "severity": STR,
        "status": {"type": "string", "enum": list(STATUSES)},
        "report_ids": array(INT),
        "summary": STR,
        "detected_at": WHEN,
        "updated_at": WHEN,
        "window": obj({"start": WHEN, "end": WHEN}),
        "reason": STR_N,
        "escalated": BOOL,
        "merged_into": INT_N,
        "details": ANY,
    }
)
SUBSTANCE_ENTRY = obj(
    {"id": INT, "name": STR, "class": STR, "red_list": BOOL, "synonyms": array(STR)}
)
# --- the panel's grades and decisions -----------------------------------------------------

MEMBER = obj({"id": INT_N, "name": STR})
GRADE = obj(
    {
        "id": INT,
        "member": MEMBER,
        "score": INT,
        "rag": STR,
        "created_at": WHEN,
        "updated_at": WHEN,
    },
    {"replaced": BOOL, "changes": OBJ},
)
DECISION = obj(
    {
        "id": INT,
        "decision": STR,
        "rag": STR,
        "reasons": STR,
        "decided_by": MEMBER,
        "decided_at": WHEN,
    },
    {"subject": STR, "subject_id": INT, "case": OBJ},
)
CASE_VIEW = obj(
    {
        "subject": {"type": "string", "enum": ["signal", "report"]},
        "subject_id": INT,
        "case": OBJ,
        "criteria": array(STR),
        "grades": array(ref("GradeView")),
        "summary": {"type": ["object", "null"]},
        "suggested_rag": STR_N,
        "decision": {"anyOf": [ref("DecisionView"), {"type": "null"}]},
        "decisions": array(ref("DecisionView")),
        "seen_at": WHEN,
        "first_report_at": WHEN,
        "urgent": BOOL,
        "response_due_at": WHEN,
        "responded_at": WHEN,
        "overdue": BOOL,
    }
)

# --- alerts -------------------------------------------------------------------------------

COUNTS = {"type": "object", "additionalProperties": INT}
ALERT_VERSION = obj(
    {
        "version": INT,
        "purpose": STR,
        "state": STR,
        "revision": INT,
        "title": STR,
        "template": STR,
        "level": STR,
        "priority": STR,
        "content": OBJ,
        "drafter_id": INT_N,
        "author_ids": array(INT),
        "created_at": WHEN,
        "submitted_at": WHEN,
        "approved_at": WHEN,
        "rejected_at": WHEN,
        "reject_reason": STR_N,
    }
)
ALERT = obj(
    {
        "id": INT,
        "status": STR,
        "version": INT,
        "live_version": INT_N,
        "active": BOOL,
        "purpose": STR,
        "revision": INT,
        "title": STR,
        "template": STR,
        "level": STR,
        "priority": STR,
        "kind": STR,
        "areas": array(STR),
        "service_types": array(STR),
        "fields": OBJ,
        "exercise": BOOL,
        "participants": array(INT),
        "signal_id": INT_N,
        "report_id": INT_N,
        "review_by": WHEN,
        "expires_at": WHEN,
        "drafter_id": INT_N,
        "author_ids": array(INT),
        "approvals": INT,
        "approver_ids": array(INT),
        "deliveries": COUNTS,
        "timing": OBJ,
    },
    {"versions": array(ref("AlertVersion"))},
)
ALERT_SUMMARY = obj(
    {
        "id": INT,
        "status": STR,
        "version": INT,
        "live_version": INT_N,
        "title": STR,
        "priority": STR,
        "level": STR,
        "areas": array(STR),
        "exercise": BOOL,
        "approvals": INT,
        "expires_at": WHEN,
        "review_by": WHEN,
        "updated_at": WHEN,
    }
)
ALERT_PREVIEW = obj(
    {
        "id": INT,
        "version": INT,
        "revision": INT,
        "purpose": STR,
        "state": STR,
        "exercise": BOOL,
        "messages": OBJ,
        "render_error": STR_N,
        "audience": obj({"services": INT, "contacts": INT, "messages": INT, "by_channel": COUNTS}),
    }
)
ALERT_EVENT = obj(
    {"id": INT, "at": WHEN, "action": STR, "actor_id": INT_N, "actor": STR, "detail": ANY}
)
ALERT_ACK = obj(
    {
        "version": INT,
        "channel": STR,
        "acknowledged_at": WHEN,
        "seconds_after_sending": NUM_N,
        "contact": STR,
        "service": STR,
    }
)
ALERT_PROGRESS = obj(
    {
        "alert": obj(
            {
                "id": INT,
                "title": STR,
                "status": STR,
                "priority": STR,
                "exercise": BOOL,
                "live_version": INT_N,
            }
        ),
        "escalate_after_minutes": INT_N,
        "phones_shown": BOOL,
        "resend_version": INT_N,
        "versions": array(OBJ),
    }
)
RESENT = obj({"alert_id": INT, "version": INT_N, "resent": INT})
# Named in components.schemas (pydantic's input models are added beside these).
COMPONENTS: dict[str, Schema] = {
    "Error": ERROR,
    "SignalBrief": SIGNAL_BRIEF,
    "SubstanceMatch": SUBSTANCE_MATCH,
    "Report": REPORT,
    "ReportList": REPORT_LIST,
    "BatchResult": BATCH_RESULT,
    "Signal": SIGNAL,
    "SubstanceEntry": SUBSTANCE_ENTRY,
    "GradeView": GRADE,
    "DecisionView": DECISION,
    "CaseView": CASE_VIEW,
    "AlertVersion": ALERT_VERSION,
    "Alert": ALERT,
    "AlertSummary": ALERT_SUMMARY,
    "AlertPreview": ALERT_PREVIEW,
    "AlertEvent": ALERT_EVENT,
    "AlertAcknowledgement": ALERT_ACK,
    "AlertProgress": ALERT_PROGRESS,
    "Resent": RESENT,
}

# Query parameters shared by more than one route.
ALERT_LIST_STATES = list(LISTS)
