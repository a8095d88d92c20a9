"""The panel's page for one case (a signal or a report): the grades side by side with the
differences marked, your own grade, the decision and its history, and when the response is
due. Thin: the rules are in the use cases (`ldis.services.panel_cases`)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from wtforms import Field, RadioField, TextAreaField

from ldis.domain.errors import Conflict, NotFound, ValidationFailed
from ldis.domain.grading import (
    CRITERIA,
    DECISION_LABELS,
    RAG_LABELS,
    RESPONSE_HOURS,
    URGENT_RESPONSE_HOURS,
    Confirmation,
    Decision,
    Level,
    Likelihood,
    Severity,
    SourceKind,
    Spread,
)
from ldis.domain.principal import Principal
from ldis.domain.roles import Role
from ldis.services import panel_cases
from ldis.web import report_display
from ldis.web.access import current_web_principal, web_roles
from ldis.web.extensions import container
from ldis.web.forms import WebForm, friendly, register_page_errors
from ldis.web.signals import STATUS_TITLES, kind_title

bp = Blueprint("panel", __name__)
register_page_errors(bp)

Choices = dict[str, str]


def _scale(levels: type[Severity] | type[Likelihood]) -> Choices:
    return {str(int(v)): f"{int(v)}: {v.name.replace('_', ' ').capitalize()}" for v in levels}


LEVELS: Choices = {Level.low: "Low", Level.medium: "Medium", Level.high: "High"}
# Each criterion: its label and its values' labels, as the form and the table show them.
CRITERIA_LABELS: dict[str, str] = {
    "local_relevance": "Local relevance and likely spread",
    "internet_spread": "Could it spread via the internet?",
    "source": "Source of the information",
    "plausibility": "Plausibility",
    "confirmation": "Forensic confirmation",
    "severity": "Severity of harm",
    "likelihood": "Likelihood of harm",
}
VALUE_LABELS: dict[str, Choices] = {
    "local_relevance": LEVELS,
    "internet_spread": {Spread.no: "No", Spread.possible: "Possibly", Spread.likely: "Likely"},
    "source": {
        SourceKind.direct: "Direct: from people who use drugs, or a tested sample",
        SourceKind.second_hand: "Second-hand: heard from someone else",
    },
    "plausibility": LEVELS,
    "confirmation": {
        Confirmation.confirmed: "Confirmed by a laboratory",
        Confirmation.presumptive: "Presumptive: test strip, reagent or clinical picture",
        Confirmation.none: "Not confirmed",
    },
    "severity": {**_scale(Severity), "5": "5: Catastrophic (deaths or life-threatening harm)"},
    "likelihood": _scale(Likelihood),
    "recommendation": {d.value: label for d, label in DECISION_LABELS.items()},
}
HINTS = {
    "local_relevance": "How relevant is this to people in our area, and how far could it spread?",
    "severity": "The worst harm it could do to someone who takes it.",
    "likelihood": "How likely that harm is to happen.",
    "recommendation": "What you think the panel should do.",
}
RAG_CHOICES: Choices = {r.value: label for r, label in RAG_LABELS.items()}
DRAFTABLE = (Decision.formal_alert.value, Decision.information_only.value)
SUBJECT_TITLES = {"signal": "Signal", "report": "Report"}


def _radio(name: str) -> RadioField:
    return RadioField(CRITERIA_LABELS.get(name, name), choices=VALUE_LABELS[name])


class GradeForm(WebForm):
    local_relevance = _radio("local_relevance")
    internet_spread = _radio("internet_spread")
    source = _radio("source")
    plausibility = _radio("plausibility")
    confirmation = _radio("confirmation")
    severity = _radio("severity")
    likelihood = _radio("likelihood")
    recommendation = RadioField("Your recommendation", choices=VALUE_LABELS["recommendation"])
    reasons = TextAreaField("Your reasons")

    NUMBERS = ("severity", "likelihood")

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"reasons": self.reasons.data or ""}
        for name in (*CRITERIA, "recommendation"):
            value = self._fields[name].data
            if value:
                body[name] = int(value) if name in self.NUMBERS and value.isdigit() else value
        return body


class DecisionForm(WebForm):
    decision = RadioField("The panel's decision", choices=VALUE_LABELS["recommendation"])
    rag = RadioField("Risk rating", choices={"": "As the grades suggest", **RAG_CHOICES})
    decision_reasons = TextAreaField("Reasons for the decision")

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"reasons": self.decision_reasons.data or ""}
        if self.decision.data:
            body["decision"] = self.decision.data
        if self.rag.data:
            body["rag"] = self.rag.data
        return body


def _actor() -> Principal:
    principal = current_web_principal()
    assert principal is not None, "web_roles lets only signed-in people through"
    return principal


def _not_found(subject: str) -> ResponseReturnValue:
    title = SUBJECT_TITLES[subject]
    return render_template(
        "error.html",
        title=f"{title} not found",
        message=f"There is no {subject} with that number.",
    ), 404


def _errors(
    form: WebForm, fields: dict[str, str], rename: dict[str, str] | None = None
) -> list[tuple[str, str]]:
    """The use case's errors as (field id, sentence), in the order the form shows them."""
    found: dict[str, str] = {}
    loose: list[tuple[str, str]] = []
    for path, message in fields.items():
        name = (rename or {}).get(path, path)
        field: Field | None = form._fields.get(name)
        if field is None:
            loose.append(("", friendly("This form", message)))
            continue
        label = str(field.label.text)
        found.setdefault(field.id, friendly(label, message, choose=isinstance(field, RadioField)))
    order = [f.id for f in form if f.id in found]
    return [(fid, found[fid]) for fid in order] + loose


def _case_link(subject: str, case_id: int) -> str:
    if subject == "signal":
        return url_for("signals.show", signal_id=case_id)
    return url_for("reports.show", report_id=case_id)


def _own_grade(view: dict[str, Any], actor: Principal) -> dict[str, Any] | None:
    return next((g for g in view["grades"] if g["member"]["id"] == actor.user_id), None)


def _page(
    subject: str,
    case_id: int,
    *,
    grade_form: GradeForm | None = None,
    decision_form: DecisionForm | None = None,
    errors: list[tuple[str, str]] | None = None,
    conflict: str | None = None,
    code: int = 200,
) -> ResponseReturnValue:
    actor = _actor()
    try:
        view = panel_cases.case_view(container().db, actor, subject, case_id)
    except NotFound:
        return _not_found(subject)
    mine = _own_grade(view, actor)
    if grade_form is None:
        prefill = {k: (str(v) if v is not None else None) for k, v in (mine or {}).items()}
        grade_form = GradeForm(formdata=None, data=prefill if mine else None)
    decision_form = decision_form or DecisionForm(formdata=None)
    if not decision_form.rag.data:
        decision_form.rag.data = ""  # "as the grades suggest" is the choice made for you
    suggested = view["suggested_rag"]
    if suggested:
        decision_form.rag.choices = {
            "": f"As the grades suggest: {RAG_CHOICES[suggested]}",
            **RAG_CHOICES,
        }
    decision = view["decision"]
    draft_link = None
    if decision and decision["decision"] in DRAFTABLE:
        draft_link = f"/alerts/new?{subject}_id={case_id}"
    summary = view["summary"]
    return render_template(
        "panel/case.html",
        view=view,
        subject=subject,
        subject_title=SUBJECT_TITLES[subject],
        case_id=case_id,
        case_link=_case_link(subject, case_id),
        case_title=(
            kind_title(view["case"]["kind"])
            if subject == "signal"
            else report_display.kind_title(view["case"]["kind"])
        ),
        status_titles=STATUS_TITLES,
        criteria=[(name, CRITERIA_LABELS[name]) for name in CRITERIA],
        disagreements=set(summary["disagreements"]) if summary else set(),
        value_labels=VALUE_LABELS,
        rag_labels=RAG_CHOICES,
        hints=HINTS,
        mine=mine,
        may_grade=actor.has_any(Role.panel),
        grade_form=grade_form,
        decision_form=decision_form,
        errors=errors or [],
        error_map=dict(errors or []),
        conflict=conflict,
        draft_link=draft_link,
        response_hours=URGENT_RESPONSE_HOURS if view["urgent"] else RESPONSE_HOURS,
    ), code


def _grade(subject: str, case_id: int) -> ResponseReturnValue:
    form = GradeForm()
    try:
        result = panel_cases.grade_case(container().db, _actor(), subject, case_id, form.body())
    except NotFound:
        return _not_found(subject)
    except ValidationFailed as exc:
        return _page(subject, case_id, grade_form=form, errors=_errors(form, exc.fields), code=422)
    flash("Your grade was changed." if result["replaced"] else "Your grade was saved.", "changed")
    return redirect(url_for(f"panel.{subject}_case", case_id=case_id, _anchor="grades"))


def _decide(subject: str, case_id: int) -> ResponseReturnValue:
    form = DecisionForm()
    try:
        result = panel_cases.decide_case(container().db, _actor(), subject, case_id, form.body())
    except NotFound:
        return _not_found(subject)
    except ValidationFailed as exc:
        errors = _errors(form, exc.fields, {"reasons": "decision_reasons"})
        return _page(subject, case_id, decision_form=form, errors=errors, code=422)
    except Conflict as exc:
        return _page(subject, case_id, decision_form=form, conflict=str(exc), code=409)
    message = f"Decision recorded: {DECISION_LABELS[Decision(result['decision'])].lower()}."
    if subject == "signal" and result["case"]["status"] == "dismissed":
        message += " The signal is dismissed."
    flash(message, "changed")
    return redirect(url_for(f"panel.{subject}_case", case_id=case_id, _anchor="current-decision"))


@bp.get("/panel/signals/<int:case_id>")
@web_roles(Role.panel, Role.admin)
def signal_case(case_id: int) -> ResponseReturnValue:
    return _page("signal", case_id)


@bp.get("/panel/reports/<int:case_id>")
@web_roles(Role.panel, Role.admin)
def report_case(case_id: int) -> ResponseReturnValue:
    return _page("report", case_id)


@bp.post("/panel/signals/<int:case_id>/grade")
@web_roles(Role.panel)
def grade_signal(case_id: int) -> ResponseReturnValue:
    return _grade("signal", case_id)


@bp.post("/panel/reports/<int:case_id>/grade")
@web_roles(Role.panel)
def grade_report(case_id: int) -> ResponseReturnValue:
    return _grade("report", case_id)


@bp.post("/panel/signals/<int:case_id>/decision")
@web_roles(Role.panel)
def decide_signal(case_id: int) -> ResponseReturnValue:
    return _decide("signal", case_id)


@bp.post("/panel/reports/<int:case_id>/decision")
@web_roles(Role.panel)
def decide_report(case_id: int) -> ResponseReturnValue:
    return _decide("report", case_id)
