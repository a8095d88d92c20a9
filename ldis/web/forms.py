"""Shared pieces of the HTML forms: the base form, UK time, and turning the use cases'
`fields` errors (dotted paths, terse wording) into messages beside the right field."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import RequestEntityTooLarge

LONDON = ZoneInfo("Europe/London")


class WebForm(FlaskForm):  # type: ignore[misc]  # flask_wtf ships no type information
    """Every HTML form: CSRF token included. Values are checked by the use cases, not here,
    so the web form and the JSON API can never disagree about what is valid."""


def blank_to_none(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def london_to_utc(value: str) -> str:
    """A `datetime-local` value (UK wall-clock time) as ISO 8601 UTC; unparsable text is
    passed on unchanged so the use case names the field."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=LONDON)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def uk_time(value: str | None, with_time: bool = True) -> str:
    """An ISO 8601 moment shown in UK time, e.g. "21 Nov 2026, 23:40"."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if moment.tzinfo is not None:
        moment = moment.astimezone(LONDON)
    return moment.strftime("%-d %b %Y, %H:%M" if with_time else "%-d %b %Y")


_LIMIT = re.compile(r"^String should have at most (\d+) characters?$")
_BOUND = re.compile(r"^Input should be (greater|less) than( or equal to)? (-?[\d.]+)$")


def friendly(label: str, message: str, *, choose: bool = False) -> str:
    """One clear sentence naming the field, GOV.UK style."""
    lowered = label[0].lower() + label[1:]
    if message in ("Field required", "String should have at least 1 character"):
        return f"{'Select' if choose else 'Enter'} {lowered}"
    if message.startswith("Input should be '") or (choose and message.startswith("Input should")):
        return f"Select {lowered}"
    if match := _LIMIT.match(message):
        return f"{label} must be {match.group(1)} characters or fewer"
    if match := _BOUND.match(message):
        side, equal, number = match.groups()
        if side == "greater":
            return (
                f"{label} must be {number} or more" if equal else f"{label} must be over {number}"
            )
        return f"{label} must be {number} or less" if equal else f"{label} must be under {number}"
    if message.startswith("Input should be a valid integer"):
        return f"{label} must be a whole number, like 2"
    if message.startswith("Input should be a valid number"):
        return f"{label} must be a number, like 53.96"
    if message.startswith("Input should be a valid date"):
        return f"{label} must be a real date, like 21 11 2026"
    if message.startswith("Input should be a valid datetime"):
        return f"{label} must be a real date and time"
    if message.startswith(("must ", "is ", "should ")):
        return f"{label} {message}"
    return f"{label}: {message}"


def register_page_errors(bp: Blueprint) -> None:
    """Plain-language pages for a refused form post (the JSON API keeps its JSON errors)."""

    @bp.errorhandler(CSRFError)
    def _expired(_exc: CSRFError) -> ResponseReturnValue:
        return render_template(
            "error.html",
            title="This form has expired",
            message="Nothing was saved. Go back, reload the page and send the form again.",
        ), 400

    @bp.errorhandler(RequestEntityTooLarge)
    def _too_large(_exc: RequestEntityTooLarge) -> ResponseReturnValue:
        return render_template(
            "error.html",
            title="What you sent is too large",
            message="Nothing was saved. A photo must be 5 MB or smaller and notes a few "
            "thousand characters; go back, make it smaller (or leave the photo out) and send "
            "it again.",
        ), 413
