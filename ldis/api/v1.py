"""The routes of API v1 (see CONTRACT.md). Each one: who may call it, parse, call a use case."""

from __future__ import annotations

from typing import Any, TypeGuard

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from ldis.api.body import NUL_MESSAGE, json_body
from ldis.domain.errors import NotFound, ValidationFailed
from ldis.domain.roles import Role
from ldis.domain.validation import MAX_ID
from ldis.services import intake, public_reports, report_queries, signals, vocabulary
from ldis.web.access import api_roles, current_principal
from ldis.web.extensions import container
from ldis.web.ratelimits import rate_limited

bp = Blueprint("api_v1", __name__, url_prefix="/api/v1")


def created(body: dict[str, Any]) -> ResponseReturnValue:
    return jsonify(body), 201


def is_record_id(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID


@bp.before_request
def _refuse_what_the_database_cannot_hold() -> None:
    """An id beyond what the database can hold, or a NUL character (PostgreSQL text cannot
    hold one), names no record: 404 for the path, 422 for a query parameter; never an
    error from the database."""
    for value in (request.view_args or {}).values():
        if (isinstance(value, int) and not is_record_id(value)) or (
            isinstance(value, str) and "\x00" in value
        ):
            raise NotFound("There is nothing at this address.")
    for name, value in request.args.items(multi=True):
        if "\x00" in name or "\x00" in value:
            raise ValidationFailed({name.replace("\x00", ""): NUL_MESSAGE})


@bp.post("/reports")
@rate_limited("intake")
@api_roles(Role.reporter, Role.panel, Role.admin)
def file_report() -> ResponseReturnValue:
    c = container()
    view, is_new = intake.file_report(c.db, current_principal(), json_body(), queue=c.queue)
    # A resend of a report already filed: 200 with the original, so a retry is harmless.
    return jsonify(view), 201 if is_new else 200


@bp.get("/reports/<int:report_id>")
@api_roles(Role.reporter, Role.panel, Role.admin)
def get_report(report_id: int) -> ResponseReturnValue:
    return jsonify(intake.get_report(container().db, current_principal(), report_id))


@bp.get("/reports")
@api_roles(Role.reporter, Role.panel, Role.admin)
def list_reports() -> ResponseReturnValue:
    filters = report_queries.parse_filter(request.args.to_dict())
    return jsonify(report_queries.list_reports(container().db, current_principal(), filters))


@bp.post("/reports/<int:report_id>/updates")
@api_roles(Role.reporter, Role.panel, Role.admin)
def add_report_update(report_id: int) -> ResponseReturnValue:
    return created(intake.add_update(container().db, current_principal(), report_id, json_body()))


@bp.post("/reports/<int:report_id>/verification")
@api_roles(Role.panel)
def verify_public_report(report_id: int) -> ResponseReturnValue:
    """Mark a public report verified (or not): docs/public-reports.md."""
    return jsonify(
        public_reports.set_verified(container().db, current_principal(), report_id, json_body())
    )


@bp.post("/callouts")
@rate_limited("intake")
@api_roles(Role.reporter, Role.admin)
def file_callouts() -> ResponseReturnValue:
    """A batch: a JSON array of call-outs, or {"source": {...}, "callouts": [...]}."""
    body = json_body()
    if isinstance(body, dict):
        shared_source = body.get("source")
        items = body.get("callouts")
        if not isinstance(items, list):
            raise ValidationFailed({"callouts": "give the call-outs as a JSON array"})
        if shared_source is not None:
            items = [
                {"source": shared_source, **item} if isinstance(item, dict) else item
                for item in items
            ]
    elif isinstance(body, list):
        items = body
    else:
        raise ValidationFailed({"body": "send a JSON array of call-outs"})
    c = container()
    result = intake.file_batch(c.db, current_principal(), items, kind="callout", queue=c.queue)
    return created(result.view())


@bp.post("/substances")
@api_roles(Role.admin)
def add_substance() -> ResponseReturnValue:
    return created(vocabulary.add_entry(container().db, current_principal(), json_body()))


@bp.get("/signals")
@api_roles(Role.panel, Role.admin)
def list_signals() -> ResponseReturnValue:
    status = request.args.get("status") or None
    return jsonify(signals.list_signals(container().db, current_principal(), status))


@bp.get("/signals/<int:signal_id>")
@api_roles(Role.panel, Role.admin)
def get_signal(signal_id: int) -> ResponseReturnValue:
    return jsonify(signals.get_signal(container().db, current_principal(), signal_id))


@bp.post("/signals/<int:signal_id>/status")
@api_roles(Role.panel)
def change_signal_status(signal_id: int) -> ResponseReturnValue:
    body = json_body()
    if not isinstance(body, dict) or not isinstance(body.get("status"), str):
        raise ValidationFailed({"status": "give the new status"})
    reason = body.get("reason")
    return jsonify(
        signals.change_status(
            container().db,
            current_principal(),
            signal_id,
            body["status"],
            reason if isinstance(reason, str) else None,
        )
    )


@bp.post("/signals/<int:signal_id>/merge")
@api_roles(Role.panel)
def merge_signal(signal_id: int) -> ResponseReturnValue:
    body = json_body()
    into = body.get("into") if isinstance(body, dict) else None
    if not is_record_id(into):
        raise ValidationFailed({"into": "give the id of the signal to merge into"})
    return jsonify(signals.merge(container().db, current_principal(), signal_id, into))


@bp.post("/signals/<int:signal_id>/split")
@api_roles(Role.panel)
def split_signal(signal_id: int) -> ResponseReturnValue:
    body = json_body()
    ids = body.get("report_ids") if isinstance(body, dict) else None
    if not isinstance(ids, list) or not all(is_record_id(i) for i in ids):
        raise ValidationFailed({"report_ids": "give a list of report ids"})
    return created(signals.split(container().db, current_principal(), signal_id, ids))
