"""Reading a JSON request body: 415 for the wrong type, 400 for broken JSON, dict or list only.

Strict JSON (RFC 8259): NaN, Infinity and numbers too large for a float are refused, as is
nesting deeper than any body of ours needs; a NUL character in any string is refused with
the field named (PostgreSQL text cannot hold one), so none of these can become a 500."""

from __future__ import annotations

import json
import math
from typing import Any

from flask import request

from ldis.api.errors import BadRequest, UnsupportedMediaType
from ldis.domain.errors import ValidationFailed

# GeoJSON MultiPolygons, the deepest bodies we read, are six levels deep.
MAX_DEPTH = 32
NUL_MESSAGE = "must not contain the NUL character (\\u0000)"


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def json_body(*, optional: bool = False) -> Any:
    raw = request.get_data(cache=True)
    if optional and not raw:
        return {}
    if request.mimetype != "application/json":
        raise UnsupportedMediaType("Send the body as JSON with 'Content-Type: application/json'.")
    try:
        value = json.loads(raw, parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}.") from None
    except RecursionError:
        raise BadRequest(f"The body is nested more than {MAX_DEPTH} levels deep.") from None
    check_values(value)
    return value


def check_values(value: Any) -> None:
    """BadRequest when nested too deep or a number is too large for a float (1e400);
    ValidationFailed naming the first string (or key) holding a NUL character. Iterative,
    so no body can exhaust the stack here."""
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise BadRequest(f"The body is nested more than {MAX_DEPTH} levels deep.")
        if isinstance(item, str):
            if "\x00" in item:
                raise ValidationFailed({path or "body": NUL_MESSAGE})
        elif isinstance(item, float) and not math.isfinite(item):
            raise BadRequest(f"The body is not valid JSON: {path or 'a number'} is too large.")
        elif isinstance(item, dict):
            for key, child in item.items():
                child_path = f"{path}.{key}" if path else str(key)
                if "\x00" in key:
                    raise ValidationFailed({child_path: NUL_MESSAGE})
                stack.append((child, child_path, depth + 1))
        elif isinstance(item, list):
            stack.extend(
                (child, f"{path}.{i}" if path else str(i), depth + 1)
                for i, child in enumerate(item)
            )
