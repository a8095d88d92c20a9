"""API v1 routes: CSV import and export of services and contacts (see docs/api.md and
docs/recipients-csv.md)."""

from __future__ import annotations

from flask import jsonify, request
from flask.typing import ResponseReturnValue

from ldis.api.errors import UnsupportedMediaType
from ldis.api.v1 import bp
from ldis.domain.errors import ValidationFailed
from ldis.domain.roles import Role
from ldis.services import recipients_bulk
from ldis.web.access import api_roles, current_principal
from ldis.web.bulk import csv_download
from ldis.web.extensions import container

__all__ = ["bp"]
CSV_TYPES = frozenset({"text/csv", "application/csv"})
TRUE, FALSE = frozenset({"true", "1", "yes"}), frozenset({"false", "0", "no", ""})


def _apply_flag() -> bool:
    raw = request.args.get("apply", "false").strip().lower()
    if raw not in TRUE | FALSE:
        raise ValidationFailed({"apply": "must be true or false"})
    return raw in TRUE


@bp.post("/recipients/import")
@api_roles(Role.admin)
def import_recipients() -> ResponseReturnValue:
    """Dry run by default; `?apply=true` writes (422 with the same body when rows are bad)."""
    apply = _apply_flag()
    if request.mimetype not in CSV_TYPES:
        raise UnsupportedMediaType("Send the file as the body with 'Content-Type: text/csv'.")
    data = request.get_data(cache=False)  # over LDIS_MAX_BODY_BYTES: 413 before this returns
    c = container()
    if not apply:
        return jsonify(recipients_bulk.plan_import(c.db, current_principal(), data))
    expected = request.args.get("plan") or None
    view = recipients_bulk.apply_import(
        c.db, current_principal(), data, expected_plan=expected, sending=c.sending()
    )
    if view["errors"]:
        count = view["summary"]["bad_rows"]
        fields = {f"rows.{e['row']}.{e['field']}": e["message"] for e in view["errors"]}
        body = {
            "error": "validation_failed",
            "message": f"{count} row{'s need' if count != 1 else ' needs'} fixing; nothing was "
            "changed.",
            "fields": fields,
            **view,
        }
        return jsonify(body), 422
    return jsonify(view)


@bp.get("/recipients/export.csv")
@api_roles(Role.admin)
def export_recipients() -> ResponseReturnValue:
    return csv_download(recipients_bulk.export_csv(container().db, current_principal()))
