"""Errors the domain and the use cases raise; adapters map them to HTTP codes or exit codes."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error a user can cause and be told about."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationFailed(DomainError):
    """Input is well formed but wrong; `fields` maps a dotted field path to what is wrong."""

    code = "validation_failed"

    def __init__(self, fields: dict[str, str], message: str = "Some fields need fixing.") -> None:
        super().__init__(message)
        self.fields = fields


class NotFound(DomainError):
    code = "not_found"


class Forbidden(DomainError):
    code = "forbidden"


class Conflict(DomainError):
    """The record's state does not allow it; `fields` may name the field that clashes
    (e.g. {"email": "a contact with this address is already at this service"})."""

    code = "conflict"

    def __init__(self, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.fields = fields or {}
