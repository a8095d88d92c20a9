"""The dashboard's arithmetic: periods and UK weeks, percentiles, shares and rates."""

from __future__ import annotations

import statistics
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ldis.domain.figures import (
    DECISION_TARGET_HOURS,
    MAX_PERIOD_DAYS,
    URGENT_DECISION_TARGET_HOURS,
    Period,
    Share,
    default_period,
    hours,
    median,
    percentile,
    previous_quarter,
    quarter_of,
    quarter_period,
    rate,
    seconds_between,
    share_within,
    uk_midnight,
    week_index,
    week_start,
    weekly_counts,
)

durations = st.lists(
    st.floats(min_value=0, max_value=1e7, allow_nan=False, allow_infinity=False), min_size=1
)


def test_the_targets_are_48_and_24_hours() -> None:
    assert (DECISION_TARGET_HOURS, URGENT_DECISION_TARGET_HOURS) == (48, 24)


def test_uk_midnight_follows_the_clock_changes() -> None:
    assert uk_midnight(date(2026, 1, 5)) == datetime(2026, 1, 5, tzinfo=UTC)
    assert uk_midnight(date(2026, 7, 6)) == datetime(2026, 7, 5, 23, tzinfo=UTC)


def test_weeks_start_on_monday_and_are_cut_at_the_period_ends() -> None:
    period = Period(date(2026, 7, 1), date(2026, 7, 15))  # Wednesday to Wednesday
    weeks = period.weeks()
    assert [w.monday for w in weeks] == [date(2026, 6, 29), date(2026, 7, 6), date(2026, 7, 13)]
    assert (weeks[0].first_day, weeks[0].last_day, weeks[0].partial) == (
        date(2026, 7, 1),
        date(2026, 7, 5),
        True,
    )
    assert not weeks[1].partial
    assert (weeks[2].first_day, weeks[2].last_day) == (date(2026, 7, 13), date(2026, 7, 15))
    assert period.boundaries() == [
        datetime(2026, 6, 30, 23, tzinfo=UTC),
        datetime(2026, 7, 5, 23, tzinfo=UTC),
        datetime(2026, 7, 12, 23, tzinfo=UTC),
        datetime(2026, 7, 15, 23, tzinfo=UTC),
    ]
    assert (period.start, period.end) == (period.boundaries()[0], period.boundaries()[-1])


def test_a_week_across_the_autumn_clock_change_is_an_hour_longer() -> None:
    period = Period(date(2026, 10, 19), date(2026, 11, 1))
    first, middle, end = period.boundaries()
    assert middle - first == timedelta(days=7, hours=1)  # clocks go back on Sunday 25 October
    assert end - middle == timedelta(days=7)


def test_week_index_puts_each_moment_in_its_uk_week() -> None:
    bounds = Period(date(2026, 7, 6), date(2026, 7, 19)).boundaries()
    assert week_index(datetime(2026, 7, 5, 22, 59, tzinfo=UTC), bounds) is None  # 5 Jul 23:59
    assert week_index(datetime(2026, 7, 5, 23, 0, tzinfo=UTC), bounds) == 0  # 6 Jul 00:00 BST
    assert week_index(datetime(2026, 7, 12, 22, 59, tzinfo=UTC), bounds) == 0
    assert week_index(datetime(2026, 7, 12, 23, 0, tzinfo=UTC), bounds) == 1  # 13 Jul 00:00
    assert week_index(datetime(2026, 7, 19, 22, 59, tzinfo=UTC), bounds) == 1
    assert week_index(datetime(2026, 7, 19, 23, 0, tzinfo=UTC), bounds) is None
    assert week_index(datetime(2026, 7, 8, tzinfo=UTC), []) is None


@given(st.lists(st.datetimes(min_value=datetime(2026, 6, 1), max_value=datetime(2026, 9, 1))))
def test_weekly_counts_count_every_moment_in_the_period_once(moments: list[datetime]) -> None:
    period = Period(date(2026, 6, 10), date(2026, 8, 20))
    aware = [m.replace(tzinfo=UTC) for m in moments]
    counts = weekly_counts(aware, period.boundaries())
    assert len(counts) == len(period.weeks())
    assert sum(counts) == sum(1 for m in aware if period.start <= m < period.end)


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)))
def test_week_start_is_the_monday_on_or_before(day: date) -> None:
    monday = week_start(day)
    assert monday.weekday() == 0 and 0 <= (day - monday).days <= 6


@given(st.dates(min_value=date(2000, 3, 1), max_value=date(2100, 1, 1)))
def test_default_period_is_twelve_weeks_ending_today(today: date) -> None:
    period = default_period(today)
    assert period.last == today and period.first.weekday() == 0
    assert len(period.weeks()) == 12


def test_quarters() -> None:
    q3 = quarter_period("2026-Q3")
    assert (q3.first, q3.last, q3.label) == (date(2026, 7, 1), date(2026, 9, 30), "2026-Q3")
    q4 = quarter_period(" 2026q4 ")
    assert (q4.first, q4.last, q4.label) == (date(2026, 10, 1), date(2026, 12, 31), "2026-Q4")
    assert quarter_period("2024-Q1").last == date(2024, 3, 31)
    for bad in ("2026-Q5", "2026", "Q3-2026", "1999-Q1", ""):
        with pytest.raises(ValueError, match="quarter"):
            quarter_period(bad)
    assert quarter_of(date(2026, 11, 30)) == "2026-Q4"
    assert previous_quarter(date(2026, 11, 30)).label == "2026-Q3"
    assert previous_quarter(date(2027, 1, 1)).label == "2026-Q4"


def test_periods_refuse_backwards_and_overlong_spans() -> None:
    with pytest.raises(ValueError, match="end on or after"):
        Period(date(2026, 7, 2), date(2026, 7, 1))
    Period(date(2026, 1, 1), date(2026, 1, 1) + timedelta(days=MAX_PERIOD_DAYS - 1))
    with pytest.raises(ValueError, match="at most"):
        Period(date(2026, 1, 1), date(2026, 1, 1) + timedelta(days=MAX_PERIOD_DAYS))


def test_percentiles_interpolate_between_ranks() -> None:
    assert median([]) is None and percentile([], 90) is None
    assert median([7]) == 7 and percentile([7], 90) == 7
    assert median([2, 50, 30, 10]) == 20
    assert percentile([2, 50, 30, 10], 90) == pytest.approx(44)
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90) == pytest.approx(9.1)
    assert percentile([3, 1, 2], 0) == 1 and percentile([3, 1, 2], 100) == 3
    with pytest.raises(ValueError):
        percentile([1], 101)


@given(durations)
def test_median_is_the_statistics_median(values: list[float]) -> None:
    assert median(values) == pytest.approx(statistics.median(values))


@given(durations.filter(lambda v: len(v) >= 2))
def test_p90_is_the_inclusive_decile(values: list[float]) -> None:
    expected = statistics.quantiles(values, n=10, method="inclusive")[8]
    assert percentile(values, 90) == pytest.approx(expected, rel=1e-9, abs=1e-6)


@given(durations, st.floats(0, 100), st.floats(0, 100))
def test_percentiles_are_ordered_and_inside_the_values(
    values: list[float], p: float, q: float
) -> None:
    low, high = sorted((p, q))
    a, b = percentile(values, low), percentile(values, high)
    assert a is not None and b is not None
    assert min(values) <= a <= b + 1e-6 and b <= max(values)
    assert percentile(list(reversed(values)), high) == b


def test_shares_within_a_target_count_the_limit_as_met() -> None:
    hour = 3600.0
    share = share_within([2 * hour, 48 * hour, 48 * hour + 1, 30 * hour], 48)
    assert share == Share(met=3, total=4) and share.percent == 75.0
    assert share_within([], 24) == Share(0, 0) and Share(0, 0).percent is None
    assert Share(1, 3).percent == 33.3 and Share(2, 3).percent == 66.7


@given(st.lists(st.floats(0, 1e6), max_size=50), st.floats(0, 100))
def test_a_share_never_exceeds_its_total(values: list[float], limit: float) -> None:
    share = share_within(values, limit)
    assert 0 <= share.met <= share.total == len(values)
    if share.percent is not None:
        assert 0 <= share.percent <= 100


def test_rates_hours_and_durations() -> None:
    assert rate(5, 8) == 62.5 and rate(0, 2) == 0.0 and rate(3, 0) is None
    assert hours(178992) == 49.72 and hours(None) is None
    start = datetime(2026, 7, 6, tzinfo=UTC)
    assert seconds_between(start, start + timedelta(minutes=6)) == 360
    assert seconds_between(None, start) is None and seconds_between(start, None) is None
    assert seconds_between(start, start - timedelta(seconds=1)) is None
