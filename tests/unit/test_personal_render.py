"""Rendering a version once and filling in each recipient's values
(`ldis.messages.personal`) must give exactly what rendering each message gives."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ldis.domain.alerts import AlertDraft
from ldis.messages.personal import PersonalRenderer, fillable
from ldis.messages.render import PARTS, Renderer, TemplateFieldMissing
from ldis.services.delivery import compose
from ldis.services.delivery_claims import Claimed
from ldis.services.links import Links
from ldis.settings import PROJECT_ROOT

renderer = Renderer(PROJECT_ROOT / "alert_templates")
links = Links("a-secret-key-of-realistic-length-0123456789", "https://ldis.example.org")


def content(**fields: str) -> dict[str, Any]:
    return AlertDraft.model_validate(
        {
            "title": "Nitazenes in fake oxycodone",
            "priority": "urgent",
            "areas": ["YORK-C"],
            "fields": {
                "summary": "Green OC 80 tablets contain metonitazene, a nitazene.",
                "advice": "Carry extra naloxone: more than one dose may be needed.",
                **fields,
            },
        }
    ).content()


BODY = content(what_changed="Also in blue M30 tablets.", withdrawal_reason="Retested: none.")


def item(n: int, channel: str, *, name: str = "Duty worker", **changes: Any) -> Claimed:
    base = Claimed(
        delivery_id=1000 + n,
        channel=channel,
        address="+447700900123" if channel == "sms" else "duty@example.org",
        contact_name=name,
        alert_id=12,
        version=1,
        template="professional",
        content=BODY,
        contact_id=500 + n,
        link_version=1,
    )
    return replace(base, **changes)


def both(claimed: Claimed, personal: PersonalRenderer, **kwargs: Any) -> tuple[Any, Any]:
    return (
        compose(claimed, renderer, links, **kwargs),
        compose(claimed, renderer, links, personal=personal, **kwargs),
    )


NAMES = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=0, max_size=30
) | st.sampled_from(["O'Brien", "Zoë Ng", "  padded ", "A & B", "<b>x</b>", "Jo  Smith", ""])


@settings(max_examples=60, deadline=None)
@given(names=st.lists(NAMES, min_size=1, max_size=6))
@pytest.mark.parametrize("channel", ["sms", "email"])
@pytest.mark.parametrize(
    ("template", "version", "purpose", "exercise"),
    [
        ("professional", 1, "alert", False),
        ("public", 1, "alert", True),
        ("update", 2, "update", False),
        ("professional", 3, "withdrawal", False),
    ],
)
def test_filled_in_messages_equal_rendered_ones(
    names: list[str], channel: str, template: str, version: int, purpose: str, exercise: bool
) -> None:
    personal = PersonalRenderer(renderer)
    for n, name in enumerate(names):
        claimed = item(n, channel, name=name, template=template, version=version, purpose=purpose)
        whole, filled = both(claimed, personal, exercise=exercise)
        assert filled == whole


def test_a_version_is_rendered_once_then_filled_in() -> None:
    counting = _Counting(PROJECT_ROOT / "alert_templates")
    personal = PersonalRenderer(counting)
    for n in range(50):
        message = compose(item(n, "sms"), counting, links, personal=personal)
        assert links.ack_url(1000 + n) in message.text
    # The first message, then the two marker renderings that prove the shape; no more.
    assert counting.calls == 3


class _Counting(Renderer):
    calls = 0

    def render(self, channel: str, template: str, context: Any) -> Any:
        self.calls += 1
        return super().render(channel, template, context)


def _templates(tmp_path: Path, sms_text: str) -> Renderer:
    for channel, parts in PARTS.items():
        (tmp_path / channel).mkdir(exist_ok=True)
        for part in parts:
            source = sms_text if part == "text" else "{{ alert.title }} for {{ contact_name }}"
            (tmp_path / channel / f"own.{part}.j2").write_text(source + " {{ ack_url }}")
    return Renderer(tmp_path)


@pytest.mark.parametrize(
    "text",
    [
        "Hello {{ contact_name|upper }}",
        "Hello {{ contact_name.split()[0] }}",
        "Hello {{ contact_name[:1] }}",
        "{% if contact_name|length > 12 %}Hi{% else %}Hello{% endif %} {{ contact_name }}",
        "{{ contact_name|replace('a', 'b') }}",
        "{{ ack_url|replace('/ack/', '/a/') }}",
        "{{ contact_name|truncate(9, True, '') }}",
    ],
)
def test_a_template_that_changes_a_value_is_rendered_whole(tmp_path: Path, text: str) -> None:
    own = _templates(tmp_path, text)
    personal = PersonalRenderer(own)
    names = ["Sam Patel", "Alexandra Lee", "Bo Wu", "Jo Smith-Jones", "Ann Marie Baker"]
    for channel in ("sms", "email"):
        for n, name in enumerate(names):
            claimed = item(n, channel, name=name, template="own")
            whole = compose(claimed, own, links)
            assert compose(claimed, own, links, personal=personal) == whole
    # ...and such a shape was never trusted.
    assert all(shape is None for shape in personal._shapes.values())


def test_values_rendering_could_change_are_never_filled_in() -> None:
    assert fillable("Duty worker") and fillable("https://x.org/ack/abc.DEF-1_2")
    for value in ("", " x", "x ", "a  b", "a\nb", "O'Brien", "A & B", "<i>", 'say "hi"'):
        assert not fillable(value), value


def test_a_missing_field_still_fails_every_message() -> None:
    personal = PersonalRenderer(renderer)
    bare = {**BODY, "fields": {"summary": "Only a summary"}}
    for n in range(3):
        with pytest.raises(TemplateFieldMissing) as raised:
            compose(item(n, "sms", content=bare), renderer, links, personal=personal)
        assert raised.value.field == "fields.advice"


def test_changed_content_is_not_filled_from_the_old_shape() -> None:
    personal = PersonalRenderer(renderer)
    first = compose(item(1, "sms"), renderer, links, personal=personal)
    changed = {**BODY, "fields": {**BODY["fields"], "advice": "Never use alone."}}
    second = compose(item(2, "sms", content=changed), renderer, links, personal=personal)
    assert "Never use alone." in second.text and "Never use alone." not in first.text


def test_the_shapes_kept_are_bounded() -> None:
    personal = PersonalRenderer(renderer, size=3)
    for version in range(1, 8):
        compose(item(version, "sms", version=version, purpose="update"), renderer, links,
                personal=personal)  # fmt: skip
    assert len(personal._shapes) == 3
