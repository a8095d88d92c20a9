"""A checked, re-encoded photo of a sample or its packaging (no camera metadata left)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Photo:
    content_type: str
    width: int
    height: int
    data: bytes
