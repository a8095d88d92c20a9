"""The partnership board's arithmetic, free of storage: periods and their weeks in UK time,
percentiles of durations, shares of cases within a target, and rates.

Weeks start on Monday at 00:00 UK time (Europe/London, so a week across a clock change is
an hour longer or shorter); a period's first and last weeks may be partial, cut at its ends.
Percentiles interpolate linearly between the two nearest ranks (the "inclusive" method:
`statistics.quantiles(..., method="inclusive")`, NumPy's default), so the median of an even
count is the mean of the middle two.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")

# The board's response targets, counted from the case's first report (see docs/dashboard.md).
DECISION_TARGET_HOURS = 48
URGENT_DECISION_TARGET_HOURS = 24

DEFAULT_WEEKS = 12
MAX_PERIOD_DAYS = 2 * 366  # two years: about 105 weekly buckets at most

_QUARTER = re.compile(r"^\s*(\d{4})\s*-?\s*Q([1-4])\s*$", re.IGNORECASE)


def uk_midnight(day: date) -> datetime:
    """The UTC instant at which `day` begins in the UK."""
    return datetime.combine(day, time.min, tzinfo=LONDON).astimezone(UTC)


def uk_day(moment: datetime) -> date:
    return moment.astimezone(LONDON).date()


def week_start(day: date) -> date:
    """The Monday of the week holding `day`."""
    return day - timedelta(days=day.weekday())


@dataclass(frozen=True)
class Week:
    """One weekly bucket: named by its Monday, cut to the period's first and last days."""

    monday: date
    first_day: date
    last_day: date

    @property
    def partial(self) -> bool:
        return (self.last_day - self.first_day).days < 6


@dataclass(frozen=True)
class Period:
    """UK days `first` to `last`, both included; `label` names a quarter ("2026-Q3")."""

    first: date
    last: date
    label: str | None = None

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise ValueError("the period must end on or after the day it starts")
        if (self.last - self.first).days + 1 > MAX_PERIOD_DAYS:
            raise ValueError(f"the period can be at most {MAX_PERIOD_DAYS} days long")

    @property
    def start(self) -> datetime:
        """The first instant in the period (UTC)."""
        return uk_midnight(self.first)

    @property
    def end(self) -> datetime:
        """The first instant after the period (UTC): periods are half-open [start, end)."""
        return uk_midnight(self.last + timedelta(days=1))

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def weeks(self) -> list[Week]:
        weeks = []
        monday = week_start(self.first)
        while monday <= self.last:
            weeks.append(
                Week(monday, max(monday, self.first), min(monday + timedelta(days=6), self.last))
            )
            monday += timedelta(days=7)
        return weeks

    def boundaries(self) -> list[datetime]:
        """The UTC instants cutting the period into its weeks: start, each later Monday's
        UK midnight, end. Week i holds the moments in [boundaries[i], boundaries[i + 1])."""
        weeks = self.weeks()
        return [uk_midnight(w.first_day) for w in weeks] + [self.end]


def default_period(today: date, weeks: int = DEFAULT_WEEKS) -> Period:
    """The last `weeks` weeks: from the Monday `weeks - 1` weeks before this one to today."""
    return Period(week_start(today) - timedelta(weeks=weeks - 1), today)


def quarter_period(text: str) -> Period:
    """A calendar quarter written like 2026-Q3 (Q1 is January to March)."""
    match = _QUARTER.match(text)
    if match is None:
        raise ValueError("must be a quarter like 2026-Q3")
    year, quarter = int(match.group(1)), int(match.group(2))
    if year < 2000:
        raise ValueError("must be a quarter in 2000 or later")
    first = date(year, 3 * quarter - 2, 1)
    after = date(year + 1, 1, 1) if quarter == 4 else date(year, 3 * quarter + 1, 1)
    return Period(first, after - timedelta(days=1), f"{year}-Q{quarter}")


def quarter_of(day: date) -> str:
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def previous_quarter(today: date) -> Period:
    """The last calendar quarter that has ended."""
    current = quarter_period(quarter_of(today))
    return quarter_period(quarter_of(current.first - timedelta(days=1)))


def week_index(moment: datetime, boundaries: Sequence[datetime]) -> int | None:
    """Which week (index into the period's weeks) holds `moment`; None outside the period."""
    if not boundaries or moment < boundaries[0] or moment >= boundaries[-1]:
        return None
    return bisect_right(boundaries, moment) - 1


def weekly_counts(moments: Iterable[datetime], boundaries: Sequence[datetime]) -> list[int]:
    counts = [0] * max(len(boundaries) - 1, 0)
    for moment in moments:
        index = week_index(moment, boundaries)
        if index is not None:
            counts[index] += 1
    return counts


def percentile(values: Iterable[float], p: float) -> float | None:
    """The p-th percentile (0-100) by linear interpolation between the nearest ranks; None
    for no values."""
    if not 0 <= p <= 100:
        raise ValueError("p must be between 0 and 100")
    ordered = sorted(values)
    if not ordered:
        return None
    rank = (len(ordered) - 1) * p / 100
    below = math.floor(rank)
    above = min(below + 1, len(ordered) - 1)
    fraction = rank - below
    low, high = ordered[below], ordered[above]
    return low if fraction == 0 or low == high else low + (high - low) * fraction


def median(values: Iterable[float]) -> float | None:
    return percentile(values, 50)


@dataclass(frozen=True)
class Share:
    """How many of `total` cases met a target."""

    met: int
    total: int

    @property
    def percent(self) -> float | None:
        return rate(self.met, self.total)


def share_within(durations_seconds: Iterable[float], hours: float) -> Share:
    """The cases whose duration is at most `hours` (a case exactly on the limit met it)."""
    limit = hours * 3600
    values = list(durations_seconds)
    return Share(sum(1 for value in values if value <= limit), len(values))


def rate(part: int, whole: int) -> float | None:
    """`part` as a percentage of `whole`, to one decimal place; None when `whole` is 0."""
    if whole <= 0:
        return None
    return round(100 * part / whole, 1)


def seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    """Seconds from `start` to `end`; None when either is unknown or they run backwards
    (a clock or data error is left out rather than counted as instant)."""
    if start is None or end is None or end < start:
        return None
    return (end - start).total_seconds()


def hours(seconds: float | None, places: int = 2) -> float | None:
    return None if seconds is None else round(seconds / 3600, places)
