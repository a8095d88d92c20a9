"""Who an alert reaches in the area hierarchy."""

from __future__ import annotations

from ldis.domain.audience import ServiceCoverage, ancestry, areas_overlap, services_in_audience

# 1 county -> 2 district -> 3 ward; 4 another district; 5 another county
PARENT = {1: None, 2: 1, 3: 2, 4: 1, 5: None}


def test_ancestry_runs_to_the_root_and_survives_cycles() -> None:
    assert ancestry(3, PARENT) == [3, 2, 1]
    assert ancestry(7, {7: 8, 8: 7}) == [7, 8]


def test_overlap_is_up_or_down_the_tree_never_sideways() -> None:
    assert areas_overlap(1, 3, PARENT) and areas_overlap(3, 1, PARENT)
    assert not areas_overlap(3, 4, PARENT)
    assert not areas_overlap(1, 5, PARENT)


def test_services_chosen_by_area_and_type() -> None:
    services = [
        ServiceCoverage(10, "needle_exchange", frozenset({3})),
        ServiceCoverage(11, "emergency_department", frozenset({1})),
        ServiceCoverage(12, "outreach", frozenset({4})),
        ServiceCoverage(13, "outreach", frozenset({5})),
    ]
    assert services_in_audience(services, [2], [], PARENT) == [10, 11]
    assert services_in_audience(services, [2], ["Emergency_Department"], PARENT) == [11]
    assert services_in_audience(services, [5], [], PARENT) == [13]
