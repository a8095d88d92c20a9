"""Who an alert reaches: the hierarchy, neighbours, what services and contacts want, which
channels count, why a service is missed, and when quiet hours end (UK time, clock changes)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, time

import pytest

from ldis.domain.audience import (
    AudienceQuery,
    ChannelFacts,
    ContactFacts,
    MissReason,
    alert_area_ids,
    ancestry,
    areas_overlap,
    channel_usable,
    contact_willing,
    has_address,
    miss_reason,
    not_before,
    overlapping_area_ids,
    quiet_until,
    service_wants,
)
from ldis.domain.errors import ValidationFailed
from ldis.domain.validation import parse

# 1 county -> 2 district -> 3 ward, 6 ward; 4 another district; 5 another county -> 7 district
PARENT: dict[int, int | None] = {1: None, 2: 1, 3: 2, 6: 2, 4: 1, 5: None, 7: 5}


def test_ancestry_runs_to_the_root_and_survives_cycles() -> None:
    assert ancestry(3, PARENT) == [3, 2, 1]
    assert ancestry(7, {7: 8, 8: 7}) == [7, 8]


def test_overlap_is_up_or_down_the_tree_never_sideways() -> None:
    assert areas_overlap(1, 3, PARENT) and areas_overlap(3, 1, PARENT)
    assert not areas_overlap(3, 4, PARENT)
    assert not areas_overlap(1, 5, PARENT)


def test_a_district_alert_reaches_its_county_its_wards_but_no_sibling() -> None:
    # Ancestors (a county-wide service) and descendants (a ward service) both count.
    assert overlapping_area_ids([2], PARENT) == {1, 2, 3, 6}


def test_a_ward_alert_reaches_up_the_tree_only() -> None:
    assert overlapping_area_ids([3], PARENT) == {3, 2, 1}


def test_a_county_alert_reaches_everything_below_it() -> None:
    assert overlapping_area_ids([1], PARENT) == {1, 2, 3, 4, 6}
    assert overlapping_area_ids([1, 5], PARENT) == set(PARENT)


def test_overlap_set_agrees_with_the_pairwise_rule() -> None:
    for alert in PARENT:
        expected = {a for a in PARENT if areas_overlap(a, alert, PARENT)}
        assert overlapping_area_ids([alert], PARENT) == expected


def test_a_cycle_in_bad_data_does_not_hang() -> None:
    assert overlapping_area_ids([7], {7: 8, 8: 7}) == {7, 8}


def test_neighbours_count_only_when_asked_for() -> None:
    neighbours = {4: [7], 7: [4]}
    assert alert_area_ids([4], neighbours, include_neighbours=False) == {4}
    assert alert_area_ids([4], neighbours, include_neighbours=True) == {4, 7}
    # A neighbour of a neighbour is not pulled in: links are one step.
    assert alert_area_ids([3], {3: [4], 4: [7]}, include_neighbours=True) == {3, 4}
    # A neighbouring district brings its own county-wide services and wards into scope.
    assert overlapping_area_ids(alert_area_ids([4], neighbours, True), PARENT) == {1, 4, 5, 7}


def test_services_choose_levels_and_kinds() -> None:
    both = ["professional", "public"]
    assert service_wants(both, [], "public", "cluster")  # no kinds chosen: every kind
    assert not service_wants(["professional"], [], "public", "drug_alert")
    assert service_wants(both, ["drug_alert"], "professional", "drug_alert")
    assert not service_wants(both, ["drug_alert"], "professional", "exercise")


def test_contacts_and_channels_that_count() -> None:
    assert contact_willing(ContactFacts(opted_out=False, unsubscribed=False))
    assert not contact_willing(ContactFacts(opted_out=True, unsubscribed=False))
    assert not contact_willing(ContactFacts(opted_out=False, unsubscribed=True))
    assert has_address("sms", "+447700900123", None) and not has_address("sms", None, "a@b.org")
    assert has_address("email", None, "a@b.org") and not has_address("fax", "1", "a@b.org")
    assert not has_address("email", None, "")
    usable = [
        facts
        for facts in map(ChannelFacts._make, itertools.product([False, True], repeat=4))
        if channel_usable(facts)
    ]
    # Of the sixteen states, only proven, no STOP, no failure and an address will do.
    assert usable == [ChannelFacts(verified=True, opted_out=False, failed=False, addressed=True)]


@pytest.mark.parametrize(
    ("contacts", "willing", "verified", "reason"),
    [
        (0, 0, 0, MissReason.no_contacts),
        (2, 2, 0, MissReason.no_verified_channel),
        (2, 0, 0, MissReason.opted_out_or_failing),  # everyone opted out or unsubscribed
        (2, 1, 1, MissReason.opted_out_or_failing),  # verified channels, all STOP or failing
    ],
)
def test_why_a_service_is_missed(
    contacts: int, willing: int, verified: int, reason: MissReason
) -> None:
    assert miss_reason(contacts, willing, verified) is reason


def test_the_query_normalises_codes_and_refuses_unknown_fields() -> None:
    query = parse(
        AudienceQuery,
        {"areas": [" selby", "SELBY"], "service_types": ["Pharmacy"], "level": "public"},
    )
    assert query.areas == ["SELBY"] and query.service_types == ["pharmacy"]
    assert query.kind == "drug_alert" and not query.include_neighbours
    with pytest.raises(ValidationFailed) as refused:
        parse(AudienceQuery, {"areas": [], "level": "loud", "colour": "red"})
    assert set(refused.value.fields) == {"areas", "level", "colour"}


# --- quiet hours ----------------------------------------------------------------------------

NIGHT = (time(22, 0), time(7, 0))
LUNCH = (time(12, 0), time(13, 30))


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_outside_quiet_hours_nothing_waits() -> None:
    assert quiet_until(*NIGHT, utc(2026, 11, 23, 12, 0)) is None
    assert quiet_until(*NIGHT, utc(2026, 11, 23, 7, 0)) is None  # the end is not quiet
    assert quiet_until(None, None, utc(2026, 11, 23, 23, 0)) is None
    assert quiet_until(time(9), time(9), utc(2026, 11, 23, 9, 0)) is None


def test_quiet_hours_spanning_midnight_end_the_next_morning() -> None:
    # 23:30 GMT on a winter evening: quiet until 07:00 tomorrow.
    assert quiet_until(*NIGHT, utc(2026, 11, 23, 23, 30)) == utc(2026, 11, 24, 7, 0)
    assert quiet_until(*NIGHT, utc(2026, 11, 23, 22, 0)) == utc(2026, 11, 24, 7, 0)
    # 03:00 after midnight: quiet until 07:00 the same day.
    assert quiet_until(*NIGHT, utc(2026, 11, 24, 3, 0)) == utc(2026, 11, 24, 7, 0)


def test_quiet_hours_within_one_day() -> None:
    assert quiet_until(*LUNCH, utc(2026, 11, 23, 12, 15)) == utc(2026, 11, 23, 13, 30)
    assert quiet_until(*LUNCH, utc(2026, 11, 23, 11, 59)) is None


def test_quiet_hours_are_uk_local_time_in_summer() -> None:
    # 21:30 UTC in July is 22:30 BST: quiet; it ends 07:00 BST = 06:00 UTC.
    assert quiet_until(*NIGHT, utc(2026, 7, 1, 21, 30)) == utc(2026, 7, 2, 6, 0)
    # 21:30 UTC in November is 21:30 GMT: not yet quiet.
    assert quiet_until(*NIGHT, utc(2026, 11, 1, 21, 30)) is None


def test_the_night_clocks_go_back_is_an_hour_longer() -> None:
    # Sunday 25 October 2026, 02:00 BST -> 01:00 GMT. 23:00 BST Saturday = 22:00 UTC.
    approved = utc(2026, 10, 24, 22, 0)
    end = quiet_until(*NIGHT, approved)
    assert end == utc(2026, 10, 25, 7, 0)  # 07:00 GMT
    assert end is not None and (end - approved).total_seconds() == 9 * 3600


def test_the_night_clocks_go_forward_is_an_hour_shorter() -> None:
    # Sunday 29 March 2026, 01:00 GMT -> 02:00 BST. 23:00 GMT Saturday.
    approved = utc(2026, 3, 28, 23, 0)
    end = quiet_until(*NIGHT, approved)
    assert end == utc(2026, 3, 29, 6, 0)  # 07:00 BST
    assert end is not None and (end - approved).total_seconds() == 7 * 3600


def test_an_end_the_clocks_skip_lands_an_hour_on() -> None:
    # Quiet 00:00-01:30; at 00:45 GMT on 29 March the clock never shows 01:30: the end is
    # read in the old offset (01:30 GMT = 02:30 BST), as zoneinfo does.
    assert quiet_until(time(0), time(1, 30), utc(2026, 3, 29, 0, 45)) == utc(2026, 3, 29, 1, 30)


def test_urgent_alerts_ignore_quiet_hours() -> None:
    late = utc(2026, 11, 23, 23, 30)
    assert not_before("urgent", *NIGHT, late) is None
    assert not_before("standard", *NIGHT, late) == utc(2026, 11, 24, 7, 0)
    assert not_before("standard", None, None, late) is None
