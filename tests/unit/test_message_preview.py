"""The per-channel preview: what each channel sends and what an SMS costs, through the same
renderer and context as the real send (`compose`)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ldis.domain.alerts import AlertDraft, AlertKind
from ldis.domain.sms import WARN_OVER_SEGMENTS
from ldis.messages.context import message_context
from ldis.messages.preview import (
    PREVIEW_ACK_TOKEN_LENGTH,
    Preview,
    placeholder_ack_url,
    preview,
    preview_version,
    sms_cost,
)
from ldis.messages.render import (
    EXERCISE_START,
    WITHDRAWAL_TEMPLATE,
    Renderer,
    TemplateFieldMissing,
)
from ldis.services.delivery import compose
from ldis.services.delivery_claims import Claimed
from ldis.services.links import Links
from ldis.settings import PROJECT_ROOT

renderer = Renderer(PROJECT_ROOT / "alert_templates")
PUBLIC_URL = "https://ldis.example.org"
SUMMARY = "Green OC 80 tablets sold as oxycodone contain metonitazene, a nitazene."
ADVICE = "Carry extra naloxone: more than one dose may be needed."


def content(**fields: str) -> dict[str, Any]:
    return AlertDraft.model_validate(
        {
            "title": "Nitazenes in fake oxycodone",
            "priority": "urgent",
            "areas": ["YORK-C"],
            "fields": {"summary": SUMMARY, "advice": ADVICE, **fields},
        }
    ).content()


def version_preview(
    body: dict[str, Any],
    *,
    template: str = "public",
    purpose: str = "alert",
    version: int = 1,
    exercise: bool = False,
) -> Preview:
    return preview_version(
        renderer,
        body,
        template=template,
        alert_id=12,
        version=version,
        purpose=purpose,
        exercise=exercise,
        public_url=PUBLIC_URL,
        previous_version=version - 1 if version > 1 else None,
    )


def test_every_channel_is_previewed_and_only_sms_has_a_cost() -> None:
    shown = version_preview(content(), template="professional")
    assert shown.template == "professional"
    assert [c.channel for c in shown.channels] == ["sms", "email"]
    sms, email = shown.channel("sms"), shown.channel("email")
    assert SUMMARY in sms.text and SUMMARY in email.text
    assert sms.sms is not None and sms.sms.encoding == "GSM-7"
    assert sms.sms.segments >= 1 and sms.sms.units == len(sms.text)
    assert sms.subject is None and sms.html is None
    assert email.sms is None and email.subject and email.html
    with pytest.raises(KeyError):
        shown.channel("fax")


def test_as_dict_is_json_ready() -> None:
    shown = version_preview(content(summary=SUMMARY + " \u2019"))
    data = json.loads(json.dumps(shown.as_dict()))
    assert data["template"] == "public"
    assert set(data["channels"]) == {"sms", "email"}
    sms = data["channels"]["sms"]
    cost = shown.channel("sms").sms
    assert cost is not None and cost.segments == 4 and cost.warning
    assert sms["text"] == shown.channel("sms").text
    assert sms["sms"] == {
        "encoding": "UCS-2",
        "units": len(sms["text"]),
        "segments": 4,
        "non_gsm": ["\u2019"],
        "warning": cost.warning,
    }
    assert data["channels"]["email"]["sms"] is None
    assert data["channels"]["email"]["subject"].startswith("Drug alert")


def test_a_curly_quote_switches_to_ucs2_and_costs_segments() -> None:
    plain = version_preview(content(advice="Don't use alone. " + ADVICE)).channel("sms").sms
    curly = version_preview(content(advice="Don\u2019t use alone. " + ADVICE)).channel("sms").sms
    assert plain is not None and curly is not None
    assert plain.encoding == "GSM-7" and plain.non_gsm == ()
    assert curly.encoding == "UCS-2" and curly.non_gsm == ("\u2019",)
    assert plain.segments == 2 and curly.segments == 4  # 70 characters a segment, not 160
    assert curly.warning is not None and "'\u2019'" in curly.warning and "UCS-2" in curly.warning
    assert plain.warning is None


def test_an_emoji_is_named_and_counted_as_two_units() -> None:
    base = version_preview(content(summary="Pills \u2019")).channel("sms").sms
    emoji = version_preview(content(summary="Pills \u2019\U0001f480")).channel("sms").sms
    assert base is not None and emoji is not None
    assert emoji.units == base.units + 2
    assert emoji.non_gsm == ("\u2019", "\U0001f480")


def test_a_warning_over_three_segments_only() -> None:
    assert sms_cost("a" * 153 * WARN_OVER_SEGMENTS).warning is None
    over = sms_cost("a" * (153 * WARN_OVER_SEGMENTS + 1))
    assert over.segments == WARN_OVER_SEGMENTS + 1
    assert over.warning is not None and "4 segments" in over.warning
    assert "UCS-2" not in over.warning
    long = version_preview(content(summary="Nitazene found in pills. " * 20)).channel("sms")
    assert long.sms is not None and long.sms.segments > WARN_OVER_SEGMENTS
    assert long.sms.warning and f"{long.sms.segments} segments" in long.sms.warning


def test_the_placeholder_ack_link_is_as_long_as_a_real_one_can_be() -> None:
    links = Links("a-secret-key-of-realistic-length-0123456789", PUBLIC_URL)
    largest = links.ack_url(2**31 - 1)  # deliveries.id is a 32-bit integer
    assert len(placeholder_ack_url(PUBLIC_URL)) == len(largest)
    assert len(links.ack_token(2**31 - 1)) == PREVIEW_ACK_TOKEN_LENGTH
    assert all(len(links.ack_url(n)) <= len(largest) for n in (1, 999, 123_456, 9_999_999))
    assert placeholder_ack_url(PUBLIC_URL + "/").startswith(PUBLIC_URL + "/ack/x")
    shown = version_preview(content(), template="professional").channel("sms").text
    assert placeholder_ack_url(PUBLIC_URL) in shown


def test_a_withdrawal_preview_uses_the_withdrawal_template() -> None:
    body = content(withdrawal_reason="The lab retest found no nitazene.")
    shown = version_preview(body, template="professional", purpose="withdrawal", version=2)
    assert shown.template == WITHDRAWAL_TEMPLATE
    assert "WITHDRAWN" in shown.channel("sms").text
    assert "LDIS-12-v1" in shown.channel("email").text


def test_a_preview_fails_as_loudly_as_the_send_would() -> None:
    with pytest.raises(TemplateFieldMissing) as raised:
        version_preview(content(), template="update", purpose="update", version=2)
    assert raised.value.field == "fields.what_changed"
    with pytest.raises(TemplateFieldMissing):
        version_preview(content(what_changed="  "), template="update", purpose="update")


def test_exercise_marking_shows_in_the_preview_and_its_cost() -> None:
    plain = version_preview(content()).channel("sms")
    marked = version_preview(content(), exercise=True).channel("sms")
    assert marked.text.startswith(EXERCISE_START)
    assert plain.sms is not None and marked.sms is not None
    assert marked.sms.units > plain.sms.units
    assert marked.sms.encoding == "GSM-7"


# --- the preview is what goes out ------------------------------------------------------------


def claimed(
    channel: str,
    body: dict[str, Any],
    *,
    version: int = 1,
    template: str = "public",
    purpose: str | None = None,
) -> Claimed:
    return Claimed(
        delivery_id=4321,
        channel=channel,
        address="+447700900123" if channel == "sms" else "duty@example.org",
        contact_name="Duty worker",
        alert_id=12,
        version=version,
        template=template,
        content=body,
        contact_id=8,
        link_version=1,
        purpose=purpose or ("update" if version > 1 else "alert"),
    )


@pytest.mark.parametrize("template", ["professional", "public"])
@pytest.mark.parametrize("version", [1, 2])
def test_compose_sends_what_the_preview_showed(template: str, version: int) -> None:
    links = Links("a-secret-key-of-realistic-length-0123456789", PUBLIC_URL)
    body = content(what_changed="Also found in blue M30 tablets.")
    shown = version_preview(
        body,
        template=template,
        purpose="update" if version > 1 else "alert",
        version=version,
    )
    real_ack = links.ack_url(4321)
    placeholder = placeholder_ack_url(PUBLIC_URL)
    sms = compose(claimed("sms", body, version=version, template=template), renderer, links)
    assert sms.text == shown.channel("sms").text.replace(placeholder, real_ack)
    email = compose(claimed("email", body, version=version, template=template), renderer, links)
    assert email.subject == shown.channel("email").subject
    # The real e-mail adds only the contact's own preferences link.
    preferences = links.preferences_url(8, 1)
    assert preferences in email.text and preferences not in shown.channel("email").text
    expected = shown.channel("email").text.replace(placeholder, real_ack)
    assert email.text.replace(f"\n\nChange what you receive: {preferences}", "") == expected


def test_compose_takes_the_purpose_and_exercise_it_is_given() -> None:
    links = Links("k" * 40, PUBLIC_URL)
    body = content(withdrawal_reason="Sample retested: no nitazene.")
    default = compose(claimed("sms", body, version=2), renderer, links)
    assert default.text.startswith("UPDATE")
    withdrawn = compose(claimed("sms", body, version=2), renderer, links, purpose="withdrawal")
    assert "WITHDRAWN" in withdrawn.text and "LDIS-12-v1" in withdrawn.text
    stored = compose(claimed("sms", body, version=3, purpose="withdrawal"), renderer, links)
    assert "WITHDRAWN" in stored.text and "LDIS-12-v2" in stored.text
    exercise = compose(claimed("email", body), renderer, links, exercise=True)
    assert exercise.subject and exercise.subject.startswith("EXERCISE EXERCISE EXERCISE: ")
    assert exercise.text.startswith(EXERCISE_START)
    by_kind = {**body, "kind": AlertKind.exercise.value}
    assert compose(claimed("sms", by_kind), renderer, links).text.startswith(EXERCISE_START)
    overruled = compose(claimed("sms", by_kind), renderer, links, exercise=False)
    assert not overruled.text.startswith(EXERCISE_START)


def test_the_context_of_a_send_carries_the_contact() -> None:
    ctx = message_context(
        content(),
        alert_id=1,
        version=1,
        purpose="alert",
        exercise=False,
        ack_url="u",
        previous_version=None,
        contact_name="Jo",
        preferences_url="p",
    )
    shown = preview(renderer, "professional", ctx)
    assert "Change what you receive: p" in shown.channel("email").text
