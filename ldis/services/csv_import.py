"""Import ambulance call-outs from CSV with a column mapping (`ldis import-callouts`).

A row without the source's own reference gets one derived from the file: its content and
how many identical rows came before it. Importing the same file again therefore adds
nothing, while genuinely identical call-outs within one file (same day, same rounded
location) are all kept.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

from ldis.domain.errors import ValidationFailed
from ldis.domain.principal import Principal
from ldis.services.intake import BatchResult, file_batch
from ldis.services.ports import TaskQueue
from ldis.store.db import Database

OUR_FIELDS = ("occurred_at", "lat", "lon", "area", "naloxone_given", "reference")
CHUNK = 2000


def parse_mapping(pairs: Iterable[str]) -> dict[str, str]:
    """`our=theirs` pairs into {our: theirs}; ValueError naming a bad pair."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        ours, sep, theirs = pair.partition("=")
        ours, theirs = ours.strip(), theirs.strip()
        if not sep or not ours or not theirs:
            raise ValueError(f"--map {pair!r}: write it as our=theirs, e.g. lat=latitude")
        if ours not in OUR_FIELDS:
            raise ValueError(f"--map {pair!r}: {ours!r} is not one of {', '.join(OUR_FIELDS)}")
        mapping[ours] = theirs
    return mapping


@dataclass
class ImportResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)  # {"line", "fields"}


def _rows(
    reader: Iterator[list[str]], header: list[str], columns: dict[str, str]
) -> Iterator[tuple[int, dict[str, Any] | None, dict[str, str]]]:
    """(line number, callout body or None, problems) per data row."""
    position = {name: i for i, name in enumerate(header)}
    seen: Counter[str] = Counter()
    for cells in reader:
        line = reader.line_num  # type: ignore[attr-defined]
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(header):
            yield line, None, {"row": f"has {len(cells)} columns; the header has {len(header)}"}
            continue
        value = {ours: cells[position[theirs]].strip() for ours, theirs in columns.items()}
        body: dict[str, Any] = {"occurred_at": value.get("occurred_at", "")}
        if value.get("area"):
            body["area"] = value["area"]
        if value.get("lat") or value.get("lon"):
            body["location"] = {"lat": value.get("lat") or None, "lon": value.get("lon") or None}
        if "naloxone_given" in value:
            body["naloxone_given"] = value["naloxone_given"]
        reference = value.get("reference")
        if not reference:
            content = "\x1f".join(cells)
            seen[content] += 1
            digest = hashlib.sha256(content.encode()).hexdigest()[:24]
            reference = f"csv-{digest}-{seen[content]}"
        body["reference"] = reference
        yield line, body, {}


def import_callouts(
    db: Database,
    actor: Principal,
    stream: TextIO,
    *,
    source: str,
    mapping: dict[str, str],
    queue: TaskQueue | None = None,
) -> ImportResult:
    reader = csv.reader(stream)
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        raise ValidationFailed({"file": "is empty; it needs a header row"}) from None
    columns = {ours: mapping.get(ours, ours) for ours in OUR_FIELDS}
    missing_required = [c for c in ("occurred_at",) if columns[c] not in header]
    if missing_required:
        raise ValidationFailed(
            {
                "file": f"no column {columns['occurred_at']!r} for occurred_at; map it with "
                f"--map occurred_at=<column>"
            }
        )
    for ours, theirs in mapping.items():
        if theirs not in header:
            raise ValidationFailed({f"map.{ours}": f"the file has no column {theirs!r}"})
    columns = {ours: theirs for ours, theirs in columns.items() if theirs in header}
    result = ImportResult()
    pending: list[tuple[int, dict[str, Any]]] = []

    def flush() -> None:
        bodies = [
            {
                **{k: v for k, v in body.items() if k != "reference"},
                "source": {"type": "ambulance", "name": source, "reference": body["reference"]},
            }
            for _, body in pending
        ]
        batch: BatchResult = file_batch(db, actor, bodies, kind="callout", queue=queue)
        result.accepted += len(batch.accepted)
        result.duplicates += len(batch.duplicates)
        result.rejected.extend(
            {"line": pending[r["index"]][0], "fields": r["fields"]} for r in batch.rejected
        )
        pending.clear()

    for line, body, problems in _rows(reader, header, columns):
        if body is None:
            result.rejected.append({"line": line, "fields": problems})
            continue
        pending.append((line, body))
        if len(pending) >= CHUNK:
            flush()
    if pending:
        flush()
    result.rejected.sort(key=lambda r: int(r["line"]))
    return result


def import_text(db: Database, actor: Principal, text: str, **kwargs: Any) -> ImportResult:
    return import_callouts(db, actor, io.StringIO(text), **kwargs)
