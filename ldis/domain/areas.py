"""The area hierarchy (county -> district -> ward): edits, cycles refused, depth, tree order."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, model_validator

from ldis.domain.recipients import AreaCode, Name

K = TypeVar("K", bound=Hashable)


class AreaUpdate(BaseModel):
    """A change to an area: a field left out stays as it is; `"parent": null` makes the area
    top-level."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    parent: AreaCode | None = None

    @model_validator(mode="after")
    def _something(self) -> AreaUpdate:
        if "name" in self.model_fields_set and self.name is None:
            raise ValueError("name: give the area's name; it cannot be removed")
        if not self.model_fields_set:
            raise ValueError("body: give the name or the parent to change")
        return self

    @property
    def changes_parent(self) -> bool:
        return "parent" in self.model_fields_set


class NeighbourInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: AreaCode


def ancestors(parents: Mapping[K, K | None], start: K | None) -> list[K]:
    """`start` and every area above it, nearest first; stops at a loop rather than spin."""
    chain: list[K] = []
    seen: set[K] = set()
    current = start
    while current is not None and current not in seen:
        chain.append(current)
        seen.add(current)
        current = parents.get(current)
    return chain


def would_cycle(parents: Mapping[K, K | None], area: K, new_parent: K | None) -> bool:
    """Whether putting `area` under `new_parent` would make it its own ancestor."""
    return new_parent is not None and area in ancestors(parents, new_parent)


def depths(parents: Mapping[K, K | None]) -> dict[K, int]:
    """How far below the top each area is (0 for a top-level area)."""
    return {area: len(ancestors(parents, area)) - 1 for area in parents}


def tree_order(parents: Mapping[K, K | None], sort_key: Callable[[K], Any]) -> list[tuple[K, int]]:
    """Every area with its depth, each followed by its sub-areas (siblings by `sort_key`)."""
    children: dict[K | None, list[K]] = {}
    for area, parent in parents.items():
        children.setdefault(parent if parent in parents else None, []).append(area)
    ordered: list[tuple[K, int]] = []
    stack: list[tuple[K, int]] = [
        (a, 0) for a in sorted(children.get(None, []), key=sort_key, reverse=True)
    ]
    while stack:
        area, depth = stack.pop()
        ordered.append((area, depth))
        below = sorted(children.get(area, []), key=sort_key, reverse=True)
        stack.extend((child, depth + 1) for child in below)
    return ordered
