"""Turning pydantic's errors into the contract's `fields` map: dotted path -> what to fix."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, Field, ValidationError

from ldis.domain.errors import ValidationFailed

M = TypeVar("M", bound=BaseModel)

# The largest id a stored record can have (a PostgreSQL `integer`): a bigger one names no
# record, and must be refused here rather than reach the database as an out-of-range value.
MAX_ID = 2**31 - 1
RecordId = Annotated[int, Field(ge=1, le=MAX_ID)]


def field_errors(exc: ValidationError) -> dict[str, str]:
    """Pydantic errors as {"dotted.path": "what is wrong"}, first message per field."""
    fields: dict[str, str] = {}
    for error in exc.errors():
        path = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if not path:
            # Whole-model checks name their field as "field: message".
            head, _, rest = message.partition(": ")
            path, message = (head, rest) if rest and head.isidentifier() else ("body", message)
        if error["type"] == "extra_forbidden":
            message = "is not a known field; remove it"
        fields.setdefault(path, message)
    return fields


def parse(model: type[M], body: Any) -> M:
    """Validate `body` as `model`; raise ValidationFailed naming each bad field."""
    if not isinstance(body, dict):
        raise ValidationFailed({"body": "must be a JSON object"})
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise ValidationFailed(field_errors(exc)) from None
