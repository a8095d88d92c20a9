"""One click in a message acknowledges it: no login, the link itself is signed. (A reply
`ACK` to a text does the same: `ldis.services.inbound_sms`.)"""

from __future__ import annotations

from flask import Blueprint, abort, render_template
from flask.typing import ResponseReturnValue

from ldis.services.acknowledgements import acknowledge
from ldis.web.access import public
from ldis.web.extensions import container
from ldis.web.ratelimits import rate_limited

bp = Blueprint("ack", __name__)


@bp.get("/ack/<token>")
@rate_limited("ack", methods=("GET",))
@public
def ack(token: str) -> ResponseReturnValue:
    c = container()
    delivery_id = c.links.delivery_for_ack(token)
    if delivery_id is None or not acknowledge(c.db, delivery_id):
        abort(404)
    return render_template("ack.html")
