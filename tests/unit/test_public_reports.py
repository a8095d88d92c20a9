"""Public reports in plain Python: reading a text (command, area, substances, effects),
the rough time, the number's hash and seal, and the checks on the panel's texts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ldis.domain.errors import ValidationFailed
from ldis.domain.public_phone import phone_hash, seal_phone, unseal_phone
from ldis.domain.public_reports import (
    Effect,
    PublicAppearance,
    When,
    command,
    effects_in,
    find_area,
    find_substances,
    parse_public,
    when_moment,
)
from ldis.domain.public_texts import TEXTS, check_text, fill
from ldis.domain.substances import Vocabulary

AREAS = [("LEEDS", "Leeds"), ("LEEDS-C", "Leeds centre"), ("YO1", "York")]


@pytest.mark.parametrize(
    ("body", "word", "rest"),
    [
        ("REPORT green oxy 80s", "report", "green oxy 80s"),
        ("report: white pills", "report", "white pills"),
        ("  Join  Leeds centre ", "join", "Leeds centre"),
        ("REPORT", "report", ""),
    ],
)
def test_commands(body: str, word: str, rest: str) -> None:
    found = command(body)
    assert found is not None and (found.word, found.rest) == (word, rest)


@pytest.mark.parametrize("body", ["reporting in", "STOP", "JOINED", "ACK 12", ""])
def test_not_commands(body: str) -> None:
    assert command(body) is None


def test_the_longest_area_named_wins_and_codes_count() -> None:
    assert find_area("green oxy in Leeds centre tonight", AREAS) == "LEEDS-C"
    assert find_area("bad batch around leeds", AREAS) == "LEEDS"
    assert find_area("in yo1 near the station", AREAS) == "YO1"
    assert find_area("somewhere in Hull", AREAS) is None
    assert find_area("Leedsford", AREAS) is None, "whole words only"


def test_substances_named_in_text_skip_treatments_and_guesses() -> None:
    vocab = Vocabulary.load_default()
    found = find_substances("heroin with xylazine, gave naloxone, maybe fentanylz", vocab)
    assert found == ["heroin", "xylazine"]


def test_effects_in_everyday_words() -> None:
    assert effects_in("2 people went over fast, needed narcan") == [
        Effect.naloxone,
        Effect.passed_out,
    ]
    assert effects_in("someone died") == [Effect.died]
    assert effects_in("tasted odd") == []
    assert effects_in("he OD'd in the toilets") == [Effect.passed_out]


def test_rough_times() -> None:
    now = datetime(2026, 11, 30, 20, 0, 0, 123, tzinfo=UTC)
    assert when_moment(When.today, now) == now.replace(microsecond=0)
    assert when_moment(When.earlier, now).day == 16


def test_only_the_public_doors_and_no_personal_data_fields() -> None:
    body = {
        "kind": "public",
        "occurred_at": "2026-11-30T10:00:00Z",
        "source": {"type": "outreach"},
    }
    with pytest.raises(ValidationFailed) as refused:
        parse_public(body)
    assert "source" in refused.value.fields
    with pytest.raises(ValidationFailed) as unknown:
        parse_public({**body, "source": {"type": "public_web"}, "phone": "07700900123"})
    assert unknown.value.fields == {"phone": "is not a known field; remove it"}
    report = parse_public({**body, "source": {"type": "public_sms"}})
    assert report.area is None, "a text may not say where"
    free = report.model_copy(update={"appearance": PublicAppearance(packaging="x")})
    assert "appearance.packaging" in free.free_text()


def test_the_number_is_hashed_with_the_key_and_sealed() -> None:
    assert phone_hash("+447700900123", "k1") == phone_hash("+447700900123", "k1")
    assert phone_hash("+447700900123", "k1") != phone_hash("+447700900123", "k2")
    assert "7700900123" not in phone_hash("+447700900123", "k1")
    sealed = seal_phone("+447700900123", "k1")
    assert "7700900123" not in sealed
    assert unseal_phone(sealed, "k1") == "+447700900123"
    with pytest.raises(ValueError):
        unseal_phone(sealed, "k2")


def test_checks_on_the_panels_texts() -> None:
    assert check_text("sms_join_confirm", "Reply YES for alerts in {area}. STOP to stop.") is None
    assert "placeholders" in (check_text("sms_join_confirm", "Reply YES for {town}.") or "")
    assert "HTML" in (check_text("sms_help", "<b>help</b> me with this please") or "")
    assert "under 306" in (check_text("sms_help", "x" * 400) or "")
    assert check_text("nope", "text") == "unknown text 'nope'"
    assert "write the text" in (check_text("form_intro", "  ") or "")
    for key, spec in TEXTS.items():
        assert check_text(key, spec.default) is None, key
        assert "addict" not in spec.default.lower() and "abuse" not in spec.default.lower()
    assert fill("alerts for {area}", area="York") == "alerts for York"
