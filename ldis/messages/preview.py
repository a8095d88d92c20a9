"""What each channel would send, and what an SMS costs, before anyone approves it.

The preview renders through the same `Renderer` and the same context builder as the real
send (`ldis.messages.context.message_context`); only the acknowledgement link is a
placeholder, of the longest length a real one can have, so the segment count shown is
never below what a real send costs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ldis.domain.sms import WARN_OVER_SEGMENTS, sms_length
from ldis.messages.context import message_context, template_for
from ldis.messages.render import PARTS, Renderer

# `Links.ack_token` of the largest delivery id (a 32-bit key): base64 of the id's JSON,
# a dot and a 27-character signature. tests/unit/test_message_preview.py checks it.
PREVIEW_ACK_TOKEN_LENGTH = 42


def placeholder_ack_url(public_url: str) -> str:
    return f"{public_url.rstrip('/')}/ack/" + "x" * PREVIEW_ACK_TOKEN_LENGTH


@dataclass(frozen=True)
class SmsCost:
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int
    non_gsm: tuple[str, ...]  # the characters that forced UCS-2, first appearance order
    warning: str | None  # set when over WARN_OVER_SEGMENTS segments

    def as_dict(self) -> dict[str, Any]:
        return {
            "encoding": self.encoding,
            "units": self.units,
            "segments": self.segments,
            "non_gsm": list(self.non_gsm),
            "warning": self.warning,
        }


@dataclass(frozen=True)
class ChannelPreview:
    channel: str
    text: str
    subject: str | None = None
    html: str | None = None
    sms: SmsCost | None = None  # SMS only

    def as_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "subject": self.subject,
            "html": self.html,
            "sms": self.sms.as_dict() if self.sms else None,
        }


@dataclass(frozen=True)
class Preview:
    template: str
    channels: tuple[ChannelPreview, ...]

    def channel(self, name: str) -> ChannelPreview:
        for preview in self.channels:
            if preview.channel == name:
                return preview
        raise KeyError(name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "template": self.template,
            "channels": {preview.channel: preview.as_dict() for preview in self.channels},
        }


def sms_cost(text: str) -> SmsCost:
    length = sms_length(text)
    warning = None
    if length.segments > WARN_OVER_SEGMENTS:
        warning = (
            f"This text message needs {length.segments} segments "
            f"({length.units} {length.encoding.value} units), more than {WARN_OVER_SEGMENTS}: "
            "it costs more and some phones show it split or late. Shorten it."
        )
        if length.non_gsm:
            shown = " ".join(repr(char) for char in length.non_gsm)
            warning += (
                f" These characters switch it to UCS-2 (70 per segment instead of 160): {shown};"
                " use straight quotes and plain hyphens instead."
            )
    return SmsCost(
        encoding=length.encoding.value,
        units=length.units,
        segments=length.segments,
        non_gsm=length.non_gsm,
        warning=warning,
    )


def preview(renderer: Renderer, template: str, context: Mapping[str, Any]) -> Preview:
    """Render `template` for every channel. Raises what rendering raises
    (`ldis.messages.render.TemplateError`): a preview that fails is a send that would."""
    channels = []
    for channel in PARTS:
        rendered = renderer.render(channel, template, context)
        channels.append(
            ChannelPreview(
                channel=channel,
                text=rendered.text,
                subject=rendered.subject,
                html=rendered.html,
                sms=sms_cost(rendered.text) if channel == "sms" else None,
            )
        )
    return Preview(template=template, channels=tuple(channels))


def preview_version(
    renderer: Renderer,
    content: Mapping[str, Any],
    *,
    template: str,
    alert_id: int,
    version: int,
    purpose: str,
    exercise: bool,
    public_url: str,
    previous_version: int | None,
) -> Preview:
    """The preview of an alert version as approvers should see it: the real context, the
    system's choice of template for a withdrawal, a placeholder acknowledgement link."""
    context = message_context(
        content,
        alert_id=alert_id,
        version=version,
        purpose=purpose,
        exercise=exercise,
        ack_url=placeholder_ack_url(public_url),
        previous_version=previous_version,
    )
    return preview(renderer, template_for(purpose, template), context)
