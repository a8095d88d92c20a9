"""Render an alert version for one channel from `alert_templates/{channel}/{template}.{part}.j2`.

SMS has one part (`text`); e-mail has `subject`, `text` and `html`. A template exists when
every channel has its parts, so a panel member can never pick one that cannot be sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

PARTS: dict[str, tuple[str, ...]] = {"sms": ("text",), "email": ("subject", "text", "html")}


@dataclass(frozen=True)
class Rendered:
    text: str
    subject: str | None = None
    html: str | None = None


class Renderer:
    def __init__(self, templates_path: Path) -> None:
        self.path = templates_path
        self._env = Environment(
            loader=FileSystemLoader(str(templates_path)),
            # Only HTML parts are escaped; SMS and plain text must not show &amp;.
            autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )

    def templates(self) -> frozenset[str]:
        """Names of templates that have every part for every channel."""
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
        return frozenset(names or ())

    def render(self, channel: str, template: str, context: dict[str, Any]) -> Rendered:
        parts = {
            part: self._env.get_template(f"{channel}/{template}.{part}.j2").render(context).strip()
            for part in PARTS[channel]
        }
        subject = parts.get("subject")
        return Rendered(
            text=parts["text"],
            subject=" ".join(subject.split()) if subject else None,
            html=parts.get("html"),
        )
