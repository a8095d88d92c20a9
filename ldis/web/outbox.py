"""The local outbox: read each message as it would have gone out (embedded default channel).

It shows staff contact details, so it exists only while a channel is set to `outbox` and
answers only requests from this machine; a deployment sending real messages has no outbox.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from ldis.store.models import OutboxMessage
from ldis.web.access import local_operator
from ldis.web.extensions import container

bp = Blueprint("outbox", __name__)
PAGE_SIZE = 100


def _guard() -> None:
    if not container().settings.uses_outbox:
        abort(404)
    if request.remote_addr not in ("127.0.0.1", "::1"):
        abort(403)


@bp.get("/outbox")
@local_operator
def index() -> ResponseReturnValue:
    _guard()
    with container().db.transaction() as session:
        messages = session.scalars(
            select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(PAGE_SIZE)
        ).all()
    return render_template("outbox.html", messages=messages)


@bp.get("/outbox/<int:message_id>")
@local_operator
def show(message_id: int) -> ResponseReturnValue:
    _guard()
    with container().db.transaction() as session:
        message = session.get(OutboxMessage, message_id)
    if message is None:
        abort(404)
    return render_template("outbox_message.html", message=message)


@bp.get("/outbox/<int:message_id>/html")
@local_operator
def html(message_id: int) -> ResponseReturnValue:
    """The e-mail's HTML part, served alone under a CSP that forbids scripts and loads."""
    _guard()
    with container().db.transaction() as session:
        message = session.get(OutboxMessage, message_id)
    if message is None or not message.html_body:
        abort(404)
    response = Response(message.html_body, mimetype="text/html")
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return response
