"""Pages: the audience preview. Choose areas, service types, level and kind; see exactly which
services, contacts and channels an alert would reach, and which services it would miss and
why. A GET form (nothing changes), so a preview is a link the panel can share. The result is
drawn by the `audience_preview` macro, which the alert pages reuse."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request
from flask.typing import ResponseReturnValue
from wtforms import BooleanField, SelectField, SelectMultipleField

from ldis.domain.alerts import ALERT_KIND_LABELS, AlertLevel
from ldis.domain.errors import ValidationFailed
from ldis.domain.principal import Principal
from ldis.domain.roles import Role
from ldis.services import audience
from ldis.web.access import current_web_principal, web_roles
from ldis.web.extensions import container
from ldis.web.forms import WebForm, friendly, register_page_errors

bp = Blueprint("audience", __name__)
register_page_errors(bp)

# Services listed in full on the page; the totals always count all of them.
SERVICES_SHOWN = 200
LEVELS = {
    AlertLevel.professional.value: "Professional (frontline services)",
    AlertLevel.public.value: "Public",
}
LABELS = {
    "areas": "Areas",
    "service_types": "Service types",
    "level": "Level",
    "kind": "Kind of alert",
    "include_neighbours": "Include neighbouring areas",
}


class AudienceForm(WebForm):
    """GET: no CSRF token needed, nothing changes. Choices are checked by the use case."""

    areas = SelectMultipleField("Areas", validate_choice=False)
    service_types = SelectMultipleField("Service types", validate_choice=False)
    level = SelectField("Level", choices=LEVELS, default="professional", validate_choice=False)
    kind = SelectField(
        "Kind of alert",
        choices={k.value: label for k, label in ALERT_KIND_LABELS.items()},
        default="drug_alert",
        validate_choice=False,
    )
    include_neighbours = BooleanField("Include neighbouring areas")


def _actor() -> Principal:
    principal = current_web_principal()
    assert principal is not None, "web_roles lets only signed-in people through"
    return principal


def page_errors(fields: dict[str, str]) -> dict[str, str]:
    """The use case's `areas.2`-style paths as one message per form field."""
    errors: dict[str, str] = {}
    for path, message in fields.items():
        name = path.split(".", 1)[0]
        if name == "areas" and message.startswith("List should have at least"):
            message = "Select at least one area"
        elif name in ("areas", "service_types") and message.startswith("unknown "):
            message = f"{LABELS[name]}: {message.split(';')[0]}; choose from the list"
        else:
            choose = name in ("areas", "level", "kind")
            message = friendly(LABELS.get(name, name), message, choose=choose)
        errors.setdefault(name, message)
    # In the order the form shows them, so the summary reads top to bottom.
    order = list(LABELS)
    return dict(
        sorted(errors.items(), key=lambda i: order.index(i[0]) if i[0] in order else len(order))
    )


@bp.get("/audience")
@web_roles(Role.panel, Role.admin)
def index() -> ResponseReturnValue:
    actor = _actor()
    choices = audience.form_choices(container().db, actor)
    form = AudienceForm(request.args, meta={"csrf": False})
    form.areas.choices = choices["areas"]
    form.service_types.choices = choices["service_types"]
    result: dict[str, Any] | None = None
    errors: dict[str, str] = {}
    asked = "level" in request.args  # the form was sent (an empty area list is an error)
    if asked:
        body = {
            "areas": form.areas.data or [],
            "service_types": form.service_types.data or [],
            "level": form.level.data,
            "kind": form.kind.data,
            "include_neighbours": bool(form.include_neighbours.data),
        }
        try:
            result = audience.preview(container().db, actor, body, limit=SERVICES_SHOWN)
        except ValidationFailed as exc:
            errors = page_errors(exc.fields)
    return render_template(
        "audience/index.html",
        form=form,
        errors=errors,
        result=result,
        type_labels=dict(choices["service_types"]),
        kind_labels={k.value: label for k, label in ALERT_KIND_LABELS.items()},
        level_labels=LEVELS,
    ), (422 if errors else 200)
