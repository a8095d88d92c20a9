"""Rendering an alert version once for all its recipients, then filling in each one's own
values (acknowledgement link, preferences link, name).

Every message of a fan-out renders the same templates with the same alert; only a few
values differ per recipient. Rendering the Jinja templates for each of 20,000 messages
was a fifth of a worker's own CPU per message (docs/performance.md), so a version is
rendered once per worker process with markers in place of those values, split at the
markers, and each message is the pieces joined with its values.

That is only correct when the template prints a value as it is. A template may do more
(`contact_name|upper`, `contact_name.split()[0]`, a test on its length), so before a
rendering is trusted:
- it is rendered with two different sets of markers (one with a space, of another length
  and other letters): a template that transforms, slices or tests a value leaves the two
  different once filled in, and the version is then rendered whole for every message;
- the first message is also rendered whole, the usual way, and must equal the filled-in one.
A value that rendering could change (blank, with edge or doubled whitespace, or with a
character HTML escapes, like the apostrophe in O'Brien) is never filled in: that message is
rendered whole. Whatever goes wrong here, the answer is the whole rendering, never a guess.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from markupsafe import escape

from ldis.messages.render import Rendered, Renderer, TemplateError

# The values that differ per recipient, as the message context names them.
PERSONAL_FIELDS = ("ack_url", "preferences_url", "contact_name")
DEFAULT_SIZE = 64

# Per process, unguessable: no alert text or value can contain a marker by accident.
_NONCE = secrets.token_hex(6)
_MARKERS_A = {name: f"Zq{_NONCE}a{i}Zq" for i, name in enumerate(PERSONAL_FIELDS)}
_MARKERS_B = {name: f"Yw{i}x{_NONCE} b{_NONCE}Yw" for i, name in enumerate(PERSONAL_FIELDS)}

# One part (text, subject or html) as pieces: literal text, or the name of a value.
Pieces = tuple[tuple[bool, str], ...]  # (is_value, literal or value name)


@dataclass(frozen=True)
class _Shape:
    text: Pieces
    subject: Pieces | None
    html: Pieces | None


def fillable(value: str) -> bool:
    """A value rendering prints unchanged in every part: not blank, no whitespace at the
    edges or doubled (parts are stripped, subjects collapsed), nothing HTML escapes."""
    return bool(value) and value == " ".join(value.split()) and str(escape(value)) == value


def _split(rendered: str, markers: Mapping[str, str]) -> Pieces:
    by_marker = {marker: name for name, marker in markers.items()}
    pattern = "|".join(re.escape(marker) for marker in by_marker)
    pieces: list[tuple[bool, str]] = []
    at = 0
    for match in re.finditer(pattern, rendered):
        if match.start() > at:
            pieces.append((False, rendered[at : match.start()]))
        pieces.append((True, by_marker[match.group(0)]))
        at = match.end()
    if at < len(rendered):
        pieces.append((False, rendered[at:]))
    return tuple(pieces)


def _shape(rendered: Rendered, markers: Mapping[str, str]) -> _Shape:
    return _Shape(
        text=_split(rendered.text, markers),
        subject=None if rendered.subject is None else _split(rendered.subject, markers),
        html=None if rendered.html is None else _split(rendered.html, markers),
    )


def _join(pieces: Pieces, values: Mapping[str, str]) -> str:
    return "".join(values[piece] if is_value else piece for is_value, piece in pieces)


def _fill(shape: _Shape, values: Mapping[str, str]) -> Rendered:
    return Rendered(
        text=_join(shape.text, values),
        subject=None if shape.subject is None else _join(shape.subject, values),
        html=None if shape.html is None else _join(shape.html, values),
    )


class PersonalRenderer:
    """A `Renderer` for many recipients of one version (per worker process; bounded)."""

    def __init__(self, renderer: Renderer, size: int = DEFAULT_SIZE) -> None:
        self.renderer = renderer
        self.size = size
        # key -> the version's shape, or None: rendered whole for every message.
        self._shapes: OrderedDict[Hashable, _Shape | None] = OrderedDict()
        self._lock = threading.Lock()  # worker threads may share a process

    def render(
        self, key: Hashable, channel: str, template: str, context: Mapping[str, Any]
    ) -> Rendered:
        """What `Renderer.render(channel, template, context)` returns.

        `key` must change whenever anything in `context` but the `PERSONAL_FIELDS` does
        (the version, its content, purpose, exercise flag)."""
        personal = {name: context[name] for name in PERSONAL_FIELDS if name in context}
        if not all(isinstance(value, str) and fillable(value) for value in personal.values()):
            return self.renderer.render(channel, template, context)
        names = tuple(personal)
        key = (key, channel, template, names)
        with self._lock:
            known = key in self._shapes
            shape = self._shapes.get(key)
            if known:
                self._shapes.move_to_end(key)
        if shape is not None:
            return _fill(shape, personal)
        rendered = self.renderer.render(channel, template, context)  # errors surface as ever
        if not known:
            learned = self._learn(channel, template, context, personal, rendered)
            with self._lock:
                self._shapes[key] = learned
                while len(self._shapes) > self.size:
                    self._shapes.popitem(last=False)
        return rendered

    def _learn(
        self,
        channel: str,
        template: str,
        context: Mapping[str, Any],
        personal: Mapping[str, str],
        rendered: Rendered,
    ) -> _Shape | None:
        """The version's shape, if filling it in is proven to give what rendering gives."""
        try:
            first, second = (
                _shape(
                    self.renderer.render(
                        channel, template, {**context, **{n: markers[n] for n in personal}}
                    ),
                    markers,
                )
                for markers in (_MARKERS_A, _MARKERS_B)
            )
        except TemplateError:
            return None
        if first != second or _fill(first, personal) != rendered:
            return None
        return first
