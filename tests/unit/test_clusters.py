"""Cluster detection maths: distances, tails, the space-time scan and the area EWMA."""

from __future__ import annotations

import math
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ldis.domain.clusters import (
    M_PER_DEG,
    ClusterSettings,
    Event,
    binomial_tail,
    detect,
    haversine_m,
    poisson_tail,
    recompute,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LAT, LON = 53.80, -1.55  # Leeds
KX = M_PER_DEG * math.cos(math.radians(LAT))
SETTINGS = ClusterSettings()
LATER = T0 + timedelta(days=380)  # when planted clusters happen: after a year of past


def at_metres(north: float, east: float) -> tuple[float, float]:
    return LAT + north / M_PER_DEG, LON + east / KX


def background(seed: int, days: int = 400, per_day: float = 1.0) -> list[Event]:
    """Uniform call-outs with known times over a 10 km square, from T0 for `days` days."""
    rng = random.Random(seed)
    events = []
    for i in range(int(days * per_day)):
        north, east = rng.uniform(0, 10_000), rng.uniform(0, 10_000)
        when = T0 + timedelta(seconds=rng.uniform(0, days * 86_400))
        events.append(Event(i + 1, when, *at_metres(north, east), f"A{int(east // 5000)}"))
    return sorted(events, key=lambda e: e.at)


def quiet_past() -> list[Event]:
    """A year of call-outs 30 km away: history enough for the scan, nothing near the tests."""
    return [
        Event(900_000 + d, T0 + timedelta(days=d), *at_metres(30_000, 30_000 + d), "FAR")
        for d in range(0, 370, 5)
    ]


def planted(first_id: int, centre_m: tuple[float, float], start: datetime, n: int) -> list[Event]:
    """n call-outs within 300 m of a point, 1.5 h apart."""
    rng = random.Random(first_id)
    out = []
    for k in range(n):
        north = centre_m[0] + rng.uniform(-200, 200)
        east = centre_m[1] + rng.uniform(-200, 200)
        out.append(
            Event(first_id + k, start + timedelta(hours=1.5 * k), *at_metres(north, east), "A1")
        )
    return out


# --- plain maths -------------------------------------------------------------------------------


def test_haversine_known_distances() -> None:
    assert haversine_m((51.5007, -0.1246), (51.5007, -0.1246)) == 0.0
    # One degree of latitude is about 111.2 km; London to Paris about 343.5 km.
    assert abs(haversine_m((0.0, 0.0), (1.0, 0.0)) - 111_195) < 5
    assert abs(haversine_m((51.5074, -0.1278), (48.8566, 2.3522)) - 343_500) < 1_000
    # Symmetric, and the local metres the scan uses agree over neighbourhood distances.
    a, b = at_metres(0, 0), at_metres(600, 800)
    assert haversine_m(a, b) == haversine_m(b, a)
    assert abs(haversine_m(a, b) - 1000) < 1


def test_poisson_tail_against_direct_sums() -> None:
    def direct(k: int, mu: float) -> float:
        return 1 - sum(math.exp(-mu) * mu**j / math.factorial(j) for j in range(k))

    for mu in (0.01, 0.5, 1.0, 3.7, 20.0):
        for k in (0, 1, 2, 5, 10, 30):
            assert math.isclose(poisson_tail(k, mu), direct(k, mu), rel_tol=1e-9, abs_tol=1e-15)
    # Far in the tail, where one minus a sum is all rounding, it stays accurate.
    upper = sum(math.exp(-0.01) * 0.01**j / math.factorial(j) for j in range(7, 40))
    assert math.isclose(poisson_tail(7, 0.01), upper, rel_tol=1e-12)
    assert poisson_tail(0, 0.0) == 1.0 and poisson_tail(1, 0.0) == 0.0
    assert poisson_tail(3, 1000.0) == 1.0


def test_binomial_tail_against_direct_sums() -> None:
    def direct(k: int, n: int, q: float) -> float:
        return sum(math.comb(n, j) * q**j * (1 - q) ** (n - j) for j in range(k, n + 1))

    for n in (1, 5, 40):
        for q in (1e-4, 0.05, 0.5, 0.9):
            for k in (0, 1, 3, 5):
                assert math.isclose(
                    binomial_tail(k, n, q), direct(k, n, q), rel_tol=1e-9, abs_tol=1e-15
                )
    assert binomial_tail(3, 2, 0.5) == 0.0 and binomial_tail(1, 3, 0.0) == 0.0
    # With no past at all (n = observed) it is q ** observed: the floor the scan relies on.
    assert math.isclose(binomial_tail(4, 4, 0.01), 1e-8, rel_tol=1e-9)


# --- the space-time scan ---------------------------------------------------------------------


def test_a_tight_cluster_in_a_sparse_background_is_found_with_its_events() -> None:
    cluster_events = planted(10_000, (5_000, 5_000), LATER, 5)
    events = background(1) + cluster_events
    now = LATER + timedelta(hours=6)
    found = detect(events, now)
    assert [c.method for c in found] == ["spacetime"]
    cluster = found[0]
    assert set(cluster.event_ids) >= {e.id for e in cluster_events}
    assert len(cluster.event_ids) == cluster.observed <= 6
    assert cluster.expected < 0.1 and cluster.p_value < SETTINGS.alpha
    assert cluster.summary.startswith(f"{cluster.observed} call-outs within ")
    assert " in 6 h; " in cluster.summary and cluster.summary.endswith("; p < 0.001")
    assert cluster.centre is not None and cluster.radius_m is not None
    assert cluster.radius_m <= 400
    by_id = {e.id: e for e in events}
    for event_id in cluster.event_ids:
        event = by_id[event_id]
        assert event.lat is not None and event.lon is not None
        assert haversine_m(cluster.centre, (event.lat, event.lon)) <= cluster.radius_m + 1


def test_summary_wording() -> None:
    events = quiet_past() + planted(1, (0, 0), LATER, 7)
    found = detect(events, LATER + timedelta(hours=9))
    assert len(found) == 1
    assert found[0].summary == (
        f"7 call-outs within {found[0].radius_m:.0f} m in 9 h; under 0.01 expected; p < 0.001"
    )
    misses = replace(SETTINGS, noun="near misses", noun_one="near miss")
    assert detect(events, LATER + timedelta(hours=9), misses)[0].summary.startswith(
        "7 near misses within "
    )


def test_uniform_background_alone_raises_almost_nothing() -> None:
    # Six cities, each 500 days of one call-out a day over 100 km2 (about 100 city-months):
    # chance triples within a kilometre happen every couple of months there and are ordinary.
    signals = sum(len(recompute(background(100 + seed, days=500))) for seed in range(6))
    assert signals <= 3


def test_a_young_system_raises_only_strong_bursts() -> None:
    # No past at all: every place is priced as if it saw one call-out a month, so seven
    # within 300 m in 9 h stand out, but three within a kilometre over two days do not.
    burst = planted(1, (0, 0), LATER, 7)
    found = detect(burst, LATER + timedelta(hours=9))
    assert [c.observed for c in found] == [7]
    loose = [
        Event(k, LATER + timedelta(hours=18 * k), *at_metres(600 * k, 0), None) for k in range(3)
    ]
    assert detect(loose, LATER + timedelta(hours=36)) == []


def test_a_cluster_straddling_two_areas_is_found_by_the_scan() -> None:
    start = LATER + timedelta(days=10)
    west = [
        Event(20_000 + k, start + timedelta(hours=k), *at_metres(5_000, 4_900 - 100 * k), "WEST")
        for k in range(3)
    ]
    east = [
        Event(
            20_010 + k,
            start + timedelta(hours=k, minutes=30),
            *at_metres(5_000, 5_100 + 100 * k),
            "EAST",
        )
        for k in range(3)
    ]
    found = detect(background(2) + west + east, start + timedelta(hours=3))
    assert [c.method for c in found] == ["spacetime"]  # neither area alone is enough
    assert {e.id for e in west + east} <= set(found[0].event_ids)
    assert found[0].area in {"WEST", "EAST"}


def test_events_after_now_are_ignored() -> None:
    cluster = planted(1, (0, 0), LATER, 5)
    events = quiet_past() + cluster
    assert detect(events, cluster[1].at) == []  # only 2 of the 5 known by then
    found = detect(events, cluster[2].at)
    assert [c.event_ids for c in found] == [(1, 2, 3)]
    assert found[0].end == cluster[2].at
    assert detect(events, cluster[2].at) == detect(events[:-2], cluster[2].at)


def test_dates_only_events_are_spread_over_their_day() -> None:
    day = LATER
    events = quiet_past() + [
        Event(i, day, *at_metres(20 * i, 0), None, time_known=False) for i in range(1, 5)
    ]
    # Known from the start of their day; "on 1 day"; still in the 48 h window a day later.
    found = detect(events, day)
    assert len(found) == 1 and found[0].observed == 4
    assert " on 1 day; " in found[0].summary
    later = detect(events, day + timedelta(hours=30))
    assert later and later[0].key() == found[0].key()
    # Three days on, their day has left the window.
    assert detect(events, day + timedelta(days=3)) == []
    # One more the next day: the window covers two calendar days.
    more = [*events, Event(9, day + timedelta(days=1), *at_metres(0, 20), None, time_known=False)]
    assert " over 2 days; " in detect(more, day + timedelta(days=1))[0].summary


def test_key_is_stable_as_the_cluster_grows_and_recompute_keeps_one() -> None:
    grown = planted(30_000, (2_000, 7_000), LATER, 6)
    events = sorted(background(3) + grown, key=lambda e: e.at)
    keys = set()
    for event in grown:
        keys |= {c.key() for c in detect(events, event.at) if 30_000 in c.event_ids}
    assert len(keys) == 1
    replayed = [c for c in recompute(events) if 30_000 in c.event_ids]
    assert [c.key() for c in replayed] == list(keys)
    assert replayed[0].observed >= 6  # the largest version is kept


def test_recompute_deduplicates_and_agrees_with_incremental_detection() -> None:
    cluster = planted(40_000, (8_000, 2_000), LATER, 4)
    events = sorted(background(4) + cluster, key=lambda e: e.at)
    replayed = recompute(events, step=timedelta(0))
    assert len({c.key() for c in replayed}) == len(replayed)
    incremental = {c.key() for e in cluster for c in detect(events, e.at)}
    assert incremental and incremental <= {c.key() for c in replayed}


# --- the temporal detector ---------------------------------------------------------------------


def area_series(counts: list[int], area: str = "E05001234") -> list[Event]:
    """`counts[d]` events on day d from T0, around noon, with no location."""
    events = []
    for d, n in enumerate(counts):
        for k in range(n):
            when = T0 + timedelta(days=d, hours=12, minutes=k)
            events.append(Event(len(events) + 1, when, None, None, area))
    return events


def test_temporal_detector_fires_on_a_spike() -> None:
    rng = random.Random(5)
    counts = [rng.choice([0, 0, 1, 1, 2]) for _ in range(60)] + [9]
    found = detect(area_series(counts), T0 + timedelta(days=60, hours=23))
    assert len(found) == 1
    cluster = found[0]
    assert cluster.method == "temporal" and cluster.area == "E05001234"
    assert cluster.observed == 9 and cluster.expected < 1.5
    assert cluster.summary.startswith("9 call-outs in area E05001234 today; about ")
    assert cluster.key() == f"temporal:E05001234:{(T0 + timedelta(days=60)).date().isoformat()}"


def test_temporal_detector_is_quiet_on_a_stable_series() -> None:
    rng = random.Random(6)
    counts = [sum(rng.random() < 0.3 for _ in range(6)) for _ in range(400)]  # about 1.8 a day
    assert recompute(area_series(counts)) == []


def test_events_without_area_or_place_are_skipped() -> None:
    spike = area_series([1, 0] * 30 + [9])
    now = T0 + timedelta(days=60, hours=23)
    assert [c.method for c in detect(spike, now)] == ["temporal"]  # no place: no scan
    assert detect([replace(e, area=None) for e in spike], now) == []  # and no area: nothing


# --- properties ----------------------------------------------------------------------------------


@st.composite
def event_sets(draw: st.DrawFn) -> tuple[list[Event], datetime]:
    events = []
    for i in range(draw(st.integers(0, 40))):
        hours = draw(st.floats(0, 24 * 40))
        north, east = draw(st.floats(0, 3000)), draw(st.floats(0, 3000))
        lat, lon = at_metres(north, east) if draw(st.booleans()) or i % 3 else (None, None)
        area = draw(st.sampled_from([None, "A", "B"]))
        known = draw(st.booleans())
        events.append(Event(i, T0 + timedelta(hours=hours), lat, lon, area, time_known=known))
    return events, T0 + timedelta(hours=draw(st.floats(0, 24 * 41)))


LOOSE = replace(
    SETTINGS,
    baseline_days=20,
    min_history_days=1,
    alpha=1.0,
    temporal_baseline_days=5,
    temporal_min_events=2,
    ewma_threshold=0.5,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_sets())
def test_detect_never_raises_and_clusters_hold_their_events(
    case: tuple[list[Event], datetime],
) -> None:
    events, now = case
    by_id = {e.id: e for e in events}
    for cluster in detect(events, now, LOOSE):
        assert cluster.observed == len(cluster.event_ids) >= 2
        assert cluster.start <= cluster.end == now
        assert cluster.key().startswith(cluster.method + ":")
        assert 0 <= cluster.p_value <= 1 and cluster.expected > 0
        for event_id in cluster.event_ids:
            event = by_id[event_id]
            assert event.at <= now
            if cluster.method == "spacetime":
                assert cluster.start <= event.at
                assert now - event.at <= timedelta(hours=LOOSE.max_window_hours + 24)
                assert cluster.centre is not None and cluster.radius_m is not None
                assert event.lat is not None and event.lon is not None
                assert haversine_m(cluster.centre, (event.lat, event.lon)) <= cluster.radius_m + 1
            else:
                assert event.area == cluster.area
                assert event.at >= cluster.start - timedelta(days=1)
