"""Render an alert version for one channel from `alert_templates/{channel}/{template}.{part}.j2`.

SMS has one part (`text`); e-mail has `subject`, `text` and `html`. A template exists when
every channel has its parts, so a panel member can never pick one that cannot be sent.

Rendering fails loudly, never with a blank: a field the template needs that is missing,
or any field that is blank, raises `TemplateFieldMissing` naming it (`fields.what_changed`);
an unknown template raises `UnknownTemplate`; a part that renders empty raises
`EmptyPart`. An exercise is marked by this code on every part, so no template can forget.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Any, cast

from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    TemplateRuntimeError,
    UndefinedError,
    select_autoescape,
)
from jinja2.utils import missing
from markupsafe import escape

PARTS: dict[str, tuple[str, ...]] = {"sms": ("text",), "email": ("subject", "text", "html")}
# Chosen by the system for a withdrawal version, never offered to the drafter.
WITHDRAWAL_TEMPLATE = "withdrawal"
SYSTEM_TEMPLATES = frozenset({WITHDRAWAL_TEMPLATE})
_TEMPLATE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

# GSM-7 only (plain hyphen, no dashes or curly quotes): the marker must not push an SMS
# into UCS-2.
EXERCISE_SUBJECT_PREFIX = "EXERCISE EXERCISE EXERCISE: "
EXERCISE_START = "EXERCISE EXERCISE EXERCISE - this is a preparedness exercise, not a real alert."
EXERCISE_END = "EXERCISE ENDS"
_BANNER_STYLE = "border: 3px solid #d4351c; padding: 0.5em; font-weight: bold; color: #d4351c;"


class TemplateError(Exception):
    """An alert message that must not be sent: a bad template name, a missing field, ..."""


class UnknownTemplate(TemplateError):
    def __init__(self, channel: str, template: str) -> None:
        self.channel, self.template = channel, template
        super().__init__(f"unknown alert template {template!r} for channel {channel!r}")


class TemplateFieldMissing(TemplateError):
    """A value the template uses is absent, or a field is blank. `field` is dotted."""

    def __init__(self, field: str, *, blank: bool = False, template: str | None = None) -> None:
        self.field = field
        self.blank = blank
        self.template = template
        what = "is blank" if blank else "is missing"
        where = f" (template {template})" if template else ""
        super().__init__(f"{field} {what}{where}: fill it in or choose another template")


class EmptyPart(TemplateError):
    def __init__(self, channel: str, template: str, part: str) -> None:
        self.channel, self.template, self.part = channel, template, part
        super().__init__(f"{channel}/{template}.{part} rendered empty")


@dataclass(frozen=True)
class Rendered:
    text: str
    subject: str | None = None
    html: str | None = None


# id() of each mapping in the context being rendered -> its dotted name, so an undefined
# value can be reported as `fields.what_changed` rather than "'dict object' has no ...".
_paths: ContextVar[Mapping[int, str]] = ContextVar(
    "ldis_template_paths", default=MappingProxyType({})
)


class _FieldUndefinedError(UndefinedError):
    def __init__(self, message: str | None, field: str) -> None:
        super().__init__(message)
        self.field = field


class _NamingUndefined(StrictUndefined):
    """StrictUndefined whose error carries the dotted name of what was missing."""

    __slots__ = ()

    def __init__(
        self,
        hint: str | None = None,
        obj: Any = missing,
        name: str | None = None,
        exc: type[TemplateRuntimeError] = UndefinedError,
    ) -> None:
        dotted = str(name) if name is not None else (hint or "a value")
        if obj is not missing:
            parent = _paths.get().get(id(obj))
            dotted = f"{parent}.{name}" if parent else dotted
        named = cast("type[TemplateRuntimeError]", partial(_FieldUndefinedError, field=dotted))
        super().__init__(hint, obj, name, named)


def _name_mappings(context: Mapping[str, Any]) -> dict[int, str]:
    """Dotted names of the context's mappings, two levels deep; `fields` wins over
    `alert.fields` (the same object)."""
    names: dict[int, str] = {}
    ordered = sorted(context.items(), key=lambda item: item[0] != "fields")
    for key, value in ordered:
        if isinstance(value, Mapping):
            names.setdefault(id(value), key)
    for key, value in ordered:
        if isinstance(value, Mapping):
            for sub, child in value.items():
                if isinstance(child, Mapping):
                    names.setdefault(id(child), f"{key}.{sub}")
    return names


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def check_fields(context: Mapping[str, Any], template: str | None = None) -> None:
    """Refuse a blank (empty, whitespace or null) value anywhere in `fields`: a template
    would print it as nothing (or "None") where the reader expects information."""
    fields = context.get("fields")
    if not isinstance(fields, Mapping):
        return
    for key, value in fields.items():
        if _blank(value):
            raise TemplateFieldMissing(f"fields.{key}", blank=True, template=template)
        if isinstance(value, list | tuple):
            for index, item in enumerate(value):
                if _blank(item):
                    raise TemplateFieldMissing(
                        f"fields.{key}.{index}", blank=True, template=template
                    )


@contextmanager
def _naming(context: Mapping[str, Any]) -> Iterator[None]:
    token = _paths.set(_name_mappings(context))
    try:
        yield
    finally:
        _paths.reset(token)


def _mark_exercise(channel: str, part: str, value: str) -> str:
    if part == "subject":
        return EXERCISE_SUBJECT_PREFIX + value
    if part == "html":
        top = f'<p style="{_BANNER_STYLE}">{escape(EXERCISE_START)}</p>'
        bottom = f'<p style="{_BANNER_STYLE}">{escape(EXERCISE_END)}</p>'
        body = re.search(r"<body\b[^>]*>", value, flags=re.IGNORECASE)
        value = f"{value[: body.end()]}\n{top}{value[body.end() :]}" if body else f"{top}\n{value}"
        end = value.lower().rfind("</body>")
        return f"{value[:end]}{bottom}\n{value[end:]}" if end >= 0 else f"{value}\n{bottom}"
    gap = "\n" if channel == "sms" else "\n\n"
    return f"{EXERCISE_START}{gap}{value}{gap}{EXERCISE_END}"


class Renderer:
    def __init__(self, templates_path: Path) -> None:
        self.path = templates_path
        self._env = Environment(
            loader=FileSystemLoader(str(templates_path)),
            # Only HTML parts are escaped; SMS and plain text must not show &amp;.
            autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
            undefined=_NamingUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )

    def templates(self, *, include_system: bool = False) -> frozenset[str]:
        """Names of templates that have every part for every channel: those a drafter may
        choose, plus the system's own (the withdrawal notice) when `include_system`."""
        names: set[str] | None = None
        for channel, parts in PARTS.items():
            folder = self.path / channel
            here = (
                {
                    p.name.split(".")[0]
                    for p in folder.glob("*.j2")
                    if all(
                        (folder / f"{p.name.split('.')[0]}.{part}.j2").exists() for part in parts
                    )
                }
                if folder.is_dir()
                else set()
            )
            names = here if names is None else names & here
        found = frozenset(names or ())
        return found if include_system else found - SYSTEM_TEMPLATES

    def render(self, channel: str, template: str, context: Mapping[str, Any]) -> Rendered:
        if channel not in PARTS or not _TEMPLATE_NAME.fullmatch(template):
            raise UnknownTemplate(channel, template)
        check_fields(context, template)
        parts: dict[str, str] = {}
        with _naming(context):
            for part in PARTS[channel]:
                try:
                    source = self._env.get_template(f"{channel}/{template}.{part}.j2")
                except TemplateNotFound:
                    raise UnknownTemplate(channel, template) from None
                try:
                    value = source.render(context).strip()
                except _FieldUndefinedError as exc:
                    raise TemplateFieldMissing(exc.field, template=template) from exc
                if part == "subject":
                    value = " ".join(value.split())
                if not value:
                    raise EmptyPart(channel, template, part)
                parts[part] = value
        if context.get("exercise"):
            parts = {part: _mark_exercise(channel, part, value) for part, value in parts.items()}
        return Rendered(text=parts["text"], subject=parts.get("subject"), html=parts.get("html"))
