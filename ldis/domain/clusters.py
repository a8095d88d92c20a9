"""Cluster signals: more near misses or call-outs in one place, or one area, than its past explains.

Two prospective detectors; both look only at windows that end at `now` and at events known by
`now`, so running them after each new event is the same as replaying history (`recompute`).

- **Space-time scan** over points (areas play no part, so a cluster straddling two areas is
  found like any other). Candidate circles are centred on recent events and on the centroids of
  their neighbours, with radii through the events (min_radius_m .. max_radius_m, in 50 m steps)
  and windows that start at an event and end now (at most max_window_hours). The expected count
  in a circle comes from the same circle's own past (baseline_days, ending a guard band before
  the longest window), scaled to the window's length and floored at min_baseline_events. The
  test is conditional, so the past's own noise counts: of the n events in the window and its
  past, each lies in the window with probability q = expected / (expected + past), and
  p = P(Binomial(n, q) >= observed). That is multiplied by the number of cylinders of the same
  size that fit the area the data covers and the longest window, times the number of sizes
  tried: a scan looks everywhere, so a tight triple somewhere in a big city is ordinary.
- **Temporal**, per area: an ESSENCE-style EWMA of daily counts against the area's own mean
  and spread over temporal_baseline_days, a guard band of guard_band_days before the day under
  test (so a slowly building cluster does not raise its own baseline). Today's count so far is
  used as it stands: it can only grow, so firing on it early is safe. The run's count must also
  pass a Poisson test adjusted for the areas watched and the run lengths tried. An area spike
  the scan has already placed is not raised twice.

Events whose time of day is unknown (`time_known=False`, e.g. the Tempe open data) are taken
as spread over the 24 h starting at `at` (the caller sets `at` to the start of that local day):
such an event counts in any window its day touches, and its expected count grows by one day
accordingly; the temporal detector files it under the day containing `at + 12 h`.

A young system (less past than baseline_days) prices each circle on the past it has, but as
if it had at least min_history_days of it, so only strong bursts stand out until it has seen
a month; the temporal detector waits until an area's whole baseline lies within the data.
Import past call-outs before relying on a new deployment.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from operator import attrgetter
from typing import Literal

EARTH_RADIUS_M = 6_371_008.8
M_PER_DEG = EARTH_RADIUS_M * math.pi / 180
DAY = 86_400.0
HOUR = 3_600.0
RADIUS_STEP_M = 50.0
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


@dataclass(frozen=True)
class Event:
    """A near miss or a call-out."""

    id: int
    at: datetime  # tz-aware UTC (a naive value is read as UTC)
    lat: float | None
    lon: float | None
    area: str | None  # area code, may be None
    time_known: bool = True  # False: only the date is known; spread over [at, at + 24 h)


@dataclass(frozen=True)
class ClusterSettings:
    """Thresholds and windows; defaults chosen on Tempe, see docs/signals-clusters.md."""

    # Space-time scan.
    min_radius_m: float = 200.0  # smallest circle: locations are often rounded to a block
    max_radius_m: float = 1500.0  # largest circle; a neighbourhood, not a town
    max_window_hours: float = 48.0  # longest window the scan looks back over
    min_window_hours: float = 1.0  # shorter windows are priced as this long (no E = 0)
    baseline_days: int = 365  # past of each circle used for its expected count
    baseline_enough: int = 100  # ...or the last 30/90 days if they hold this many (busy places)
    min_history_days: int = 28  # a younger system prices circles as if it had this much past
    min_baseline_events: float = 1.0  # floor: a circle is priced as if it had this many
    min_events: int = 3  # fewest events in a space-time cluster
    alpha: float = 1e-3  # fire when the p-value, adjusted for the scan's looking, is at most this
    # Temporal detector (per area, daily counts).
    temporal_baseline_days: int = 28  # days of the area's own past giving its mean and spread
    guard_band_days: int = 2  # days left out between the window and its baseline (both)
    ewma_lambda: float = 0.4  # weight of the newest day in the EWMA
    ewma_threshold: float = 4.0  # fire when the EWMA is this many standard errors above
    temporal_min_rate: float = 0.25  # per day: floor on the mean used for the spread
    temporal_min_events: int = 5  # fewest events in a temporal cluster
    max_run_days: int = 7  # longest run of alarm days reported as one cluster
    # Wording.
    noun: str = "call-outs"  # plural used in summaries
    noun_one: str = "call-out"

    @property
    def history_days(self) -> int:
        """Days of events before `now` the caller must pass to detect() (more is harmless)."""
        scan = self.baseline_days + self.guard_band_days + math.ceil(self.max_window_hours / 24)
        temporal = self.temporal_baseline_days + self.guard_band_days + 2 * self.max_run_days
        return max(scan, temporal) + 2


@dataclass(frozen=True)
class Cluster:
    method: Literal["temporal", "spacetime"]
    area: str | None  # for temporal; for spacetime the area of most events, or None
    centre: tuple[float, float] | None  # lat, lon for spacetime
    radius_m: float | None
    start: datetime  # window covered (event time): earliest linked event (or day) .. now
    end: datetime
    observed: int
    expected: float
    p_value: float  # adjusted for how much was looked at (places and windows, or areas and runs)
    event_ids: tuple[int, ...]  # in event-time order, earliest first
    summary: str
    # Spacetime: id of the first event of the episode (the run of events near this circle with
    # no long quiet spell); may be older than the window. key() is built on it.
    episode: int | None = None

    def key(self) -> str:
        """Stable while the cluster grows: later events change neither its episode nor day."""
        if self.method == "temporal":
            return f"temporal:{self.area}:{self.start.date().isoformat()}"
        first = self.episode if self.episode is not None else (self.event_ids or (0,))[0]
        return f"spacetime:{first}"


def haversine_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance in metres between two (lat, lon) points."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def poisson_tail(k: int, mu: float) -> float:
    """P(X >= k) for X ~ Poisson(mu), accurate far out in the tail where signals live."""
    if k <= 0:
        return 1.0
    if mu <= 0:
        return 0.0
    if k <= mu:  # the bulk: one minus the lower sum loses nothing here
        term = total = math.exp(-mu)
        for j in range(1, k):
            term *= mu / j
            total += term
        return min(1.0, max(0.0, 1.0 - total))
    first = math.exp(-mu + k * math.log(mu) - math.lgamma(k + 1))
    term = total = 1.0
    j = k
    while term > 1e-17 * total:  # terms shrink geometrically once j > mu
        j += 1
        term *= mu / j
        total += term
    return min(1.0, first * total)


def _log_binomial_pmf(k: int, n: int, q: float) -> float:
    return (
        math.lgamma(n + 1)
        - math.lgamma(k + 1)
        - math.lgamma(n - k + 1)
        + k * math.log(q)
        + (n - k) * math.log1p(-q)
    )


def binomial_tail(k: int, n: int, q: float) -> float:
    """P(X >= k) for X ~ Binomial(n, q), summed upwards from k (accurate in the far tail)."""
    if k <= 0:
        return 1.0
    if k > n or q <= 0:
        return 0.0
    if q >= 1:
        return 1.0
    term = total = 1.0
    ratio = q / (1 - q)
    for j in range(k, n):
        term *= (n - j) / (j + 1) * ratio
        total += term
        if term < 1e-17 * total:
            break
    return min(1.0, math.exp(_log_binomial_pmf(k, n, q)) * total)


def _day(t: float) -> int:
    return int(t // DAY) + EPOCH_ORDINAL


def _stamp(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)


class _Pt:
    __slots__ = ("area", "day", "hi", "id", "lat", "lo", "lon")

    def __init__(self, event: Event) -> None:
        self.id = event.id
        self.lo = _aware(event.at).timestamp()
        # Its day is [at, at + 24 h): the last instant is a second short, so the day does not
        # touch a window that starts exactly at the next midnight.
        self.hi = self.lo + (0.0 if event.time_known else DAY - 1.0)
        self.lat = event.lat
        self.lon = event.lon
        self.area = event.area
        # Dates-only: `at` is local midnight, so midday falls on the right UTC date.
        self.day = _day(self.lo + (0.0 if event.time_known else DAY / 2))


def _first(pts: Sequence[_Pt]) -> _Pt:
    return min(pts, key=attrgetter("lo", "id"))


class _Index:
    """Events sorted by time, bucketed in a grid of max_radius_m cells and by area."""

    def __init__(self, events: Sequence[Event], settings: ClusterSettings) -> None:
        self.settings = settings
        self.pts = sorted(map(_Pt, events), key=attrgetter("lo", "id"))
        self.los = [p.lo for p in self.pts]
        self.start = self.los[0] if self.los else 0.0  # where the data (or the history) begins
        self.first_day = self.pts[0].day if self.pts else 0
        self.cell_lat = settings.max_radius_m / M_PER_DEG
        top = max((abs(p.lat) for p in self.pts if p.lat is not None), default=0.0)
        self.cell_lon = self.cell_lat / max(0.05, math.cos(math.radians(min(top, 87.0))))
        self.cells: dict[tuple[int, int], list[_Pt]] = defaultdict(list)
        self.areas: dict[str, list[_Pt]] = defaultdict(list)
        for p in self.pts:
            if p.lat is not None and p.lon is not None:
                cell = (math.floor(p.lat / self.cell_lat), math.floor(p.lon / self.cell_lon))
                self.cells[cell].append(p)
            if p.area is not None:
                self.areas[p.area].append(p)
        self.cell_los = {c: [p.lo for p in ps] for c, ps in self.cells.items()}
        self.area_los = {a: [p.lo for p in ps] for a, ps in self.areas.items()}

    def near(
        self, lat: float, lon: float, t0: float, t1: float, r: float
    ) -> list[tuple[float, _Pt]]:
        """(distance in m, event) for events within r (<= max_radius_m) with t0 <= lo < t1."""
        ky, kx = M_PER_DEG, M_PER_DEG * math.cos(math.radians(lat))
        r_lon = r / max(kx, 1.0)
        out: list[tuple[float, _Pt]] = []
        for cy in range(
            math.floor((lat - r / ky) / self.cell_lat),
            1 + math.floor((lat + r / ky) / self.cell_lat),
        ):
            for cx in range(
                math.floor((lon - r_lon) / self.cell_lon),
                1 + math.floor((lon + r_lon) / self.cell_lon),
            ):
                pts = self.cells.get((cy, cx))
                if not pts:
                    continue
                los = self.cell_los[(cy, cx)]
                for i in range(bisect_left(los, t0), bisect_left(los, t1)):
                    p = pts[i]
                    d = math.hypot((p.lat - lat) * ky, (p.lon - lon) * kx)  # type: ignore[operator]
                    if d <= r:
                        out.append((d, p))
        return out

    def occupied(self, t0: float, t1: float) -> int:
        """Grid cells with an event in [t0, t1]: the area the data covers, in cells."""
        return sum(
            1 for los in self.cell_los.values() if bisect_left(los, t0) < bisect_right(los, t1)
        )

    def baseline(self, lat: float, lon: float, t1: float) -> tuple[list[tuple[float, _Pt]], float]:
        """The circle's past up to t1 and its length in seconds: baseline_days, or the last 30
        or 90 days if they already hold baseline_enough events (a busy place needs no more, and
        reading less keeps one detection fast)."""
        s = self.settings
        past: list[tuple[float, _Pt]] = []
        done = 0
        for days in sorted({d for d in (30, 90) if d < s.baseline_days} | {s.baseline_days}):
            past += self.near(lat, lon, t1 - days * DAY, t1 - done * DAY, s.max_radius_m)
            done = days
            if len(past) >= s.baseline_enough:
                break
        # A young system has less past: price it on what there is, but never on less than
        # min_history_days (with min_baseline_events as the floor, an empty past then means
        # "about one event a month", so only a strong burst stands out).
        return past, min(done * DAY, max(t1 - self.start, s.min_history_days * DAY))

    def episode_start(self, lat: float, lon: float, first: _Pt, now: float, gap: float) -> _Pt:
        """The first event of the run, within max_radius_m of the centre, that leads up to
        `first` with no quiet spell longer than `gap`: a cluster that keeps going keeps its key."""
        s = self.settings
        before = self.near(lat, lon, now - s.baseline_days * DAY, first.lo, s.max_radius_m)
        anchor = first
        for _, p in sorted(before, key=lambda x: (-x[1].hi, -x[1].id)):
            if anchor.lo - p.hi > gap:
                break
            if (p.lo, p.id) < (anchor.lo, anchor.id):
                anchor = p
        return anchor


def _fmt_expected(e: float) -> str:
    if e < 0.01:
        return "under 0.01 expected"
    return f"about {e:.0f} expected" if e >= 10 else f"about {e:.2g} expected"


def _fmt_p(p: float) -> str:
    if p < 0.001:
        return "p < 0.001"
    return "p < 0.01" if p < 0.01 else f"p = {p:.2g}"


def _fmt_radius(r: float) -> str:
    return f"{r:.0f} m" if r < 1000 else f"{r / 1000:g} km"


def _count(n: int, s: ClusterSettings) -> str:
    return f"{n} {s.noun_one if n == 1 else s.noun}"


def _main_area(pts: Sequence[_Pt]) -> str | None:
    counts = Counter(p.area for p in pts if p.area is not None)
    return min(counts, key=lambda a: (-counts[a], a)) if counts else None


# (observed, expected, past count, radius, centre, events in the circle latest first, length);
# the window's events are the first `observed` of that list (shared, not copied).
_Test = tuple[int, float, int, float, tuple[float, float], list[_Pt], float]


def _tests(
    ix: _Index, now: float, recent: list[_Pt]
) -> tuple[list[_Test], dict[tuple[float, float], tuple[int, float]]]:
    """Every circle and window with enough events, priced from the circle's own past."""
    s = ix.settings
    w = s.max_window_hours * HOUR
    t1 = now - w - s.guard_band_days * DAY  # the baseline stops before any window can start

    def dist(lat: float, lon: float, p: _Pt, kx: float) -> float:
        return math.hypot((p.lat - lat) * M_PER_DEG, (p.lon - lon) * kx)  # type: ignore[operator]

    # Centres: recent events that have enough neighbours, and those neighbours' centroid (a
    # circle on the centroid can be half the size of one on any member); ~10 m apart at least.
    centres: set[tuple[float, float]] = set()
    for p in recent:
        assert p.lat is not None and p.lon is not None
        kx = M_PER_DEG * math.cos(math.radians(p.lat))
        nb = [q for q in recent if dist(p.lat, p.lon, q, kx) <= s.max_radius_m]
        if len(nb) >= s.min_events:
            centres.add((round(p.lat, 4), round(p.lon, 4)))
            lat = sum(q.lat for q in nb) / len(nb)  # type: ignore[misc]
            lon = sum(q.lon for q in nb) / len(nb)  # type: ignore[misc]
            centres.add((round(lat, 4), round(lon, 4)))
    tests: list[_Test] = []
    pasts: dict[tuple[float, float], tuple[int, float]] = {}
    for lat, lon in sorted(centres):
        kx = M_PER_DEG * math.cos(math.radians(lat))
        inside = sorted((dist(lat, lon, p, kx), -p.hi, p.id, p) for p in recent)
        inside = [x for x in inside if x[0] <= s.max_radius_m]
        if len(inside) < s.min_events:
            continue
        past, span = ix.baseline(lat, lon, t1)
        pasts[(lat, lon)] = (len(past), span)
        known = sorted(d for d, p in past if p.hi == p.lo)
        dated = sorted(d for d, p in past if p.hi > p.lo)
        radii = {
            min(
                s.max_radius_m, max(s.min_radius_m, RADIUS_STEP_M * math.ceil(x[0] / RADIUS_STEP_M))
            )
            for x in inside[s.min_events - 1 :]
        }
        by_hi_all = sorted(inside, key=lambda x: (x[1], x[2]))
        for r in sorted(radii):
            by_hi = [x[3] for x in by_hi_all if x[0] <= r]
            if len(by_hi) < s.min_events:
                continue
            b_known, b_dated = bisect_right(known, r), bisect_right(dated, r)
            j = 0
            dated_in = False
            for start in sorted({max(p.lo, now - w) for p in by_hi}, reverse=True):
                while j < len(by_hi) and by_hi[j].hi >= start:
                    dated_in = dated_in or by_hi[j].hi > by_hi[j].lo
                    j += 1
                if j < s.min_events:
                    continue
                length = max(now - start, s.min_window_hours * HOUR)
                extra = DAY if dated_in else 0.0  # a dates-only event may lie a day further out
                floor = s.min_baseline_events * (length + extra) / span
                expected = max((b_known * length + b_dated * (length + DAY)) / span, floor)
                tests.append((j, expected, b_known + b_dated, r, (lat, lon), by_hi, now - start))
    return tests, pasts


def _scan(ix: _Index, now: float) -> list[Cluster]:
    s = ix.settings
    w = s.max_window_hours * HOUR
    recent = [
        p
        for p in ix.pts[bisect_left(ix.los, now - w - DAY) : bisect_right(ix.los, now)]
        if p.lat is not None and p.lon is not None and p.hi >= now - w
    ]
    if len(recent) < s.min_events:
        return []
    tests, pasts = _tests(ix, now, recent)
    # How surprising, given how much was looked at: cylinders of the test's size that fit the
    # area the data covers (grid cells with an event in the past year) and the longest window, times the number of
    # sizes tried (Bonferroni over a union of scales; conservative, as cylinders overlap).
    area = ix.occupied(now - s.baseline_days * DAY, now) * s.max_radius_m**2
    scales = (1 + math.log2(s.max_radius_m / s.min_radius_m)) * (
        1 + math.log2(s.max_window_hours / s.min_window_hours)
    )
    fired: list[tuple[float, int, float, tuple[float, float], list[_Pt], float, float]] = []
    for observed, expected, n_past, r, centre, by_hi, length in tests:
        extra = DAY if any(p.hi > p.lo for p in by_hi[:observed]) else 0.0
        window = max(length, s.min_window_hours * HOUR) + extra
        family = scales * max(1.0, area / (math.pi * r * r)) * max(1.0, (w + extra) / window)
        # The circle's past is a sample too, so the test is conditional (binomial) rather than
        # a Poisson tail around a plug-in mean that chance may have made too low.
        n = observed + n_past
        q = expected / (expected + max(n_past, s.min_baseline_events))
        # The probability of exactly `observed` bounds the tail from below: most tests fail on
        # it without summing the tail.
        if _log_binomial_pmf(observed, n, q) > math.log(s.alpha / family):
            continue
        p_value = min(1.0, binomial_tail(observed, n, q) * family)
        if p_value <= s.alpha:
            fired.append((p_value, -observed, r, centre, by_hi, expected, length))
    fired.sort(key=lambda t: t[:3])
    # For each event, the earliest event of any firing circle holding it (for the key, below).
    earliest: dict[int, _Pt] = {}
    for t in fired:
        members = t[4][: -t[1]]
        head = _first(members)
        for p in members:
            if p.id not in earliest or (head.lo, head.id) < (earliest[p.id].lo, earliest[p.id].id):
                earliest[p.id] = head
    found: list[Cluster] = []
    used: set[int] = set()
    for p_value, neg_obs, r, centre, by_hi, expected, length in fired:
        members = sorted(by_hi[:-neg_obs], key=attrgetter("lo", "id"))
        ids = {p.id for p in members}
        if ids & used:
            continue  # report the strongest circle; overlapping weaker ones are the same cluster
        used |= ids
        # The key hangs on the earliest event of every firing circle sharing an event with
        # this one, then back along the run leading up to it: as a cluster grows the strongest
        # circle moves, but that earliest event rarely does. The run links events closer in
        # time than a quarter of the place's usual gap (at most max_window_hours), so a busy
        # place does not chain its everyday events into one run.
        first = _first([earliest[i] for i in ids])
        n_past, span = pasts[centre]
        gap = min(w, span / max(1, n_past) / 4)
        dated_in = any(p.hi > p.lo for p in members)
        start = members[0].lo
        when = (
            f"over {math.floor((now - start) / DAY) + 1} days"
            if dated_in and now - start >= DAY
            else ("on 1 day" if dated_in else f"in {max(1, math.ceil(length / HOUR - 1e-9))} h")
        )
        found.append(
            Cluster(
                method="spacetime",
                area=_main_area(members),
                centre=centre,
                radius_m=r,
                start=_stamp(start),
                end=_stamp(now),
                observed=-neg_obs,
                expected=expected,
                p_value=p_value,
                event_ids=tuple(p.id for p in members),
                summary=f"{_count(-neg_obs, s)} within {_fmt_radius(r)} {when}; "
                f"{_fmt_expected(expected)}; {_fmt_p(p_value)}",
                episode=ix.episode_start(*centre, first, now, gap).id,
            )
        )
    return found


def _temporal(ix: _Index, now: float) -> list[Cluster]:
    s = ix.settings
    today = _day(now)
    lam = s.ewma_lambda
    se = math.sqrt(lam / (2 - lam))  # long-run standard error of an EWMA of unit-variance days
    first = today - 2 * s.max_run_days  # warm-up: the EWMA forgets its start within days
    b, g = s.temporal_baseline_days, s.guard_band_days
    origin = first - g - b
    since = now - (today - origin + 2) * DAY
    recent_areas = {
        p.area
        for p in ix.pts[
            bisect_left(ix.los, now - (s.max_run_days + 1) * DAY) : bisect_right(ix.los, now)
        ]
        if p.area is not None and p.day > today - s.max_run_days
    }
    watched = sum(1 for los in ix.area_los.values() if bisect_left(los, since) < len(los))
    found: list[Cluster] = []
    for area in sorted(recent_areas):
        los = ix.area_los[area]
        pts = [
            p
            for p in ix.areas[area][bisect_left(los, since) : bisect_right(los, now)]
            if p.day <= today
        ]
        counts = Counter(p.day for p in pts)
        if sum(n for d, n in counts.items() if d > today - s.max_run_days) < s.temporal_min_events:
            continue  # too few to fire whatever the EWMA says
        # Daily counts from the first baseline day on, with running sums for each baseline.
        daily = [counts.get(origin + i, 0) for i in range(today - origin + 1)]
        s1, s2 = [0], [0]
        for x in daily:
            s1.append(s1[-1] + x)
            s2.append(s2[-1] + x * x)
        z: float | None = None
        alarm: dict[int, bool] = {}
        means: dict[int, float] = {}
        for t in range(first, today + 1):
            if t - g - b < ix.first_day:
                alarm[t] = False  # its baseline reaches back before the data: no verdict
                continue
            i = t - origin  # the baseline is daily[i - g - b : i - g]
            total, squares = s1[i - g] - s1[i - g - b], s2[i - g] - s2[i - g - b]
            mean = total / b
            sd = math.sqrt(max(0.0, squares - b * mean * mean) / max(1, b - 1))
            sigma = max(sd, math.sqrt(max(mean, s.temporal_min_rate)))  # Poisson floor: sparse days
            z = lam * daily[i] + (1 - lam) * (mean if z is None else z)
            alarm[t] = (z - mean) / (sigma * se) >= s.ewma_threshold
            means[t] = max(mean, 1 / b)  # an empty past still expects a little
        if not alarm[today]:
            continue
        start_day = today
        while today - start_day + 1 < s.max_run_days and alarm.get(start_day - 1, False):
            start_day -= 1
        members = [p for p in pts if p.day >= start_day]
        observed = len(members)
        expected = sum(means[d] for d in range(start_day, today + 1))
        # Every watched area is tested every day, over runs of up to max_run_days: Bonferroni.
        p_value = min(1.0, poisson_tail(observed, expected) * watched * s.max_run_days)
        if observed < s.temporal_min_events or p_value > s.alpha:
            continue
        days = today - start_day + 1
        found.append(
            Cluster(
                method="temporal",
                area=area,
                centre=None,
                radius_m=None,
                start=datetime.combine(date.fromordinal(start_day), datetime.min.time(), UTC),
                end=_stamp(now),
                observed=observed,
                expected=expected,
                p_value=p_value,
                event_ids=tuple(p.id for p in members),
                summary=f"{_count(observed, s)} in area {area} "
                f"{'today' if days == 1 else f'in {days} days'}; "
                f"{_fmt_expected(expected)}; {_fmt_p(p_value)}",
            )
        )
    return found


def _detect_at(ix: _Index, now: float) -> list[Cluster]:
    scan = _scan(ix, now)
    seen = {i for c in scan for i in c.event_ids}
    # An area's spike that the scan already placed is the same news: one signal, the sharper.
    temporal = [
        c for c in _temporal(ix, now) if 2 * len(seen.intersection(c.event_ids)) < c.observed
    ]
    return temporal + scan


def detect(
    events: Sequence[Event], now: datetime, settings: ClusterSettings = ClusterSettings()
) -> list[Cluster]:
    """Clusters alive at `now` (windows ending now), from events at or before `now`.

    Pass at least the events of the last `settings.history_days` days before `now`; older ones
    are ignored, later ones too (the detection is prospective).
    """
    until = _aware(now)
    since = until - timedelta(days=settings.history_days)
    kept = [e for e in events if since <= _aware(e.at) <= until]
    return _detect_at(_Index(kept, settings), until.timestamp())


def recompute(
    events: Sequence[Event],
    settings: ClusterSettings = ClusterSettings(),
    step: timedelta = timedelta(hours=1),
) -> list[Cluster]:
    """Replay history as if detect() ran at the first `step` boundary after each event
    (at each event itself when step is zero).

    One cluster per key: its largest version (the latest among equals), ordered by start.
    """
    ix = _Index(events, settings)
    step_s = step.total_seconds()
    if step_s > 0:
        times = sorted({math.ceil(t / step_s) * step_s for t in ix.los})
    else:
        times = sorted(set(ix.los))
    best: dict[str, Cluster] = {}
    for t in times:
        for cluster in _detect_at(ix, t):
            key = cluster.key()
            old = best.get(key)
            if old is None or (cluster.observed, cluster.end) >= (old.observed, old.end):
                best[key] = cluster
    return sorted(best.values(), key=lambda c: (c.start, c.key()))
