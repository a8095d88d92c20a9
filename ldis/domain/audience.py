"""Who an alert reaches: services whose areas overlap the alert's areas in the hierarchy.

A service covering a county gets an alert about one of its wards, and a service covering a
ward gets an alert about its county: both are inside the danger zone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


def ancestry(area_id: int, parent_of: Mapping[int, int | None]) -> list[int]:
    """The area and its ancestors, nearest first; stops on a cycle rather than looping."""
    chain: list[int] = []
    current: int | None = area_id
    while current is not None and current not in chain:
        chain.append(current)
        current = parent_of.get(current)
    return chain


def areas_overlap(a: int, b: int, parent_of: Mapping[int, int | None]) -> bool:
    return a in ancestry(b, parent_of) or b in ancestry(a, parent_of)


@dataclass(frozen=True)
class ServiceCoverage:
    service_id: int
    service_type: str
    area_ids: frozenset[int]


def services_in_audience(
    services: Iterable[ServiceCoverage],
    alert_area_ids: Iterable[int],
    service_types: Iterable[str],
    parent_of: Mapping[int, int | None],
) -> list[int]:
    """Ids of services that cover any alert area and, when types are named, are of one."""
    wanted_types = {t.lower() for t in service_types}
    targets = list(alert_area_ids)
    chosen = []
    for service in services:
        if wanted_types and service.service_type.lower() not in wanted_types:
            continue
        if any(areas_overlap(s, t, parent_of) for s in service.area_ids for t in targets):
            chosen.append(service.service_id)
    return chosen
