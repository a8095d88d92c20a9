"""Cluster detection evaluated on real call-outs: false signals, sensitivity, delay and speed.

Run:  .venv/bin/python benchmarks/cluster_evaluation.py [--trials N] [--seed S] [--set k=v ...]

Background: the City of Tempe (AZ) opioid call-outs, 2017-01 .. 2024-09 (3,379 rows; dates
only, locations rounded by the publisher; City of Tempe open data, CC-BY), as
`time_known=False` events at local midnight (Arizona keeps UTC-7 all year), with an area code
from a ~3.3 km grid so the per-area temporal detector has areas to watch.

a. False signals: replay the real background prospectively with `recompute` (detection at
   each event's arrival) and count distinct cluster signals (keys) per month. Every signal
   here counts as false, though some may be real clusters.
b. Sensitivity: each trial plants n call-outs with known times of day uniformly in a disc of
   radius R around a random centre (half at a real call-out's location, i.e. where call-outs
   are dense; half uniformly in Tempe's bounding box, mostly sparse), at uniform times within
   a random window of W hours between 2018-01 and 2024-09 (after a year of baseline). detect()
   runs as each planted call-out arrives, over the history the settings ask for, and once more
   6 h after the last. Found: a signal links more than half of the planted call-outs. Delay:
   from the last planted call-out (0 when found on its arrival or before).
c. Speed: `recompute` over the whole file (median of 3), and detect() for one new event over
   its history (2,000 calls at random times: p50 / p99); the same on a synthetic history ten
   times as busy (each Tempe location used ten times at random dates, with known times).

Seeds: trial i of configuration c uses random.Random(seed * 1_000_003 + i * 7 + c); the
defaults were chosen with --seed 7 and are reported with the default seed, 2026.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import math
import random
import statistics
import time
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

from ldis.domain.clusters import M_PER_DEG, ClusterSettings, Event, detect, recompute

ROOT = Path(__file__).resolve().parent.parent
TEMPE = ROOT / "tests" / "data" / "tempe_opioid_calls.csv"
ARIZONA = timezone(timedelta(hours=-7))
GRID_LAT, GRID_LON = 0.03, 0.036  # about 3.3 km x 3.3 km at 33.4 N
PLANT_ID = 10_000_000
CONFIGS = [(5, 1000.0, 24.0), (4, 1000.0, 24.0), (3, 1000.0, 24.0), (5, 2000.0, 48.0)]


def area_of(lat: float, lon: float) -> str:
    return f"TMP-{math.floor(lat / GRID_LAT)}-{math.floor(lon / GRID_LON)}"


def load_tempe() -> list[Event]:
    events = []
    with TEMPE.open(newline="") as f:
        for i, row in enumerate(csv.DictReader(f), start=1):
            lat, lon = float(row["latitude"]), float(row["longitude"])
            day = date.fromisoformat(row["incident_date"])
            at = datetime(day.year, day.month, day.day, tzinfo=ARIZONA).astimezone(UTC)
            events.append(Event(i, at, lat, lon, area_of(lat, lon), time_known=False))
    return sorted(events, key=lambda e: (e.at, e.id))


def busier(background: list[Event], times: int, seed: int) -> list[Event]:
    """Each location `times` times at random dates and times of day: busier, not clustered."""
    rng = random.Random(seed)
    out = []
    for e in background:
        for _ in range(times):
            at = rng.choice(background).at + timedelta(seconds=rng.uniform(0, 86_400))
            out.append(Event(len(out) + 1, at, e.lat, e.lon, e.area))
    return sorted(out, key=lambda e: (e.at, e.id))


def false_signals(background: list[Event], settings: ClusterSettings) -> dict[str, object]:
    found = recompute(background, settings)
    first, last = background[0].at.astimezone(ARIZONA), background[-1].at.astimezone(ARIZONA)
    months = (last.year - first.year) * 12 + last.month - first.month + 1
    per_month = Counter(c.start.astimezone(ARIZONA).strftime("%Y-%m") for c in found)
    warm = background[0].at + timedelta(days=365)
    after = [c for c in found if c.start >= warm]
    halves = Counter("2017-2020" if c.start.year <= 2020 else "2021-2024" for c in found)
    return {
        "clusters": found,
        "months": months,
        "total": len(found),
        "by_method": dict(Counter(c.method for c in found)),
        "per_month": len(found) / months,
        "after_warmup": len(after) / (months - 12),
        "first_half": halves["2017-2020"] / 48,
        "second_half": halves["2021-2024"] / (months - 48),
        "max_month": max(per_month.values(), default=0),
        "months_over_1": sum(1 for n in per_month.values() if n > 1),
    }


def plant(
    rng: random.Random, background: list[Event], n: int, radius_m: float, hours: float
) -> tuple[list[Event], bool]:
    lats = [e.lat for e in background if e.lat is not None]
    lons = [e.lon for e in background if e.lon is not None]
    dense = rng.random() < 0.5
    if dense:
        anchor = rng.choice(background)
        assert anchor.lat is not None and anchor.lon is not None
        clat, clon = anchor.lat, anchor.lon
    else:
        clat, clon = rng.uniform(min(lats), max(lats)), rng.uniform(min(lons), max(lons))
    first = datetime(2018, 1, 1, tzinfo=UTC).timestamp()
    last = datetime(2024, 9, 1, tzinfo=UTC).timestamp()
    start = rng.uniform(first, last)
    times = sorted(rng.uniform(start, start + hours * 3600) for _ in range(n))
    kx = M_PER_DEG * math.cos(math.radians(clat))
    planted = []
    for k, t in enumerate(times):
        r, theta = radius_m * math.sqrt(rng.random()), rng.uniform(0, 2 * math.pi)
        lat = clat + r * math.sin(theta) / M_PER_DEG
        lon = clon + r * math.cos(theta) / kx
        at = datetime.fromtimestamp(t, UTC)
        planted.append(Event(PLANT_ID + k, at, lat, lon, area_of(lat, lon), time_known=True))
    return planted, dense


def trial(
    background: list[Event], starts: list[datetime], planted: list[Event], s: ClusterSettings
) -> tuple[float | None, int, set[str]]:
    """(delay in hours from the last planted call-out, or None; planted call-outs in by the
    first signal (n + 1: only at the check 6 h after the last); keys of the signals)."""
    ids = {e.id for e in planted}
    need = len(planted) // 2 + 1
    last = planted[-1].at
    history = timedelta(days=s.history_days)
    checks = [e.at for e in planted] + [last + timedelta(hours=6)]
    keys: set[str] = set()
    first_hit: float | None = None
    seen = 0
    for k, now in enumerate(checks):
        events = background[bisect_left(starts, now - history) : bisect_right(starts, now)]
        hits = [
            c
            for c in detect(events + planted[: k + 1], now, s)
            if len(ids.intersection(c.event_ids)) >= need
        ]
        keys.update(c.key() for c in hits)
        if hits and first_hit is None:
            first_hit = max(0.0, (now - last).total_seconds() / 3600)
            seen = k + 1
    return first_hit, seen, keys


def sensitivity(
    background: list[Event], s: ClusterSettings, trials: int, seed: int
) -> list[dict[str, object]]:
    starts = [e.at for e in background]
    rows = []
    for ci, (n, radius, hours) in enumerate(CONFIGS):
        delays: list[float] = []
        counts: list[int] = []
        by_place: dict[bool, list[bool]] = defaultdict(list)
        split = 0
        for i in range(trials):
            rng = random.Random(seed * 1_000_003 + i * 7 + ci)
            planted, dense = plant(rng, background, n, radius, hours)
            delay, seen, keys = trial(background, starts, planted, s)
            by_place[dense].append(delay is not None and delay <= 6)
            if delay is not None:
                delays.append(delay)
                counts.append(seen)
            split += len({k for k in keys if k.startswith("spacetime")}) > 1
        hits = by_place[True] + by_place[False]
        delays.sort()
        rows.append(
            {
                "config": f"{n} within {radius / 1000:g} km in {hours:g} h",
                "found": sum(hits) / len(hits),
                "dense": sum(by_place[True]) / max(1, len(by_place[True])),
                "sparse": sum(by_place[False]) / max(1, len(by_place[False])),
                "median_delay": statistics.median(delays) if delays else math.nan,
                "p90_delay": delays[int(0.9 * (len(delays) - 1))] if delays else math.nan,
                "median_seen": statistics.median(counts) if counts else math.nan,
                "split": split,
                "trials": trials,
            }
        )
    return rows


def latency(history: list[Event], s: ClusterSettings, calls: int) -> tuple[float, float, float]:
    """p50, p99 (ms) of detect() for one new event at a random time, and the mean history."""
    starts = [e.at for e in history]
    span = timedelta(days=s.history_days)
    rng = random.Random(99)
    lats = [e.lat for e in history if e.lat is not None]
    lons = [e.lon for e in history if e.lon is not None]
    first = (starts[0] + timedelta(days=365)).timestamp()
    times, sizes = [], []
    for i in range(calls):
        now = datetime.fromtimestamp(rng.uniform(first, starts[-1].timestamp()), UTC)
        lat, lon = rng.uniform(min(lats), max(lats)), rng.uniform(min(lons), max(lons))
        events = history[bisect_left(starts, now - span) : bisect_right(starts, now)]
        events.append(Event(PLANT_ID + i, now, lat, lon, area_of(lat, lon)))
        sizes.append(len(events))
        t0 = time.perf_counter()
        detect(events, now, s)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    p99 = times[min(len(times) - 1, math.ceil(0.99 * len(times)) - 1)]
    return times[len(times) // 2], p99, statistics.mean(sizes)


def speed(background: list[Event], s: ClusterSettings, calls: int) -> list[tuple[str, str]]:
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        recompute(background, s)
        runs.append(time.perf_counter() - t0)
    rows = [("recompute over the Tempe file, median of 3", f"{statistics.median(runs):.2f} s")]
    for label, history in (("Tempe", background), ("10x busier", busier(background, 10, 5))):
        p50, p99, size = latency(history, s, calls)
        rows.append(
            (
                f"detect() for one new event, {label} history (~{size:,.0f} events), "
                f"p50 / p99 over {calls}",
                f"{p50:.1f} / {p99:.1f} ms",
            )
        )
    return rows


def parse_overrides(pairs: list[str]) -> ClusterSettings:
    base = ClusterSettings()
    types = {f.name: type(getattr(base, f.name)) for f in dataclasses.fields(base)}
    changes = {}
    for pair in pairs:
        name, value = pair.split("=", 1)
        changes[name] = types[name](value)
    return dataclasses.replace(base, **changes)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--trials", type=int, default=500, help="trials per configuration")
    parser.add_argument("--seed", type=int, default=2026, help="7 was used for tuning")
    parser.add_argument("--set", action="append", default=[], help="a setting, e.g. alpha=0.01")
    parser.add_argument("--calls", type=int, default=2000, help="detect() calls for latency")
    parser.add_argument("--skip", action="append", default=[], help="false | sens | speed")
    parser.add_argument("--list", action="store_true", help="list the background's signals")
    args = parser.parse_args()
    s = parse_overrides(args.set)
    background = load_tempe()
    print(f"# Cluster evaluation, {date.today().isoformat()}, seed {args.seed}\n")
    changed = {k: v for k, v in dataclasses.asdict(s).items() if v != getattr(ClusterSettings(), k)}
    print(f"settings: defaults{f', with {changed}' if changed else ''}\n")
    if "false" not in args.skip:
        fs = false_signals(background, s)
        print("| real background alone (Tempe), replayed | value |\n| --- | ---: |")
        print(f"| cluster signals over {fs['months']} months | {fs['total']} {fs['by_method']} |")
        print(f"| per month, all months | {fs['per_month']:.2f} |")
        print(f"| per month after the first year | {fs['after_warmup']:.2f} |")
        print(
            f"| per month 2017-2020 / 2021-2024 | {fs['first_half']:.2f} / {fs['second_half']:.2f} |"
        )
        print(f"| most in one month | {fs['max_month']} |")
        print(f"| months with more than 1 | {fs['months_over_1']} |\n")
        if args.list:
            for c in fs["clusters"]:  # type: ignore[attr-defined]
                print(f"- {c.start.astimezone(ARIZONA):%Y-%m-%d} {c.key()}: {c.summary}")
            print()
    if "sens" not in args.skip:
        print(
            "| planted | found within 6 h of the last | dense places | sparse places "
            "| delay (h) median / p90 | planted call-outs in at first signal (median) "
            "| trials | split over 2+ scan keys |"
        )
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for r in sensitivity(background, s, args.trials, args.seed):
            print(
                f"| {r['config']} | {r['found']:.1%} | {r['dense']:.1%} | {r['sparse']:.1%} "
                f"| {r['median_delay']:.1f} / {r['p90_delay']:.1f} | {r['median_seen']:g} "
                f"| {r['trials']} | {r['split']} |"
            )
        print()
    if "speed" not in args.skip:
        print("| speed | value |\n| --- | ---: |")
        for label, value in speed(background, s, args.calls):
            print(f"| {label} | {value} |")


if __name__ == "__main__":
    main()
