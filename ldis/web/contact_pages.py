"""Contact pages (on the `services` blueprint): add a contact, change or remove one, send a
new code or link, type in a code the person read out; and the public page an e-mail
verification link opens (a GET shows a button, only the button's POST confirms)."""

from __future__ import annotations

import json
from typing import Any

from flask import Response, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from ldis.domain.errors import Conflict, NotFound, ValidationFailed
from ldis.domain.roles import Role
from ldis.services import contact_export, contacts, email_links, recipients, verification
from ldis.web.access import public, web_roles
from ldis.web.extensions import container
from ldis.web.service_forms import CHANNEL_LABELS, CodeForm, ContactForm
from ldis.web.services import (
    MANAGERS,
    Errors,
    Summary,
    actor,
    bp,
    not_found,
    page_context,
    problems,
    sending,
)


@bp.route("/services/<int:service_id>/contacts/new", methods=["GET", "POST"])
@web_roles(*MANAGERS)
def new_contact(service_id: int) -> ResponseReturnValue:
    db, who = container().db, actor()
    try:
        service = recipients.get_service(db, who, service_id)
    except NotFound:
        return not_found()
    form = ContactForm()
    errors: Errors = {}
    summary: Summary = []
    is_admin = who.has_any(Role.admin)
    if request.method == "POST":
        body = form.body(new=True, with_verified=is_admin)
        try:
            view = contacts.add_contact(db, who, service_id, body, sending=sending())
        except NotFound:
            return not_found()
        except (ValidationFailed, Conflict) as exc:
            errors, summary = problems(form, exc)
        else:
            waiting = [CHANNEL_LABELS[c].lower() for c, ok in view["verified"].items() if not ok]
            note = f" A confirmation was sent by {' and '.join(waiting)}." if waiting else ""
            flash(f"{view['name']} was added.{note}", "changed")
            return redirect(url_for("services.show", service_id=service_id, _anchor="contacts"))
    return render_template(
        "services/contact_new.html",
        service=service,
        form=form,
        errors=errors,
        summary=summary,
        is_admin=is_admin,
        **page_context(),
    ), (422 if summary else 200)


def contact_page(
    contact_id: int,
    *,
    form: ContactForm | None = None,
    code_form: CodeForm | None = None,
    errors: Errors | None = None,
    summary: Summary | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    db, who = container().db, actor()
    try:
        view = contacts.get_contact(db, who, contact_id)
        service = recipients.get_service(db, who, view["service_id"])
    except NotFound:
        return not_found("contact")
    if form is None:
        form = ContactForm(formdata=None)
        form.fill(view)
    return render_template(
        "services/contact.html",
        view=view,
        service=service,
        form=form,
        code_form=code_form or CodeForm(formdata=None),
        errors=errors or {},
        summary=summary or [],
        **page_context(),
    ), status


@bp.get("/contacts/<int:contact_id>")
@web_roles(*MANAGERS)
def show_contact(contact_id: int) -> ResponseReturnValue:
    return contact_page(contact_id)


@bp.post("/contacts/<int:contact_id>")
@web_roles(*MANAGERS)
def update_contact(contact_id: int) -> ResponseReturnValue:
    form = ContactForm()
    try:
        view = contacts.update_contact(
            container().db, actor(), contact_id, form.body(new=False), sending=sending()
        )
    except NotFound:
        return not_found("contact")
    except (ValidationFailed, Conflict) as exc:
        errors, summary = problems(form, exc)
        return contact_page(contact_id, form=form, errors=errors, summary=summary, status=422)
    pending = [
        CHANNEL_LABELS[c].lower()
        for c, state in view["channel_status"].items()
        if state["status"] == "pending"
    ]
    note = f" Waiting for confirmation by {' and '.join(pending)}." if pending else ""
    flash(f"The contact's details were saved.{note}", "changed")
    return redirect(url_for("services.show_contact", contact_id=contact_id))


@bp.route("/contacts/<int:contact_id>/remove", methods=["GET", "POST"])
@web_roles(*MANAGERS)
def remove_contact(contact_id: int) -> ResponseReturnValue:
    db, who = container().db, actor()
    try:
        view = contacts.get_contact(db, who, contact_id)
    except NotFound:
        return not_found("contact")
    if request.method == "GET":
        return render_template("services/contact_remove.html", view=view)
    contacts.remove_contact(db, who, contact_id)
    flash(f"{view['name']} was removed and their details erased.", "changed")
    return redirect(url_for("services.show", service_id=view["service_id"], _anchor="contacts"))


@bp.get("/contacts/<int:contact_id>/export.json")
@web_roles(*MANAGERS)
def export_contact(contact_id: int) -> ResponseReturnValue:
    """Everything held about the contact, as a JSON file to download (audited)."""
    try:
        document = contact_export.export_contact(container().db, actor(), contact_id)
    except NotFound:
        return not_found("contact")
    response = Response(
        json.dumps(document, indent=2, ensure_ascii=False), mimetype="application/json"
    )
    response.headers["Content-Disposition"] = (
        f'attachment; filename="ldis-contact-{contact_id}.json"'
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/contacts/<int:contact_id>/verification/<channel>")
@web_roles(*MANAGERS)
def resend(contact_id: int, channel: str) -> ResponseReturnValue:
    try:
        verification.resend(container().db, actor(), contact_id, channel, sending=sending())
    except NotFound:
        return not_found("contact")
    except Conflict as exc:
        return contact_page(contact_id, summary=[("", exc.message)], status=409)
    what = "A new code was sent by text message." if channel == "sms" else "A new link was sent."
    flash(what, "changed")
    return redirect(url_for("services.show_contact", contact_id=contact_id))


@bp.post("/contacts/<int:contact_id>/verification/sms/confirm")
@web_roles(*MANAGERS)
def enter_code(contact_id: int) -> ResponseReturnValue:
    form = CodeForm()
    try:
        verification.confirm(
            container().db,
            actor(),
            contact_id,
            "sms",
            form.code.data or "",
            secret=container().settings.secret(),
        )
    except NotFound:
        return not_found("contact")
    except (ValidationFailed, Conflict) as exc:
        errors, summary = problems(form, exc)
        return contact_page(contact_id, code_form=form, errors=errors, summary=summary, status=422)
    flash("The mobile number is confirmed: alerts will be sent to it.", "changed")
    return redirect(url_for("services.show_contact", contact_id=contact_id))


def _link_page(link: email_links.EmailLink | None, token: str) -> ResponseReturnValue:
    context: dict[str, Any] = {"link": link, "token": token}
    if link is None:
        return render_template("services/verify.html", **context), 404
    return render_template(
        "services/verify.html", **context
    ), 410 if link.state == "expired" else 200


@bp.get("/verify/<token>")
@public
def verify_email(token: str) -> ResponseReturnValue:
    secret = container().settings.secret()
    try:
        return _link_page(email_links.email_link_view(container().db, token, secret=secret), token)
    except NotFound:
        return _link_page(None, token)


@bp.post("/verify/<token>")
@public
def confirm_email(token: str) -> ResponseReturnValue:
    secret = container().settings.secret()
    try:
        link = email_links.confirm_email_link(container().db, token, secret=secret)
    except NotFound:
        return _link_page(None, token)
    return _link_page(link, token)
