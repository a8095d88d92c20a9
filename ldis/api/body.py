"""Reading a JSON request body: 415 for the wrong type, 400 for broken JSON, dict or list only."""

from __future__ import annotations

import json
from typing import Any

from flask import request

from ldis.api.errors import BadRequest, UnsupportedMediaType


def json_body(*, optional: bool = False) -> Any:
    raw = request.get_data(cache=True)
    if optional and not raw:
        return {}
    if request.mimetype != "application/json":
        raise UnsupportedMediaType("Send the body as JSON with 'Content-Type: application/json'.")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}.") from None
