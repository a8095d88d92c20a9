"""Response schemas of the OpenAPI document for areas, the audience preview, service types,
services, managers, contacts and user accounts (the rest: `openapi_schemas`)."""

from __future__ import annotations

from ldis.api.openapi_schemas import (
    BOOL,
    COUNTS,
    INT,
    INT_N,
    NUM,
    OBJ,
    STR,
    STR_N,
    WHEN,
    WHEN_SET,
    Schema,
    array,
    obj,
    ref,
)

# --- areas --------------------------------------------------------------------------------

AREA_FIELDS: dict[str, Schema] = {
    "id": INT,
    "code": STR,
    "name": STR,
    "parent": STR_N,
    "has_boundary": BOOL,
}
AREA = obj(AREA_FIELDS, {"depth": INT, "neighbours": array(STR)})
AREA_DETAIL = obj(
    {
        **AREA_FIELDS,
        "depth": INT,
        "neighbours": array(STR),
        "children": array(STR),
        "bbox": {"anyOf": [array(NUM, minItems=4, maxItems=4), {"type": "null"}]},
    }
)
BOUNDARY_FEATURE = obj(
    {
        "type": {"const": "Feature"},
        "bbox": array(NUM, minItems=4, maxItems=4),
        "properties": obj({"code": STR, "name": STR}),
        "geometry": OBJ,
    }
)

# --- audience, services, contacts ---------------------------------------------------------

AUDIENCE = obj(
    {
        "query": OBJ,
        "alert_areas": array(STR),
        "neighbour_areas": array(STR),
        "totals": obj(
            {
                "services": INT,
                "contacts": INT,
                "messages": INT,
                "by_channel": COUNTS,
                "missed": INT,
                "excluded_by_choice": INT,
            }
        ),
        "services": array(
            obj({"id": INT, "name": STR, "type": STR, "contacts": array(OBJ)}),
        ),
        "services_listed": INT,
        "missed": array(obj({"id": INT, "name": STR, "type": STR, "reason": STR, "why": STR})),
        "excluded_by_choice": INT,
    }
)
SERVICE_TYPE = obj({"code": STR, "label": STR, "active": BOOL, "services": INT})
MANAGER = obj({"id": INT, "name": STR, "email": STR})
SERVICE = obj(
    {
        "id": INT,
        "name": STR,
        "type": STR,
        "areas": array(STR),
        "ref": STR_N,
        "alert_levels": array(STR),
        "alert_kinds": array(STR),
        "contacts": obj({"total": INT, "reachable": INT, "pending_verification": INT}),
        "reachable": BOOL,
        "confirmed_at": WHEN,
        "review_reminded_at": WHEN,
        "created_at": WHEN_SET,
        "updated_at": WHEN,
    },
    {"managers": array(ref("Manager"))},
)
MANAGERS = obj({"service_id": INT, "managers": array(ref("Manager"))})
CHANNEL_STATE_FIELDS: dict[str, Schema] = {
    "status": STR,
    "verified": BOOL,
    "pending_verification": BOOL,
    "opted_out": BOOL,
    "failed": BOOL,
    "failure_reason": STR_N,
    "verified_at": WHEN,
    "verification_sent_at": WHEN,
}
CHANNEL_STATE = obj(CHANNEL_STATE_FIELDS)
CONTACT = obj(
    {
        "id": INT,
        "service_id": INT,
        "name": STR,
        "role": STR,
        "email": STR_N,
        "phone": STR_N,
        "quiet_hours": {"anyOf": [obj({"start": STR, "end": STR}), {"type": "null"}]},
        "channels": array(STR),
        "verified": {"type": "object", "additionalProperties": BOOL},
        "channel_status": {"type": "object", "additionalProperties": ref("ChannelState")},
        "reachable": BOOL,
        "opted_out_at": WHEN,
        "flagged_at": WHEN,
        "flag_reason": STR_N,
        "removed": BOOL,
        "created_at": WHEN_SET,
        "updated_at": WHEN,
    }
)
VERIFICATION = obj({"contact_id": INT, "channel": STR, **CHANNEL_STATE_FIELDS})
RECIPIENTS_PLAN = obj(
    {
        "applied": BOOL,
        "file_sha256": STR,
        "plan": STR,
        "summary": OBJ,
        "errors": array(obj({"row": INT_N, "field": STR, "message": STR})),
        "changes": array(OBJ),
    },
    {"verification_sent": INT},
)

CONTACT_EXPORT = obj(
    {
        "format": STR,
        "exported_at": WHEN_SET,
        "contact": OBJ,
        "channels": array(OBJ),
        "unsubscriptions": array(OBJ),
        "deliveries": array(OBJ),
        "notices": array(OBJ),
        "outbox_messages": array(OBJ),
        "audit_events": array(OBJ),
    }
)

# --- user accounts ------------------------------------------------------------------------

USER = obj(
    {
        "id": INT,
        "name": STR,
        "email": STR,
        "roles": array(STR),
        "active": BOOL,
        "service_id": INT_N,
    }
)

# --- partnerships on one deployment -------------------------------------------------------

PARTNERSHIP = obj({"id": INT, "code": STR, "name": STR})
PARTNERSHIPS = obj({"items": array(PARTNERSHIP)})
ALERT_SHARES = obj(
    {
        "alert_id": INT,
        "shared_with": array(obj({"code": STR, "name": STR, "shared_at": WHEN_SET})),
    }
)

COMPONENTS: dict[str, Schema] = {
    "Area": AREA,
    "AreaDetail": AREA_DETAIL,
    "BoundaryFeature": BOUNDARY_FEATURE,
    "Audience": AUDIENCE,
    "ServiceType": SERVICE_TYPE,
    "Manager": MANAGER,
    "Service": SERVICE,
    "Managers": MANAGERS,
    "ChannelState": CHANNEL_STATE,
    "Contact": CONTACT,
    "Verification": VERIFICATION,
    "RecipientsPlan": RECIPIENTS_PLAN,
    "ContactExport": CONTACT_EXPORT,
    "User": USER,
    "Partnership": PARTNERSHIP,
    "Partnerships": PARTNERSHIPS,
    "AlertShares": ALERT_SHARES,
}
