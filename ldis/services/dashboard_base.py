"""What the dashboard's figures share: the period and area being shown, the weekly bucket
as a portable SQL expression, and the plain-dict shape of a figure (its table, its chart).

A figure is a table first: `columns` (key, label, format) and `rows` of plain values. The
CSV download is that table, the page shows it under the chart, and the chart draws the
`chart` part (categories and named series) from the same numbers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Integer, and_, case, literal, select
from sqlalchemy.orm import Session

from ldis.domain.figures import Period
from ldis.store.models import Area

# Formats a column's values are in: code (a stable key: in the CSV, not shown on the page),
# text, date (ISO day), week (ISO Monday), count (int),
# hours (a float, 2 places), percent (a float, 1 place). None means not known.
FORMATS = frozenset({"code", "text", "date", "week", "count", "hours", "percent"})


@dataclass(frozen=True)
class AreaScope:
    """The area the board chose: its own id and code and those of every area inside it;
    `around` adds the areas containing it (an alert sent to the county reached it);
    `groups` maps each area inside it to the sub-area it is counted under (a direct
    child of the chosen area, or the chosen area itself)."""

    code: str
    name: str
    ids: frozenset[int]
    codes: frozenset[str]
    around: frozenset[str]
    groups: dict[int, tuple[str, str]]


def area_tree(session: Session) -> dict[int, tuple[str, str, int | None]]:
    """Every area: id -> (code, name, parent id)."""
    return {
        area_id: (code, name, parent)
        for area_id, code, name, parent in session.execute(
            select(Area.id, Area.code, Area.name, Area.parent_id)
        )
    }


def _ancestors(tree: dict[int, tuple[str, str, int | None]], area_id: int) -> list[int]:
    """The area's parents, nearest first (a loop in bad data stops the walk)."""
    found: list[int] = []
    parent = tree[area_id][2]
    while parent is not None and parent in tree and parent not in found and parent != area_id:
        found.append(parent)
        parent = tree[parent][2]
    return found


def scope_for(session: Session, code: str) -> AreaScope | None:
    """The chosen area with everything inside it, or None when there is no such area."""
    tree = area_tree(session)
    wanted = code.strip().upper()
    chosen = next((i for i, (c, _, _) in tree.items() if c == wanted), None)
    if chosen is None:
        return None
    inside: dict[int, tuple[str, str]] = {chosen: tree[chosen][:2]}
    for area_id in tree:
        chain = _ancestors(tree, area_id)
        if chosen in chain:
            # Counted under the chosen area's direct child on the way down to it.
            position = chain.index(chosen)
            group = chain[position - 1] if position > 0 else area_id
            inside[area_id] = tree[group][:2]
    return AreaScope(
        code=tree[chosen][0],
        name=tree[chosen][1],
        ids=frozenset(inside),
        codes=frozenset(tree[i][0] for i in inside),
        around=frozenset(tree[i][0] for i in _ancestors(tree, chosen)),
        groups=inside,
    )


def top_groups(session: Session) -> dict[int, tuple[str, str]]:
    """With no area chosen, each area is counted under its top-level area."""
    tree = area_tree(session)
    groups = {}
    for area_id in tree:
        chain = _ancestors(tree, area_id)
        groups[area_id] = tree[chain[-1] if chain else area_id][:2]
    return groups


@dataclass
class Context:
    """One dashboard's query: the period, the area (None for everywhere) and one session;
    figures that share work (the alerts issued) keep it here."""

    session: Session
    period: Period
    scope: AreaScope | None
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def week_days(self) -> list[str]:
        return [week.monday.isoformat() for week in self.period.weeks()]


def week_bucket(moment: Any, period: Period) -> ColumnElement[Any]:
    """The index of the period's week holding `moment`, as SQL both PostgreSQL and SQLite
    run (a CASE over the weeks' UTC boundaries, which Python computes in UK time). Only
    meaningful for moments inside the period: filter with `in_period` too."""
    boundaries = period.boundaries()
    whens = [(moment < boundary, index) for index, boundary in enumerate(boundaries[1:-1])]
    last = len(boundaries) - 2
    if not whens:
        return literal(0, Integer)
    return case(*whens, else_=last)


def in_period(moment: Any, period: Period) -> ColumnElement[bool]:
    return and_(moment >= period.start, moment < period.end)


def column(key: str, label: str, fmt: str = "count") -> dict[str, str]:
    assert fmt in FORMATS, fmt
    return {"key": key, "label": label, "format": fmt}


def series(name: str, values: list[Any], *, highlight: bool = False) -> dict[str, Any]:
    return {"name": name, "values": values, "highlight": highlight}


def figure(
    key: str,
    title: str,
    definition: str,
    columns: list[dict[str, str]],
    rows: list[list[Any]],
    chart: dict[str, Any],
    *,
    empty: bool,
    empty_text: str,
) -> dict[str, Any]:
    for row in rows:
        assert len(row) == len(columns), (key, row)
    return {
        "key": key,
        "title": title,
        "definition": definition,
        "columns": columns,
        "rows": rows,
        "chart": chart,
        "empty": empty,
        "empty_text": empty_text,
    }


def chart(
    kind: str,
    categories: list[str],
    parts: list[dict[str, Any]],
    *,
    categories_are: str = "text",
    stacked: bool = True,
    unit: str = "count",
    max_value: float | None = None,
) -> dict[str, Any]:
    """`kind`: bars (upright), hbars (lying down), lines or strips (small multiples);
    `categories_are`: text or week (ISO Mondays, shown as dates); `unit`: count, hours or
    percent."""
    return {
        "type": kind,
        "categories": categories,
        "categories_are": categories_are,
        "series": parts,
        "stacked": stacked,
        "unit": unit,
        "max_value": max_value,
    }
