"""The OpenAPI document's routes for reports, call-outs, substances, signals, the panel's
grades and decisions, and alerts (see `openapi_paths` for what each field means)."""

from __future__ import annotations

from ldis.api import openapi_inputs as i
from ldis.api import openapi_schemas as s
from ldis.api.openapi_paths import (
    ADMIN,
    AREA_CODE,
    BOOL_FLAG,
    FILERS,
    PANEL,
    PANEL_ADMIN,
    Op,
    Param,
)
from ldis.api.openapi_schemas import array, ref
from ldis.domain.reports import REPORT_KINDS
from ldis.services.signals import STATUSES

ALERT = "/api/v1/alerts/{alert_id}"

CASE_OPERATIONS: tuple[Op, ...] = (
    Op("get", "/api/v1/openapi.json", "This document", (), s.OBJ),
    # --- reports, call-outs, substances, signals
    Op(
        "post",
        "/api/v1/reports",
        "File a report (a resend of the same report: 200 with the original)",
        FILERS,
        ref("Report"),
        ok=201,
        also=200,
        body={
            "oneOf": [
                ref(name) for name in ("DrugCheckingReport", "NearMissReport", "CalloutReport")
            ]
        },
    ),
    Op(
        "get",
        "/api/v1/reports",
        "Reports, newest first (reporters: their own)",
        FILERS,
        ref("ReportList"),
        query=(
            Param("kind", {"type": "string", "enum": [*sorted(REPORT_KINDS), "public"]}),
            Param("area", AREA_CODE, "the area or any place inside it"),
            Param("substance", {"type": "string", "maxLength": 200}),
            Param("since", {"type": "string", "format": "date"}, "a date or a date-time"),
            Param("until", {"type": "string", "format": "date"}, "a date (the whole day)"),
            Param("red_list", BOOL_FLAG),
            Param("limit", {"type": "integer", "minimum": 1, "maximum": 500}),
            Param("offset", {"type": "integer", "minimum": 0, "maximum": 1_000_000}),
        ),
    ),
    Op("get", "/api/v1/reports/{report_id}", "One report", FILERS, ref("Report")),
    Op(
        "post",
        "/api/v1/reports/{report_id}/updates",
        "Add what was learned later (the reporter who filed it, or an admin)",
        FILERS,
        ref("Report"),
        ok=201,
        body=i.REPORT_UPDATE_INPUT,
    ),
    Op(
        "post",
        "/api/v1/reports/{report_id}/verification",
        "Mark a public report verified or unverified (409 for a staff report)",
        ("panel",),
        ref("Report"),
        body=i.REPORT_VERIFICATION_INPUT,
    ),
    Op(
        "post",
        "/api/v1/callouts",
        "A batch of ambulance call-outs",
        ("reporter", "admin"),
        ref("BatchResult"),
        ok=201,
        body=i.callout_batch(ref("CalloutItem")),
    ),
    Op(
        "post",
        "/api/v1/substances",
        "Extend the substances vocabulary",
        ADMIN,
        ref("SubstanceEntry"),
        ok=201,
        body=i.SUBSTANCE_INPUT,
    ),
    Op(
        "get",
        "/api/v1/signals",
        "The panel's queue: most severe first",
        PANEL_ADMIN,
        array(ref("Signal")),
        query=(Param("status", {"type": "string", "enum": list(STATUSES)}),),
    ),
    Op("get", "/api/v1/signals/{signal_id}", "One signal", PANEL_ADMIN, ref("Signal")),
    Op(
        "post",
        "/api/v1/signals/{signal_id}/status",
        "Move a signal (dismissing needs a reason)",
        PANEL,
        ref("Signal"),
        body=i.SIGNAL_STATUS_INPUT,
    ),
    Op(
        "post",
        "/api/v1/signals/{signal_id}/merge",
        "Move every report of this signal into another",
        PANEL,
        ref("Signal"),
        body=i.SIGNAL_MERGE_INPUT,
    ),
    Op(
        "post",
        "/api/v1/signals/{signal_id}/split",
        "Take some reports out into a new signal",
        PANEL,
        ref("Signal"),
        ok=201,
        body=i.SIGNAL_SPLIT_INPUT,
    ),
    # --- the panel's grades and decisions
    *(
        op
        for subject, param in (("signals", "signal_id"), ("reports", "report_id"))
        for op in (
            Op(
                "post",
                f"/api/v1/{subject}/{{{param}}}/grades",
                "Grade the case (replaces your earlier grade)",
                PANEL,
                ref("GradeView"),
                ok=201,
                body=ref("GradeInput"),
            ),
            Op(
                "get",
                f"/api/v1/{subject}/{{{param}}}/panel",
                "Grades side by side, the decision and when the response is due",
                PANEL_ADMIN,
                ref("CaseView"),
            ),
            Op(
                "post",
                f"/api/v1/{subject}/{{{param}}}/decision",
                "Record the panel's decision on a graded case",
                PANEL,
                ref("DecisionView"),
                ok=201,
                body=ref("DecisionInput"),
            ),
        )
    ),
    # --- alerts
    Op(
        "post",
        "/api/v1/alerts",
        "Draft an alert",
        PANEL,
        ref("Alert"),
        ok=201,
        body=ref("AlertDraft"),
    ),
    Op(
        "get",
        "/api/v1/alerts",
        "Alerts in one list",
        PANEL_ADMIN,
        array(ref("AlertSummary")),
        query=(Param("state", {"type": "string", "enum": s.ALERT_LIST_STATES}),),
    ),
    Op("get", ALERT, "One alert with its versions", PANEL_ADMIN, ref("Alert")),
    Op(
        "put",
        ALERT,
        "Edit the current version (approvals so far are void)",
        PANEL,
        ref("Alert"),
        body=ref("AlertDraft"),
    ),
    Op("post", f"{ALERT}/submit", "Submit for approval (an author)", PANEL, ref("Alert")),
    Op(
        "post",
        f"{ALERT}/approve",
        "Approve (not an author; once each); the last approval needed sends it",
        PANEL,
        ref("Alert"),
        body=i.APPROVE_INPUT,
    ),
    Op("post", f"{ALERT}/reject", "Reject", PANEL, ref("Alert"), body=i.REASON_INPUT),
    Op(
        "post",
        f"{ALERT}/revise",
        "A new version as a draft (without a body: a copy of the live one)",
        PANEL,
        ref("Alert"),
        ok=201,
        body=ref("AlertDraft"),
        body_required=False,
    ),
    Op(
        "post",
        f"{ALERT}/withdraw",
        "Ask to withdraw (approved like a send)",
        PANEL,
        ref("Alert"),
        body=i.WITHDRAW_INPUT,
    ),
    Op(
        "get",
        f"{ALERT}/preview",
        "Rendered messages and audience size of a version",
        PANEL_ADMIN,
        ref("AlertPreview"),
        query=(Param("version", {"type": "integer", "minimum": 1}),),
    ),
    Op(
        "get",
        f"{ALERT}/history",
        "Every audit event, oldest first",
        PANEL_ADMIN,
        array(ref("AlertEvent")),
    ),
    Op(
        "get",
        f"{ALERT}/acknowledgements",
        "Who acknowledged which version, when",
        PANEL_ADMIN,
        array(ref("AlertAcknowledgement")),
    ),
    Op(
        "get",
        f"{ALERT}/deliveries",
        "Delivery progress per version",
        PANEL_ADMIN,
        ref("AlertProgress"),
    ),
    Op(
        "post",
        f"{ALERT}/resend-failed",
        "Try failed deliveries again",
        PANEL,
        ref("Resent"),
    ),
)
