"""Pages for the CSV import and export of services and contacts (admins): upload a file,
read the dry run (bad rows and what would change), then apply exactly the file previewed.

The previewed file is kept in the instance folder under its SHA-256 until it is applied
(or for a day), and the apply form carries that hash and the plan's fingerprint: the apply
acts on those very bytes, and refuses if the records changed after the preview."""

from __future__ import annotations

import hashlib
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError
from flask_wtf.file import FileField
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import RequestEntityTooLarge
from wtforms import HiddenField

from ldis.domain.errors import Conflict, ValidationFailed
from ldis.domain.principal import Principal
from ldis.domain.roles import Role
from ldis.services import recipients_bulk
from ldis.web.access import current_web_principal, web_roles
from ldis.web.extensions import container
from ldis.web.forms import WebForm

bp = Blueprint("bulk", __name__)
STAGED_FOR_SECONDS = 24 * 3600
SHA256 = re.compile(r"^[0-9a-f]{64}$")
FILE_PROBLEMS = {"file": "The file", "header": "The header row"}


class UploadForm(WebForm):
    csv_file = FileField("CSV file")


class ApplyForm(WebForm):
    file = HiddenField()
    plan = HiddenField()


def _actor() -> Principal:
    principal = current_web_principal()
    assert principal is not None, "web_roles lets only signed-in people through"
    return principal


def _staging() -> Path:
    folder = container().settings.instance_path / "recipient-imports"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _stage(data: bytes) -> str:
    """Keep the previewed file under its hash; forget files previewed and never applied."""
    folder = _staging()
    cutoff = time.time() - STAGED_FOR_SECONDS
    for old in folder.glob("*.csv"):
        if old.stat().st_mtime < cutoff:
            old.unlink(missing_ok=True)
    digest = hashlib.sha256(data).hexdigest()
    (folder / f"{digest}.csv").write_bytes(data)
    return digest


def _staged(digest: str) -> bytes | None:
    if not SHA256.match(digest):
        return None
    path = _staging() / f"{digest}.csv"
    data = path.read_bytes() if path.exists() else None
    return data if data is not None and hashlib.sha256(data).hexdigest() == digest else None


def _limit() -> str:
    size = container().settings.max_body_bytes
    return f"{size / 1_000_000:g} MB" if size >= 1_000_000 else f"{size // 1000} KB"


def _upload_page(
    form: UploadForm, error: str | None = None, code: int = 200
) -> ResponseReturnValue:
    errors = {form.csv_file.id: error} if error else {}
    return render_template("bulk/upload.html", form=form, errors=errors, limit=_limit()), code


def change_details(change: dict[str, Any]) -> list[str]:
    """A change's fields as short phrases; personal data only as "changed"."""
    phrases = []
    for name, value in (change.get("fields") or {}).items():
        label = name.replace("_", " ")
        if isinstance(value, dict):
            old = ", ".join(value["old"]) if isinstance(value["old"], list) else value["old"]
            new = ", ".join(value["new"]) if isinstance(value["new"], list) else value["new"]
            phrases.append(f"{label}: {old or 'none'} → {new or 'none'}")
        elif isinstance(value, list):
            phrases.append(f"{label}: {', '.join(value) or 'all'}")
        else:
            phrases.append(f"{label}: {value}")
    if change.get("awaiting_verification"):
        waiting = ", ".join(change["awaiting_verification"])
        phrases.append(f"awaiting verification: {waiting}")
    return phrases


def _preview(
    view: dict[str, Any], *, staged: str | None, conflict: str | None = None, code: int = 200
) -> ResponseReturnValue:
    form = ApplyForm(formdata=None, file=staged or "", plan=view["plan"])
    writes = any(c["action"] in ("create", "update") for c in view["changes"])
    return render_template(
        "bulk/preview.html",
        view=view,
        form=form,
        can_apply=bool(staged) and writes and not view["errors"],
        writes=writes,
        conflict=conflict,
        details=change_details,
    ), code


@bp.get("/recipients/import")
@web_roles(Role.admin)
def upload() -> ResponseReturnValue:
    return _upload_page(UploadForm(formdata=None))


@bp.post("/recipients/import")
@web_roles(Role.admin)
def preview() -> ResponseReturnValue:
    form = UploadForm()
    storage = form.csv_file.data
    if not isinstance(storage, FileStorage) or not storage.filename:
        return _upload_page(form, "Select a CSV file to upload", 422)
    data = storage.read()
    try:
        view = recipients_bulk.plan_import(container().db, _actor(), data)
    except ValidationFailed as exc:
        name, message = next(iter(exc.fields.items()))
        return _upload_page(form, f"{FILE_PROBLEMS.get(name, name)} {message}", 422)
    # Kept only when there is something to apply: the file holds staff contact details.
    writes = any(c["action"] in ("create", "update") for c in view["changes"])
    return _preview(view, staged=_stage(data) if writes and not view["errors"] else None)


@bp.post("/recipients/import/apply")
@web_roles(Role.admin)
def apply() -> ResponseReturnValue:
    form = ApplyForm()
    digest = form.file.data or ""
    data = _staged(digest)
    if data is None:
        return render_template(
            "error.html",
            title="This preview is no longer available",
            message="Nothing was changed. Upload the file again to see what it would change.",
        ), 410
    c = container()
    try:
        view = recipients_bulk.apply_import(
            c.db, _actor(), data, expected_plan=form.plan.data or "", sending=c.sending()
        )
    except Conflict as exc:
        fresh = recipients_bulk.plan_import(c.db, _actor(), data)
        return _preview(fresh, staged=digest, conflict=exc.message, code=409)
    if view["errors"]:
        return _preview(view, staged=None, code=422)
    (_staging() / f"{digest}.csv").unlink(missing_ok=True)
    s, ct = view["summary"]["services"], view["summary"]["contacts"]
    flash(
        f"Import applied: {s['create']} services created, {s['update']} updated; "
        f"{ct['create']} contacts created, {ct['update']} updated. "
        f"{view['summary']['awaiting_verification']} channels are awaiting verification: "
        f"{view.get('verification_sent', 0)} codes or links have been sent.",
        "applied",
    )
    return redirect(url_for("bulk.upload"))


def csv_download(data: str | bytes) -> Response:
    """The recipients export as a dated attachment (used by this page and the API)."""
    name = f"ldis-recipients-{datetime.now(UTC):%Y-%m-%d}.csv"
    return Response(
        data,
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",  # staff contact details: no copies in caches
        },
    )


@bp.get("/recipients/export.csv")
@web_roles(Role.admin)
def export() -> ResponseReturnValue:
    return csv_download(recipients_bulk.export_csv(container().db, _actor()))


@bp.errorhandler(CSRFError)
def _expired(_exc: CSRFError) -> ResponseReturnValue:
    return render_template(
        "error.html",
        title="This form has expired",
        message="Nothing was changed. Go back, reload the page and upload the file again.",
    ), 400


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(_exc: RequestEntityTooLarge) -> ResponseReturnValue:
    return render_template(
        "error.html",
        title="The file is too large",
        message=f"Nothing was changed. A CSV file can be up to {_limit()}; split it into "
        "smaller files (whole services in each) and import them one at a time.",
    ), 413
