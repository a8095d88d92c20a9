"""Request bodies the routes read field by field rather than through a pydantic model, as
the OpenAPI document describes them (the models' own schemas are built in `openapi`)."""

from __future__ import annotations

from ldis.api.openapi_schemas import (
    BOOL,
    ID,
    INT,
    STR,
    STR_N,
    Schema,
    array,
    closed,
    nullable,
    obj,
    ref,
)
from ldis.services.intake import MAX_BATCH
from ldis.services.signals import STATUSES
from ldis.services.vocabulary import MAX_NAME

# Read field by field (other fields are ignored).
SUBSTANCE_INPUT = obj(
    {"name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME}, "class": STR},
    {"red_list": BOOL, "synonyms": array(STR)},
)
REPORT_UPDATE_INPUT = closed({"text": {"type": "string", "minLength": 1, "maxLength": 4000}})
REPORT_VERIFICATION_INPUT = closed({"verified": {"type": "boolean"}})
SIGNAL_STATUS_INPUT = closed(
    {"status": {"type": "string", "enum": list(STATUSES)}},
    {"reason": STR_N},
)
SIGNAL_MERGE_INPUT = closed({"into": ID})
SIGNAL_SPLIT_INPUT = closed({"report_ids": array(ID, minItems=1)})


def callout_batch(item: Schema) -> Schema:
    items = array(item, maxItems=MAX_BATCH)
    return {
        "oneOf": [
            items,
            closed({"callouts": items}, {"source": ref("Source")}),
        ]
    }


REASON_INPUT = obj({"reason": {"type": "string", "minLength": 1}})  # only `reason` is read
OTP: Schema = {
    "type": "string",
    "description": "a current code from your authenticator app, or a recovery code",
}
# A token alone cannot approve or withdraw: the body carries a second factor.
APPROVE_INPUT = obj(
    {"otp": OTP},
    {"revision": {**INT, "minimum": 1, "description": "the revision you read"}},
)
WITHDRAW_INPUT = obj({"reason": {"type": "string", "minLength": 1}, "otp": OTP})

GEOJSON = {
    "type": "object",
    "required": ["type"],
    "properties": {"type": STR},
    "description": "GeoJSON Polygon or MultiPolygon in WGS84 [lon, lat], bare, as a Feature "
    "or as a FeatureCollection of one Feature",
}

CODE_INPUT = {
    "type": "object",
    "required": ["code"],
    "properties": {"code": {"type": "string", "description": "the 6-digit code from the text"}},
}

PARTNERSHIP_NEW = closed(
    {
        "code": {"type": "string", "description": "2-40 lower-case letters, digits, hyphens"},
        "name": {"type": "string", "maxLength": 200},
    }
)
ALERT_SHARE = closed(
    {"partnership": {"type": "string", "description": "the code of the partnership to share with"}}
)
USER_CHANGE = closed(
    {},
    {"service_id": {**nullable(ID), "description": "the service the user files for; null unlinks"}},
)
