"""The public report form: anyone, no sign-in, no scripts (docs/public-reports.md).

Anti-spam without a third party: a hidden field people leave empty (a robot fills it), a
signed, time-stamped token in the form that must be at least LDIS_PUBLIC_FORM_MIN_SECONDS
old and is accepted once, CSRF as on every form, and LDIS_PUBLIC_REPORT_RATE posts per
client address. The address is used only as the rate-limit key (in Redis, expiring with
the window); nothing about the sender is stored with the report.
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from ldis.domain.errors import ValidationFailed
from ldis.domain.public_reports import EFFECT_LABELS, WHEN_LABELS, When, when_moment
from ldis.services import public_reports, public_texts
from ldis.web.access import public
from ldis.web.extensions import container
from ldis.web.ratelimits import rate_limited

bp = Blueprint("public_reports", __name__)
log = logging.getLogger(__name__)

FORM_PURPOSE = "ldis public report form"
TOKEN_MAX_AGE = 2 * 60 * 60  # a form left open longer is shown again with a new token
HONEYPOT = "website"
APPEARANCE = ("colour", "shape", "markings", "packaging")
# The form's field ids for the use case's dotted paths.
FIELD_IDS = {f"appearance.{name}": name for name in APPEARANCE}


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(container().settings.secret(), salt=FORM_PURPOSE)


def _new_token() -> str:
    return str(_serializer().dumps(secrets.token_urlsafe(18)))


def _page(values: dict[str, Any], errors: dict[str, str], status: int = 200) -> ResponseReturnValue:
    c = container()
    summary = [(field, message) for field, message in errors.items()]
    return (
        render_template(
            "public/report.html",
            values=values,
            errors=errors,
            summary=summary,
            areas=public_reports.area_choices(c.db),
            effects=EFFECT_LABELS,
            whens=WHEN_LABELS,
            intro=public_texts.read(c.db)["form_intro"],
            token=_new_token() if "token" not in values else values["token"],
            honeypot=HONEYPOT,
        ),
        status,
    )


@bp.get("/report")
@public
def form() -> ResponseReturnValue:
    return _page({}, {})


def _body(form: Any) -> dict[str, Any]:
    when = form.get("when", "")
    occurred = when_moment(When(when), datetime.now(UTC)) if when in When.__members__ else None
    appearance = {name: (form.get(name) or "").strip() or None for name in APPEARANCE}
    return {
        "area": form.get("area") or None,
        "occurred_at": occurred.isoformat() if occurred else None,
        "sold_as": (form.get("sold_as") or "").strip() or None,
        "appearance": appearance,
        "effects": [e for e in form.getlist("effects") if e],
        "what_happened": (form.get("what_happened") or "").strip(),
    }


def _missing(form: Any, body: dict[str, Any]) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not form.get("area"):
        errors["area"] = "Choose roughly where, or choose 'Not sure'"
    elif form.get("area") == "-":
        body["area"] = None
    if body["occurred_at"] is None:
        errors["when"] = "Choose when it happened"
    said = [
        body["sold_as"],
        *body["appearance"].values(),
        *body["effects"],
        body["what_happened"],
    ]
    if not any(said):
        errors["sold_as"] = (
            "Tell us at least what it was sold as, what it looked like or what happened"
        )
    return errors


@bp.post("/report")
@rate_limited("public")
@public
def send() -> ResponseReturnValue:
    c = container()
    form = request.form
    values: dict[str, Any] = {
        k: form.get(k, "") for k in form if k not in ("effects", "csrf_token")
    }
    values["effects"] = form.getlist("effects")
    if form.get(HONEYPOT):
        # A robot filled the field people cannot see: look as if it worked, keep nothing.
        log.info("public report refused: hidden field filled")
        return redirect(url_for("public_reports.thanks"))
    try:
        nonce, signed_at = _serializer().loads(
            form.get("token", ""), max_age=TOKEN_MAX_AGE, return_timestamp=True
        )
    except SignatureExpired:
        values.pop("token", None)
        return _page(
            values,
            {"form": "This page was open a long time. Check your answers and send it again."},
            400,
        )
    except BadSignature:
        values.pop("token", None)
        return _page(
            values,
            {"form": "Something went wrong with this page. Check your answers and send it again."},
            400,
        )
    age = (datetime.now(UTC) - signed_at.astimezone(UTC)).total_seconds()
    if age < c.settings.public_form_min_seconds:
        log.info("public report refused: form sent %.1f s after it was shown", age)
        return _page(values, {"form": "Please check your answers, then send the form again."}, 400)
    body = _body(form)
    errors = _missing(form, body)
    if not errors:
        try:
            report = public_reports.validate(body, origin="public_web", reference=str(nonce))
        except ValidationFailed as exc:
            errors = {FIELD_IDS.get(k, k): _plain(v) for k, v in exc.fields.items()}
            if "occurred_at" in errors:
                errors["when"] = errors.pop("occurred_at")
    if errors:
        return _page(values, errors, 400)
    if not public_reports.consume_form_token(c.db, str(nonce)):
        return redirect(url_for("public_reports.thanks"))  # sent twice: the first one counts
    public_reports.file_public_report(c.db, report)
    return redirect(url_for("public_reports.thanks"))


def _plain(message: str) -> str:
    """The use case's wording, made plainer for the public page."""
    message = message.replace("reports are about drugs, not people: ", "Please ")
    if message.startswith("String should have at most"):
        return "This is too long. Please make it shorter."
    return message[:1].upper() + message[1:]


@bp.get("/report/thanks")
@public
def thanks() -> ResponseReturnValue:
    c = container()
    return render_template("public/report_thanks.html", text=public_texts.read(c.db)["form_thanks"])
