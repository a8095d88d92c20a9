"""API v1 routes: the panel grades a case (a signal or a report), reads the grades side by
side and records its decision (see docs/panel.md)."""

from __future__ import annotations

from flask import jsonify
from flask.typing import ResponseReturnValue

from ldis.api.body import json_body
from ldis.api.v1 import bp, created
from ldis.domain.roles import Role
from ldis.services import panel_cases
from ldis.web.access import api_roles, current_principal
from ldis.web.extensions import container

__all__ = ["bp"]


def _grade(subject: str, case_id: int) -> ResponseReturnValue:
    return created(
        panel_cases.grade_case(container().db, current_principal(), subject, case_id, json_body())
    )


def _view(subject: str, case_id: int) -> ResponseReturnValue:
    return jsonify(panel_cases.case_view(container().db, current_principal(), subject, case_id))


def _decide(subject: str, case_id: int) -> ResponseReturnValue:
    return created(
        panel_cases.decide_case(container().db, current_principal(), subject, case_id, json_body())
    )


@bp.post("/signals/<int:signal_id>/grades")
@api_roles(Role.panel)
def grade_signal(signal_id: int) -> ResponseReturnValue:
    return _grade("signal", signal_id)


@bp.get("/signals/<int:signal_id>/panel")
@api_roles(Role.panel, Role.admin)
def signal_panel(signal_id: int) -> ResponseReturnValue:
    return _view("signal", signal_id)


@bp.post("/signals/<int:signal_id>/decision")
@api_roles(Role.panel)
def decide_signal(signal_id: int) -> ResponseReturnValue:
    return _decide("signal", signal_id)


@bp.post("/reports/<int:report_id>/grades")
@api_roles(Role.panel)
def grade_report(report_id: int) -> ResponseReturnValue:
    return _grade("report", report_id)


@bp.get("/reports/<int:report_id>/panel")
@api_roles(Role.panel, Role.admin)
def report_panel(report_id: int) -> ResponseReturnValue:
    return _view("report", report_id)


@bp.post("/reports/<int:report_id>/decision")
@api_roles(Role.panel)
def decide_report(report_id: int) -> ResponseReturnValue:
    return _decide("report", report_id)
