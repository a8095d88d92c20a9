"""Example request bodies in the OpenAPI document: what a client would send, as in
docs/api.md (the same York areas, service types and cases). Schemathesis mixes them into the
cases it generates, so its requests also reach the paths where something is created."""

from __future__ import annotations

from typing import Any

GRADE = {
    "local_relevance": "high",
    "internet_spread": "possible",
    "source": "direct",
    "plausibility": "high",
    "confirmation": "presumptive",
    "severity": 5,
    "likelihood": 4,
    "recommendation": "formal_alert",
    "reasons": "Two doses of naloxone needed.",
}
DECISION = {"decision": "formal_alert", "reasons": "Strong opioid circulating in York."}
DRAFT = {
    "title": "Nitazenes in fake oxycodone",
    "priority": "urgent",
    "areas": ["YORK-C"],
    "report_id": 1,
    "fields": {
        "summary": "Green OC 80 tablets contain metonitazene.",
        "advice": "Carry extra naloxone: more than one dose may be needed.",
    },
}
NEAR_MISS = {
    "kind": "near_miss",
    "area": "YORK-C",
    "occurred_at": "2026-01-21T23:40:00Z",
    "suspected_substances": ["heroin"],
    "naloxone_doses": 2,
    "outcome": "hospital",
    "source": {"type": "outreach", "name": "York outreach"},
}
CALLOUT = {
    "occurred_at": "2026-01-01T02:10:00Z",
    "location": {"lat": 53.96, "lon": -1.08},
    "naloxone_given": True,
    "source": {"type": "ambulance", "name": "YAS", "reference": "INC-1"},
}
BOUNDARY = {
    "type": "Polygon",
    "coordinates": [
        [[-1.10, 53.95], [-1.06, 53.95], [-1.06, 53.97], [-1.10, 53.97], [-1.10, 53.95]]
    ],
}
CSV_FILE = (
    "service_ref,service_name,service_type,service_areas,alert_levels,alert_kinds,"
    "contact_name,contact_role,email,phone,channels,quiet_hours\r\n"
    "NSP-YORK,York NSP,pharmacy,YORK-C,professional,,Duty worker,primary,"
    "duty@example.org,07700 900123,sms;email,22:00-07:00\r\n"
)
ALERT = "/api/v1/alerts/{alert_id}"
CONTACT = "/api/v1/contacts/{contact_id}"

EXAMPLES: dict[tuple[str, str], Any] = {
    ("post", "/api/v1/reports"): NEAR_MISS,
    ("post", "/api/v1/reports/{report_id}/updates"): {
        "text": "Confirmed by the lab: metonitazene."
    },
    ("post", "/api/v1/reports/{report_id}/verification"): {"verified": True},
    ("post", "/api/v1/callouts"): {
        "source": {"type": "ambulance", "name": "YAS"},
        "callouts": [CALLOUT],
    },
    ("post", "/api/v1/substances"): {
        "name": "N-pyrrolidino protonitazene",
        "class": "nitazene",
        "red_list": True,
        "synonyms": ["protonitazepyne"],
    },
    ("post", "/api/v1/signals/{signal_id}/status"): {"status": "monitoring"},
    ("post", "/api/v1/signals/{signal_id}/merge"): {"into": 2},
    ("post", "/api/v1/signals/{signal_id}/split"): {"report_ids": [2]},
    ("post", "/api/v1/signals/{signal_id}/grades"): GRADE,
    ("post", "/api/v1/reports/{report_id}/grades"): GRADE,
    ("post", "/api/v1/signals/{signal_id}/decision"): DECISION,
    ("post", "/api/v1/reports/{report_id}/decision"): DECISION,
    ("post", "/api/v1/alerts"): DRAFT,
    ("put", ALERT): DRAFT,
    ("post", f"{ALERT}/approve"): {"otp": "123456", "revision": 1},
    ("post", f"{ALERT}/reject"): {"reason": "The advice needs the local service's number."},
    ("post", f"{ALERT}/revise"): DRAFT,
    ("post", f"{ALERT}/withdraw"): {"reason": "The lab retracted the result.", "otp": "123456"},
    ("post", "/api/v1/areas"): {"code": "YORK-N", "name": "York North", "parent": "NYORKS"},
    ("patch", "/api/v1/areas/{code}"): {"name": "York Centre"},
    ("put", "/api/v1/areas/{code}/boundary"): BOUNDARY,
    ("post", "/api/v1/areas/{code}/neighbours"): {"code": "YORK-W"},
    ("post", "/api/v1/audience/preview"): {"areas": ["YORK-C"], "service_types": ["pharmacy"]},
    ("post", "/api/v1/service-types"): {"code": "drug_checking_lab", "label": "Drug-checking lab"},
    ("patch", "/api/v1/service-types/{code}"): {"label": "Community pharmacy"},
    ("post", "/api/v1/services"): {
        "name": "York Central pharmacy",
        "type": "pharmacy",
        "areas": ["YORK-C"],
        "ref": "PHARM-YC",
    },
    ("patch", "/api/v1/services/{service_id}"): {"alert_levels": ["professional"]},
    ("post", "/api/v1/services/{service_id}/managers"): {"email": "manager@example.org"},
    ("post", "/api/v1/services/{service_id}/contacts"): {
        "name": "Pharmacist on duty",
        "role": "backup",
        "email": "pharmacy@example.org",
        "phone": "07700 900456",
        "channels": ["sms", "email"],
        "quiet_hours": {"start": "22:00", "end": "07:00"},
    },
    ("patch", CONTACT): {"quiet_hours": None, "role": "primary"},
    ("post", f"{CONTACT}/verification/{{channel}}/confirm"): {"code": "123456"},
    ("patch", "/api/v1/users/{user_id}"): {"service_id": 1},
    ("post", "/api/v1/partnerships"): {
        "code": "durham-darlington",
        "name": "Durham and Darlington",
    },
    ("post", "/api/v1/alerts/{alert_id}/shares"): {"partnership": "durham-darlington"},
    ("post", "/api/v1/recipients/import"): CSV_FILE,
}
