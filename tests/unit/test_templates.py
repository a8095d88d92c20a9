"""Every shipped template renders for every channel from `summary` and `advice` alone."""

from __future__ import annotations

import pytest

from ldis.messages.render import PARTS, Renderer
from ldis.settings import PROJECT_ROOT

renderer = Renderer(PROJECT_ROOT / "alert_templates")
CONTEXT = {
    "alert": {"title": "Nitazenes & <fake> oxy", "priority": "urgent", "areas": ["YORK-C"]},
    "fields": {"summary": "Green OC 80 tablets contain metonitazene.", "advice": "Carry naloxone."},
    "version": 1,
    "is_update": False,
    "reference": "LDIS-1-v1",
    "ack_url": "https://ldis.example/ack/abc",
    "contact_name": "Duty worker",
}


def test_the_contract_templates_exist() -> None:
    assert {"professional", "public"} <= renderer.templates()


@pytest.mark.parametrize("template", sorted(renderer.templates()))
@pytest.mark.parametrize("channel", sorted(PARTS))
def test_renders_from_summary_and_advice(template: str, channel: str) -> None:
    rendered = renderer.render(channel, template, CONTEXT)
    assert "metonitazene" in rendered.text
    if channel == "email":
        assert rendered.subject and "\n" not in rendered.subject
        assert rendered.html and "Nitazenes &amp; &lt;fake&gt; oxy" in rendered.html
        assert "<fake>" not in rendered.html
    else:
        assert "&amp;" not in rendered.text


def test_updates_say_so() -> None:
    rendered = renderer.render("sms", "professional", {**CONTEXT, "is_update": True, "version": 2})
    assert rendered.text.startswith("UPDATE")
