"""Every shipped template renders for every channel, kind and purpose through the one context
builder; missing or blank fields fail loudly; exercises are marked on every part by code."""

from __future__ import annotations

from typing import Any

import pytest

from ldis.domain.alerts import AlertDraft, AlertKind
from ldis.domain.sms import WARN_OVER_SEGMENTS, SmsEncoding, sms_length
from ldis.messages.context import (
    PURPOSES,
    is_exercise,
    message_context,
    reference,
    template_for,
)
from ldis.messages.render import (
    EXERCISE_END,
    EXERCISE_START,
    EXERCISE_SUBJECT_PREFIX,
    PARTS,
    WITHDRAWAL_TEMPLATE,
    EmptyPart,
    Renderer,
    TemplateError,
    TemplateFieldMissing,
    UnknownTemplate,
)
from ldis.settings import PROJECT_ROOT

renderer = Renderer(PROJECT_ROOT / "alert_templates")
DRAFTER_TEMPLATES = ("professional", "public", "update")
ALL_TEMPLATES = (*DRAFTER_TEMPLATES, WITHDRAWAL_TEMPLATE)
ACK_URL = "https://ldis.example.org/ack/" + "x" * 42
PREFERENCES_URL = "https://ldis.example.org/preferences/" + "p" * 40

# Realistic wording and lengths, as a panel would draft them, one alert per kind.
FIELDS: dict[AlertKind, dict[str, str]] = {
    AlertKind.drug_alert: {
        "summary": "Drug checking in York found metonitazene, a nitazene opioid, in green "
        "tablets sold as oxycodone 80mg (marked OC 80).",
        "advice": "Treat any street oxycodone as possibly containing nitazenes. Carry more "
        "than one naloxone kit.",
    },
    AlertKind.cluster: {
        "summary": "Five suspected opioid overdoses in Hull city centre since Friday, two "
        "needing several doses of naloxone.",
        "advice": "Heroin in Hull may be much stronger than usual or contain nitazenes. Use "
        "less and test a small amount first.",
    },
    AlertKind.information: {
        "summary": "Xylazine, an animal sedative, has been found in heroin elsewhere in "
        "England. It has not been found locally so far.",
        "advice": "Watch for heavy, long sedation and wounds that will not heal. Naloxone "
        "still helps with the opioid.",
    },
    AlertKind.exercise: {
        "summary": "Exercise scenario: drug checking found a nitazene in yellow tablets sold "
        "as diazepam in Selby.",
        "advice": "Treat street benzos as possibly containing nitazenes. Carry naloxone and "
        "do not use alone.",
    },
}
OPTIONAL = {
    "location_detail": "Around the bus station and Piccadilly",
    "when": "Since Friday 20 November 2026",
    "appearance": "Green round tablets marked OC on one side and 80 on the other",
    "who_at_risk": "People buying pills online or on the street, including young people",
    "services_action": "Brief all outreach staff today and display the poster.",
    "how_to_report": "Phone the drug information line on 01904 000000.",
}
WHAT_CHANGED = "Now also found in blue M30 tablets. Two more overdoses reported."
WITHDRAWAL_REASON = "The lab retested the sample and found no nitazene."


def content(kind: AlertKind = AlertKind.drug_alert, **extra: str) -> dict[str, Any]:
    draft = AlertDraft.model_validate(
        {
            "title": "Nitazenes & <fake> oxy",
            "kind": kind,
            "priority": "urgent",
            "areas": ["YORK-C", "YORK-N"],
            "fields": {**FIELDS[kind], **extra},
            # An exercise goes only to the services taking part, and says so by its flag.
            **({"exercise": True, "participants": [3]} if kind is AlertKind.exercise else {}),
        }
    )
    return draft.content()


def context(
    body: dict[str, Any] | None = None,
    *,
    purpose: str = "alert",
    version: int | None = None,
    exercise: bool | None = None,
    contact: bool = True,
) -> dict[str, Any]:
    """The context of a send; an exercise alert is marked as one unless told otherwise."""
    number = version or (1 if purpose == "alert" else 2)
    body = body if body is not None else content()
    return message_context(
        body,
        alert_id=12,
        version=number,
        purpose=purpose,
        exercise=is_exercise(body) if exercise is None else exercise,
        ack_url=ACK_URL,
        previous_version=number - 1 if number > 1 else None,
        contact_name="Duty worker" if contact else None,
        preferences_url=PREFERENCES_URL if contact else None,
    )


def fields_for(template: str, purpose: str) -> dict[str, str]:
    extra: dict[str, str] = {}
    if template == "update" or purpose == "update":
        extra["what_changed"] = WHAT_CHANGED
    if purpose == "withdrawal":
        extra["withdrawal_reason"] = WITHDRAWAL_REASON
    return extra


def parts(channel: str, template: str, ctx: dict[str, Any]) -> dict[str, str]:
    rendered = renderer.render(channel, template, ctx)
    found = {"text": rendered.text, "subject": rendered.subject, "html": rendered.html}
    return {part: value for part, value in found.items() if value is not None}


# --- which templates exist --------------------------------------------------------------


def test_the_drafter_is_offered_every_template_but_the_withdrawal() -> None:
    offered = renderer.templates()
    assert set(DRAFTER_TEMPLATES) <= offered and WITHDRAWAL_TEMPLATE not in offered
    assert renderer.templates(include_system=True) == offered | {WITHDRAWAL_TEMPLATE}


def test_a_withdrawal_always_gets_the_withdrawal_template() -> None:
    assert template_for("withdrawal", "public") == WITHDRAWAL_TEMPLATE
    assert template_for("update", "public") == "public"
    assert template_for("alert", "professional") == "professional"


# --- every template, channel, kind and purpose ------------------------------------------


@pytest.mark.parametrize("purpose", PURPOSES)
@pytest.mark.parametrize("kind", list(AlertKind))
@pytest.mark.parametrize("template", DRAFTER_TEMPLATES)
@pytest.mark.parametrize("channel", sorted(PARTS))
def test_renders_for_every_channel_kind_and_purpose(
    channel: str, template: str, kind: AlertKind, purpose: str
) -> None:
    used = template_for(purpose, template)
    body = content(kind, **fields_for(template, purpose))
    ctx = context(body, purpose=purpose)
    rendered = renderer.render(channel, used, ctx)
    fields = FIELDS[kind]
    if used == WITHDRAWAL_TEMPLATE:
        assert WITHDRAWAL_REASON in rendered.text
        assert "WITHDRAWN" in rendered.text
        assert fields["summary"] not in rendered.text  # the withdrawn claim is not repeated
    else:
        assert fields["summary"] in rendered.text
        assert fields["advice"] in rendered.text
    if (channel, used) != ("sms", "public"):  # the public SMS leads with the summary
        assert "Nitazenes & <fake> oxy" in rendered.text
    for plain in (rendered.text, rendered.subject or ""):
        assert "&amp;" not in plain and "&lt;" not in plain and "&#39;" not in plain
        assert "None" not in plain and "\n\n\n" not in plain
    if channel == "email":
        assert rendered.subject and "\n" not in rendered.subject
        assert rendered.html and "Nitazenes &amp; &lt;fake&gt; oxy" in rendered.html
        assert "<fake>" not in rendered.html
        assert "None" not in rendered.html
        assert ACK_URL in rendered.text and ACK_URL in rendered.html
        assert PREFERENCES_URL in rendered.text and PREFERENCES_URL in rendered.html
    else:
        assert rendered.subject is None and rendered.html is None
        # GSM-7 fields and GSM-7 fixed text: one stray curly quote would show up here.
        assert sms_length(rendered.text).encoding is SmsEncoding.gsm7
        if used != "public":
            assert ACK_URL in rendered.text
        stop = "Reply STOP to opt out"
        if ctx["exercise"]:  # the exercise alert is marked, the marker ends it
            assert rendered.text.startswith(EXERCISE_START)
            assert rendered.text.endswith(f"{stop}\n{EXERCISE_END}")
        else:
            assert rendered.text.endswith(stop) and "EXERCISE" not in rendered.text
    if kind is AlertKind.exercise:
        assert rendered.text.startswith(EXERCISE_START)
        assert rendered.subject is None or rendered.subject.startswith(EXERCISE_SUBJECT_PREFIX)


@pytest.mark.parametrize("template", ALL_TEMPLATES)
def test_emails_without_a_contact_have_no_preferences_link(template: str) -> None:
    body = content(**fields_for(template, "withdrawal" if template == WITHDRAWAL_TEMPLATE else ""))
    rendered = renderer.render("email", template, context(body, contact=False))
    assert "preferences" not in rendered.text and "your alert settings" not in (rendered.html or "")
    assert "Change what you receive" not in rendered.text


def test_professional_alert_carries_the_standing_clinical_wording() -> None:
    ctx = context()
    email = renderer.render("email", "professional", ctx)
    for text in (email.text, email.html or ""):
        for words in (
            "pinpoint",
            "stopped breathing",
            "blue or grey lips",
            "unresponsive",
            "Nitazenes are synthetic opioids",
            "Extra doses may be needed for nitazenes",
            "nitazenes can outlast naloxone",
            "Call 999",
            "Local Drug Information System",
        ):
            assert words in text, words
    # The SMS keeps to what saves a life in the first minutes (the e-mail has the rest), so
    # that a typical alert fits in three segments.
    sms = renderer.render("sms", "professional", ctx).text
    for words in ("call 999", "naloxone", "extra doses"):
        assert words in sms, words


def test_professional_optional_fields_appear_only_when_given() -> None:
    bare = renderer.render("email", "professional", context())
    full = renderer.render("email", "professional", context(content(**OPTIONAL)))
    for value in OPTIONAL.values():
        assert value not in bare.text
        assert value in full.text
    for heading in ("WHEN", "WHO IS AT RISK"):
        assert f"\n{heading}\n" not in bare.text
        assert f"\n{heading}\n" in full.text
    # Defaults stand in for what services should do and how to report.
    assert "Check naloxone stocks" in bare.text and "Check naloxone stocks" not in full.text
    assert "Report any related overdose" in bare.text
    assert "Report any related overdose" not in full.text
    assert "Who is at risk" in (full.html or "") and "Who is at risk" not in (bare.html or "")


def test_professional_headings_follow_the_kind() -> None:
    def subject(kind: AlertKind) -> str:
        return renderer.render("email", "professional", context(content(kind))).subject or ""

    assert "drug alert" in subject(AlertKind.drug_alert)
    assert "overdose cluster alert" in subject(AlertKind.cluster)
    assert "information notice" in subject(AlertKind.information)
    text = renderer.render("email", "professional", context(content(AlertKind.cluster))).text
    assert "WHAT HAS HAPPENED" in text


# --- public SMS stays short ------------------------------------------------------------


@pytest.mark.parametrize(
    ("purpose", "exercise"),
    # An exercise update (the marker and what changed) may need a fourth segment: the
    # preview warns about it.
    [("alert", False), ("update", False), ("alert", True)],
)
@pytest.mark.parametrize("kind", list(AlertKind))
def test_public_sms_fits_three_segments(kind: AlertKind, purpose: str, exercise: bool) -> None:
    body = content(kind, **fields_for("public", purpose))
    text = renderer.render("sms", "public", context(body, purpose=purpose, exercise=exercise)).text
    length = sms_length(text)
    assert length.encoding is SmsEncoding.gsm7, length.non_gsm
    assert length.segments <= WARN_OVER_SEGMENTS, (length, text)
    for words in ("Don't use alone", "start low, go slow", "carry naloxone", "Call 999"):
        assert words in text


@pytest.mark.parametrize("kind", list(AlertKind))
def test_professional_sms_fits_three_segments_for_a_short_alert(kind: AlertKind) -> None:
    """With the overdose signs and the acknowledgement link it carries, a professional SMS
    fits three segments for a short summary and advice (longer ones get the warning)."""
    body = content(kind)
    body["fields"] = {
        "summary": "Green OC 80 tablets sold as oxycodone contain metonitazene, a nitazene.",
        "advice": "Carry extra naloxone: more than one dose may be needed.",
    }
    text = renderer.render("sms", "professional", context(body, exercise=False)).text
    assert sms_length(text).segments <= WARN_OVER_SEGMENTS


@pytest.mark.parametrize("template", ALL_TEMPLATES)
def test_fixed_sms_text_is_gsm7(template: str) -> None:
    """Fields of plain letters only: anything outside GSM-7 comes from the template."""
    body = AlertDraft.model_validate(
        {
            "title": "T",
            "areas": ["A"],
            "fields": {
                "summary": "s",
                "advice": "a",
                "what_changed": "w",
                "withdrawal_reason": "r",
            },
        }
    ).content()
    for purpose in ("alert", "update"):
        text = renderer.render("sms", template, context(body, purpose=purpose)).text
        assert sms_length(text).non_gsm == ()


# --- updates and withdrawals say so ------------------------------------------------------


@pytest.mark.parametrize("template", ["professional", "public"])
def test_updates_say_so(template: str) -> None:
    ctx = context(content(what_changed=WHAT_CHANGED), purpose="update")
    sms = renderer.render("sms", template, ctx)
    email = renderer.render("email", template, ctx)
    assert sms.text.startswith("UPDATE")
    assert WHAT_CHANGED in sms.text
    assert (email.subject or "").startswith("UPDATE")
    assert "UPDATE" in email.text and WHAT_CHANGED in email.text
    assert "UPDATE" in (email.html or "") and WHAT_CHANGED in (email.html or "")
    first = renderer.render("sms", template, context(content(what_changed=WHAT_CHANGED)))
    assert "UPDATE" not in first.text
    assert WHAT_CHANGED not in first.text  # what changed means nothing on a first alert


def test_the_update_template_names_the_earlier_reference() -> None:
    ctx = context(content(what_changed=WHAT_CHANGED), purpose="update", version=3)
    assert ctx["previous_reference"] == "LDIS-12-v2"
    for channel in PARTS:
        for part, value in parts(channel, "update", ctx).items():
            assert "UPDATE" in value, part
            assert "LDIS-12-v2" in value, part
        assert WHAT_CHANGED in renderer.render(channel, "update", ctx).text


def test_the_update_template_copes_with_no_earlier_version() -> None:
    ctx = context(content(what_changed=WHAT_CHANGED), purpose="alert", version=1)
    assert ctx["previous_reference"] is None
    for channel in PARTS:
        for value in parts(channel, "update", ctx).values():
            assert "UPDATE to an earlier alert" in value or "an earlier alert" in value
            assert "None" not in value


def test_withdrawal_says_so_with_title_reference_and_reason() -> None:
    ctx = context(content(withdrawal_reason=WITHDRAWAL_REASON), purpose="withdrawal", version=3)
    assert ctx["is_withdrawal"] and not ctx["is_update"]
    for channel in PARTS:
        for part, value in parts(channel, WITHDRAWAL_TEMPLATE, ctx).items():
            assert "WITHDRAWN" in value, part
            assert "LDIS-12-v2" in value, part
        text = renderer.render(channel, WITHDRAWAL_TEMPLATE, ctx).text
        assert WITHDRAWAL_REASON in text
        assert "stop sharing" in text.lower()
    email = renderer.render("email", WITHDRAWAL_TEMPLATE, ctx)
    assert 'The alert "Nitazenes & <fake> oxy" (LDIS-12-v2) is WITHDRAWN.' in email.text
    assert "WHAT SERVICES SHOULD DO NOW" in email.text


# --- loud failures ------------------------------------------------------------------------


@pytest.mark.parametrize("channel", sorted(PARTS))
@pytest.mark.parametrize(
    ("template", "field"),
    [("update", "fields.what_changed"), (WITHDRAWAL_TEMPLATE, "fields.withdrawal_reason")],
)
def test_a_missing_required_field_is_named(channel: str, template: str, field: str) -> None:
    with pytest.raises(TemplateFieldMissing) as raised:
        renderer.render(channel, template, context(purpose="update"))
    assert raised.value.field == field
    assert field in str(raised.value) and "missing" in str(raised.value)
    assert not raised.value.blank


@pytest.mark.parametrize("template", ALL_TEMPLATES)
@pytest.mark.parametrize("channel", sorted(PARTS))
@pytest.mark.parametrize("field", ["summary", "advice"])
def test_missing_summary_or_advice_is_named(channel: str, template: str, field: str) -> None:
    body = content(what_changed=WHAT_CHANGED, withdrawal_reason=WITHDRAWAL_REASON)
    del body["fields"][field]
    if template == WITHDRAWAL_TEMPLATE:  # the withdrawal does not repeat the alert's claims
        assert renderer.render(channel, template, context(body, purpose="withdrawal")).text
        return
    with pytest.raises(TemplateFieldMissing) as raised:
        renderer.render(channel, template, context(body))
    assert raised.value.field == f"fields.{field}"


@pytest.mark.parametrize("channel", sorted(PARTS))
def test_missing_context_values_are_named_too(channel: str) -> None:
    no_reference = {k: v for k, v in context().items() if k != "reference"}
    with pytest.raises(TemplateFieldMissing) as raised:
        renderer.render(channel, "professional", no_reference)
    assert raised.value.field == "reference"
    body = content()
    del body["title"]
    with pytest.raises(TemplateFieldMissing) as raised:
        renderer.render(channel, "professional", context(body))
    assert raised.value.field == "alert.title"


@pytest.mark.parametrize("blank", ["", "   ", "\n\t ", None])
@pytest.mark.parametrize("field", ["summary", "what_changed", "appearance"])
@pytest.mark.parametrize("channel", sorted(PARTS))
def test_a_blank_field_fails_and_is_named(channel: str, field: str, blank: str | None) -> None:
    body = content(what_changed=WHAT_CHANGED)
    body["fields"][field] = blank
    for template in ("professional", "update"):
        with pytest.raises(TemplateFieldMissing) as raised:
            renderer.render(channel, template, context(body, purpose="update"))
        assert raised.value.field == f"fields.{field}"
        assert raised.value.blank and "blank" in str(raised.value)


def test_a_blank_item_in_a_list_field_is_named() -> None:
    body = content()
    body["fields"]["substances"] = ["metonitazene", " "]
    with pytest.raises(TemplateFieldMissing) as raised:
        renderer.render("sms", "professional", context(body))
    assert raised.value.field == "fields.substances.1"


@pytest.mark.parametrize("name", ["sonnet", "../email/professional", "Professional", "", "shared"])
def test_an_unknown_template_is_refused_clearly(name: str) -> None:
    with pytest.raises(UnknownTemplate) as raised:
        renderer.render("sms", name, context())
    assert repr(name) in str(raised.value)
    assert isinstance(raised.value, TemplateError)


def test_an_unknown_channel_is_refused_clearly() -> None:
    with pytest.raises(UnknownTemplate, match="'fax'"):
        renderer.render("fax", "professional", context())


def test_a_part_that_renders_empty_is_refused(tmp_path: Any) -> None:
    for channel, names in PARTS.items():
        (tmp_path / channel).mkdir()
        for part in names:
            body = "{% if false %}x{% endif %}" if part == "text" else "{{ fields.summary }}"
            (tmp_path / channel / f"hollow.{part}.j2").write_text(body)
    with pytest.raises(EmptyPart, match=r"sms/hollow\.text"):
        Renderer(tmp_path).render("sms", "hollow", context())


# --- exercises are marked by code, on every part --------------------------------------------


@pytest.mark.parametrize("template", ALL_TEMPLATES)
@pytest.mark.parametrize("channel", sorted(PARTS))
def test_exercise_marks_every_part(channel: str, template: str) -> None:
    purpose = "withdrawal" if template == WITHDRAWAL_TEMPLATE else "update"
    body = content(AlertKind.exercise, what_changed=WHAT_CHANGED, withdrawal_reason="r")
    marked = parts(channel, template, context(body, purpose=purpose, exercise=True))
    plain = parts(channel, template, context(body, purpose=purpose, exercise=False))
    assert set(marked) == set(PARTS[channel])
    assert marked["text"].startswith(EXERCISE_START + "\n")
    assert marked["text"].endswith("\n" + EXERCISE_END)
    assert plain["text"] in marked["text"]
    if channel == "email":
        assert marked["subject"] == EXERCISE_SUBJECT_PREFIX + plain["subject"]
        html = marked["html"]
        body_at, end_at = html.index("<body"), html.index("</body>")
        start_at = html.index(EXERCISE_START)
        assert body_at < start_at < html.index("<h1")  # at the top, inside the body
        assert html.index("Confirm you have received") < html.rindex(EXERCISE_END)
        assert html.rindex(EXERCISE_END) < end_at  # at the bottom, inside the body
    for value in plain.values():
        assert "EXERCISE EXERCISE" not in value and EXERCISE_END not in value


def test_exercise_marker_is_gsm7_and_escaped_in_html() -> None:
    assert sms_length(EXERCISE_START + EXERCISE_END + EXERCISE_SUBJECT_PREFIX).non_gsm == ()
    html = renderer.render("email", "public", context(exercise=True)).html or ""
    assert html.count(EXERCISE_START) == 1 and html.count(EXERCISE_END) == 1


def test_exercise_is_known_by_flag_or_by_kind() -> None:
    assert is_exercise(content(AlertKind.exercise))
    assert is_exercise({**content(), "exercise": True})
    assert is_exercise({**content(), "kind": "exercise"})  # stored before the flag existed
    assert not is_exercise(content(AlertKind.drug_alert))


# --- user text is escaped in HTML only -------------------------------------------------------


@pytest.mark.parametrize("template", ALL_TEMPLATES)
def test_html_escapes_every_user_field(template: str) -> None:
    evil = '<script>alert("x")</script>'
    values = {
        **{key: f"{key} {evil}" for key in OPTIONAL},
        "what_changed": f"changed {evil}",
        "withdrawal_reason": f"reason {evil}",
        "withdrawal_action": f"action {evil}",
    }
    body = content(**values)
    body["fields"]["summary"] = f"summary {evil}"
    body["fields"]["advice"] = f"advice {evil}"
    body["title"] = f"title {evil}"
    purpose = "withdrawal" if template == WITHDRAWAL_TEMPLATE else "update"
    rendered = renderer.render("email", template, context(body, purpose=purpose))
    html = rendered.html or ""
    assert "<script" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert evil in rendered.text  # plain text is not mangled
    assert evil in (rendered.subject or "")


# --- the context every template can rely on ----------------------------------------------------


def test_the_context_builder() -> None:
    body = content(AlertKind.cluster)
    ctx = message_context(
        body,
        alert_id=7,
        version=3,
        purpose="update",
        exercise=False,
        ack_url=ACK_URL,
        previous_version=2,
    )
    assert ctx == {
        "alert": body,
        "fields": body["fields"],
        "kind": "cluster",
        "version": 3,
        "purpose": "update",
        "is_update": True,
        "is_withdrawal": False,
        "exercise": False,
        "reference": "LDIS-7-v3",
        "previous_reference": "LDIS-7-v2",
        "ack_url": ACK_URL,
    }
    assert "contact_name" not in ctx and "preferences_url" not in ctx
    with_contact = context()
    assert with_contact["contact_name"] == "Duty worker"
    assert with_contact["preferences_url"] == PREFERENCES_URL
    assert with_contact["previous_reference"] is None and not with_contact["is_update"]
    assert reference(3, 1) == "LDIS-3-v1"


def test_the_context_defaults_the_kind_of_old_content() -> None:
    body = {k: v for k, v in content().items() if k != "kind"}
    assert context(body)["kind"] == "drug_alert"
    assert renderer.render("sms", "professional", context(body)).text


def test_the_context_refuses_an_unknown_purpose() -> None:
    with pytest.raises(ValueError, match="purpose"):
        context(purpose="retraction")
