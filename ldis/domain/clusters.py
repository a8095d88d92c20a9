"""Cluster signals: more near misses or call-outs in one place, or one area, than its past explains.

Two prospective detectors; both look only at windows that end at `now` and at events known by
`now`, so running them after each new event is the same as replaying history (`recompute`).

- **Space-time scan** over points (areas play no part, so a cluster straddling two areas is
  found like any other). Candidate circles are centred on recent events and on the centroids of
  their neighbours, with radii through the events (min_radius_m .. max_radius_m, in 50 m steps)
  and windows that start at an event and end now (at most max_window_hours). The expected count
  in a circle comes from the same circle's own past: the events inside it over baseline_days
  (ending a guard band before the longest window), scaled to the window's length, floored at
  min_baseline_events so a place with no past does not expect zero. The Poisson upper tail
  P(X >= observed) is multiplied by the number of circles tested that could have fired
  (Bonferroni, valid when the tests are correlated) to give the reported p-value.
- **Temporal**, per area: an ESSENCE-style EWMA of daily counts against the area's own mean
  and spread over temporal_baseline_days, a guard band of guard_band_days before the day under
  test (so a slowly building cluster does not raise its own baseline). Today's count so far is
  used as it stands: it can only grow, so firing on it early is safe.

Events whose time of day is unknown (`time_known=False`, e.g. the Tempe open data) are taken
as spread over the 24 h starting at `at` (the caller sets `at` to the start of that local day):
such an event counts in any window its day touches, and its expected count grows by one day
accordingly; the temporal detector files it under the day containing `at + 12 h`.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

EARTH_RADIUS_M = 6_371_008.8
M_PER_DEG = EARTH_RADIUS_M * math.pi / 180
DAY = 86_400.0
HOUR = 3_600.0
RADIUS_STEP_M = 50.0


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
    """Thresholds and windows; defaults tuned on Tempe, see docs/signals-clusters.md."""

    # Space-time scan.
    min_radius_m: float = 200.0  # smallest circle: locations are often rounded to a block
    max_radius_m: float = 1500.0  # largest circle; a neighbourhood, not a town
    max_window_hours: float = 48.0  # longest window the scan looks back over
    min_window_hours: float = 1.0  # shorter windows are priced as this long (no E = 0)
    baseline_days: int = 365  # past of each circle used for its expected count
    min_baseline_events: float = 1.0  # floor: a circle is priced as if it had this many
    min_events: int = 4  # fewest events in a space-time cluster
    alpha: float = 0.01  # fire when the multiplicity-adjusted p-value is at most this
    # Temporal detector (per area, daily counts).
    temporal_baseline_days: int = 28  # days of the area's own past giving its mean and spread
    guard_band_days: int = 2  # days left out between a day under test and its baseline
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
    p_value: float  # multiplicity-adjusted upper bound
    event_ids: tuple[int, ...]  # in event-time order, earliest first
    summary: str
    # Spacetime: id of the first event of the episode (the run of events in this circle with
    # no quiet gap over max_window_hours); may be older than the window. key() is built on it.
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


class _Pt:
    __slots__ = ("area", "day", "hi", "id", "lat", "lo", "lon")

    def __init__(self, event: Event) -> None:
        at = event.at if event.at.tzinfo else event.at.replace(tzinfo=UTC)
        self.id = event.id
        self.lo = at.timestamp()
        # Its day is [at, at + 24 h): the last instant is a second short, so the day does not
        # touch a window that starts exactly at the next midnight.
        self.hi = self.lo + (0.0 if event.time_known else DAY - 1.0)
        self.lat = event.lat
        self.lon = event.lon
        self.area = event.area
        # Dates-only: `at` is local midnight, so midday falls on the right UTC date.
        self.day = _day(self.lo + (0.0 if event.time_known else DAY / 2))


def _day(t: float) -> int:
    return datetime.fromtimestamp(t, UTC).date().toordinal()


def _stamp(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def _utc_seconds(now: datetime) -> float:
    return (now if now.tzinfo else now.replace(tzinfo=UTC)).timestamp()


class _Index:
    """Events sorted by time, bucketed in a grid of max_radius_m cells and by area."""

    def __init__(self, events: Sequence[Event], settings: ClusterSettings) -> None:
        self.settings = settings
        self.pts = sorted((_Pt(e) for e in events), key=lambda p: (p.lo, p.id))
        self.los = [p.lo for p in self.pts]
        placed = [p for p in self.pts if p.lat is not None and p.lon is not None]
        self.cell_lat = settings.max_radius_m / M_PER_DEG
        top = max((abs(p.lat) for p in placed if p.lat is not None), default=0.0)
        self.cell_lon = self.cell_lat / max(0.05, math.cos(math.radians(min(top, 87.0))))
        self.cells: dict[tuple[int, int], list[_Pt]] = defaultdict(list)
        for p in placed:
            self.cells[self._cell(p)].append(p)
        self.cell_los = {c: [p.lo for p in ps] for c, ps in self.cells.items()}
        self.areas: dict[str, list[_Pt]] = defaultdict(list)
        for p in self.pts:
            if p.area is not None:
                self.areas[p.area].append(p)
        self.area_los = {a: [p.lo for p in ps] for a, ps in self.areas.items()}

    def _cell(self, p: _Pt) -> tuple[int, int]:
        assert p.lat is not None and p.lon is not None
        return (math.floor(p.lat / self.cell_lat), math.floor(p.lon / self.cell_lon))

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
    if not counts:
        return None
    return min(counts, key=lambda a: (-counts[a], a))


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
    t1 = now - w - s.guard_band_days * DAY  # the baseline stops before any window can start
    span = s.baseline_days * DAY

    def dist(lat: float, lon: float, p: _Pt, kx: float) -> float:
        return math.hypot((p.lat - lat) * M_PER_DEG, (p.lon - lon) * kx)  # type: ignore[operator]

    # Centres: recent events that have enough neighbours, and those neighbours' centroid (a
    # circle on the centroid can be half the size of one on any member).
    centres: set[tuple[float, float]] = set()
    for p in recent:
        assert p.lat is not None and p.lon is not None
        kx = M_PER_DEG * math.cos(math.radians(p.lat))
        nb = [q for q in recent if dist(p.lat, p.lon, q, kx) <= s.max_radius_m]
        if len(nb) >= s.min_events:
            centres.add((p.lat, p.lon))
            centres.add(
                (sum(q.lat for q in nb) / len(nb), sum(q.lon for q in nb) / len(nb))  # type: ignore[misc]
            )
    # (p_local, -observed, radius, centre, members by latest first, count, expected, length)
    tests: list[tuple[float, int, float, tuple[float, float], list[_Pt], float, float]] = []
    n_tests = 0
    baselines: dict[tuple[float, float], int] = {}
    for lat, lon in sorted(centres):
        kx = M_PER_DEG * math.cos(math.radians(lat))
        ds = sorted((dist(lat, lon, p, kx), p.lo, p.id, p) for p in recent)
        ds = [d for d in ds if d[0] <= s.max_radius_m]
        if len(ds) < s.min_events:
            continue
        past = ix.near(lat, lon, t1 - span, t1, s.max_radius_m)
        baselines[(lat, lon)] = len(past)
        known = sorted(d for d, p in past if p.hi == p.lo)
        dated = sorted(d for d, p in past if p.hi > p.lo)
        radii = {
            min(
                s.max_radius_m, max(s.min_radius_m, math.ceil(d[0] / RADIUS_STEP_M) * RADIUS_STEP_M)
            )
            for d in ds[s.min_events - 1 :]
        }
        for r in sorted(radii):
            by_hi = sorted((d[3] for d in ds if d[0] <= r), key=lambda p: (-p.hi, p.id))
            b_known, b_dated = bisect_right(known, r), bisect_right(dated, r)
            j = 0
            for start in sorted({max(p.lo, now - w) for p in by_hi}, reverse=True):
                while j < len(by_hi) and by_hi[j].hi >= start:
                    j += 1
                if j < s.min_events:
                    continue
                length = max(now - start, s.min_window_hours * HOUR)
                dated_in = any(p.hi > p.lo for p in by_hi[:j])
                expected = max(
                    (b_known * length + b_dated * (length + DAY)) / span,
                    s.min_baseline_events * (length + (DAY if dated_in else 0.0)) / span,
                )
                n_tests += 1
                tests.append(
                    (poisson_tail(j, expected), -j, r, (lat, lon), by_hi[:j], expected, now - start)
                )
    found: list[Cluster] = []
    used: set[int] = set()
    fired = sorted((t for t in tests if t[0] * n_tests <= s.alpha), key=lambda t: t[:3])
    for p_local, neg_obs, r, centre, members, expected, length in fired:
        ids = {p.id for p in members}
        if ids & used:
            continue  # report the strongest circle; overlapping weaker ones are the same cluster
        used |= ids
        members = sorted(members, key=lambda p: (p.lo, p.id))
        # The key hangs on the earliest event of every firing circle sharing an event with
        # this one, then back along the run of events leading up to it: as a cluster grows,
        # the strongest circle moves, but that earliest event rarely does.
        first = members[0]
        for t in fired:
            if ids.intersection(q.id for q in t[4]):
                first = min([first, *t[4]], key=lambda p: (p.lo, p.id))
        # Link events closer in time than a quarter of the place's usual gap (and at most
        # max_window_hours), so a busy place does not chain its everyday events into one run.
        gap = min(w, span / max(1, baselines[centre]) / 4)
        p_value = min(1.0, p_local * n_tests)
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
                episode=ix.episode_start(*centre, first, now, gap).id,
                summary=f"{_count(-neg_obs, s)} within {_fmt_radius(r)} {when}; "
                f"{_fmt_expected(expected)}; {_fmt_p(p_value)}",
            )
        )
    return found


def _temporal(ix: _Index, now: float) -> list[Cluster]:
    s = ix.settings
    today = _day(now)
    lam = s.ewma_lambda
    se = math.sqrt(lam / (2 - lam))  # long-run standard error of an EWMA of unit-variance days
    first = today - 2 * s.max_run_days  # warm-up: the EWMA forgets its start within days
    since = now - (today - first + s.guard_band_days + s.temporal_baseline_days + 2) * DAY
    recent_areas = {
        p.area
        for p in ix.pts[
            bisect_left(ix.los, now - (s.max_run_days + 1) * DAY) : bisect_right(ix.los, now)
        ]
        if p.area is not None and p.day > today - s.max_run_days
    }
    found: list[Cluster] = []
    for area in sorted(recent_areas):
        los = ix.area_los[area]
        pts = [
            p
            for p in ix.areas[area][bisect_left(los, since) : bisect_right(los, now)]
            if p.day <= today
        ]
        counts = Counter(p.day for p in pts)
        z: float | None = None
        alarm: dict[int, bool] = {}
        means: dict[int, float] = {}
        for t in range(first, today + 1):
            base = [
                counts.get(d, 0)
                for d in range(
                    t - s.guard_band_days - s.temporal_baseline_days, t - s.guard_band_days
                )
            ]
            mean = sum(base) / len(base)
            sd = math.sqrt(sum((x - mean) ** 2 for x in base) / max(1, len(base) - 1))
            sigma = max(sd, math.sqrt(max(mean, s.temporal_min_rate)))  # Poisson floor: sparse days
            z = lam * counts.get(t, 0) + (1 - lam) * (mean if z is None else z)
            alarm[t] = (z - mean) / (sigma * se) >= s.ewma_threshold
            means[t] = max(mean, 1 / s.temporal_baseline_days)  # an empty past expects a little
        if not alarm[today]:
            continue
        start_day = today
        while today - start_day + 1 < s.max_run_days and alarm.get(start_day - 1, False):
            start_day -= 1
        members = [p for p in pts if p.day >= start_day]
        observed = len(members)
        expected = sum(means[d] for d in range(start_day, today + 1))
        p_value = poisson_tail(observed, expected)
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
    t = _utc_seconds(now)
    since = t - settings.history_days * DAY
    kept = [e for e in events if since <= _utc_seconds(e.at) <= t]
    return _detect_at(_Index(kept, settings), t)


def recompute(
    events: Sequence[Event],
    settings: ClusterSettings = ClusterSettings(),
    step: timedelta = timedelta(hours=1),
) -> list[Cluster]:
    """Replay history as if detect() ran at the first `step` boundary after each event.

    One cluster per key: its largest version (the latest among equals), ordered by start.
    """
    ix = _Index(events, settings)
    step_s = step.total_seconds()
    times = (
        sorted({math.ceil(t / step_s) * step_s for t in ix.los})
        if step_s > 0
        else sorted(set(ix.los))
    )
    best: dict[str, Cluster] = {}
    for t in times:
        for cluster in _detect_at(ix, t):
            key = cluster.key()
            old = best.get(key)
            if old is None or (cluster.observed, cluster.end) >= (old.observed, old.end):
                best[key] = cluster
    return sorted(best.values(), key=lambda c: (c.start, c.key()))
