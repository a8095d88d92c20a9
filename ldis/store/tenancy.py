"""Which partnership the current code acts for, and the one place that tells the database.

A request signed in as a partnership's person acts for that partnership: every transaction
it begins (ORM session or core connection) first runs, on PostgreSQL,

    SET LOCAL ROLE ldis_partnership; SELECT set_config('ldis.partnership', '<id>', true)

so the row-level security policies of migration 0009 decide what it may see and write, not
the queries. Both are transaction-local: a pooled connection goes back clean at COMMIT or
ROLLBACK. Code acting for no partnership (workers, beat, the command line, host operators,
the public doors) runs as the connecting role and sees every partnership's rows: that is
the trust boundary (docs/operations.md, "Several partnerships").
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import Connection, Engine, event, text

ROLE = "ldis_partnership"

_acting: ContextVar[int | None] = ContextVar("ldis_partnership", default=None)


class TenancyError(RuntimeError):
    """Code acting for a partnership tried to reach the database in a way the isolation
    cannot cover (an autocommit connection): refused rather than run unrestricted."""


def acting_partnership() -> int | None:
    return _acting.get()


def act_for(partnership_id: int | None) -> None:
    """From now on in this context (a request, a task), act for `partnership_id` (None:
    host level). Web requests call it once the signed-in person is known."""
    _acting.set(partnership_id)


@contextmanager
def acting_for(partnership_id: int | None) -> Iterator[None]:
    """Act for `partnership_id` inside the block only (a worker's per-partnership pass)."""
    token = _acting.set(partnership_id)
    try:
        yield
    finally:
        _acting.reset(token)


def _on_begin(connection: Any) -> None:
    partnership_id = _acting.get()
    if partnership_id is None:
        return
    if connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
        # SET LOCAL would last one statement: the rest would run unrestricted.
        raise TenancyError("an autocommit connection cannot act for a partnership")
    connection.exec_driver_sql(f"SET LOCAL ROLE {ROLE}")
    _set(connection, partnership_id)


def install(engine: Engine) -> None:
    """Apply the acting partnership to every transaction on `engine` (PostgreSQL only:
    SQLite serves a single partnership, see ldis.services.partnerships)."""
    if engine.dialect.name == "postgresql":
        event.listen(engine, "begin", _on_begin)


@contextmanager
def switched(connection: Connection, partnership_id: int) -> Iterator[None]:
    """Inside the current transaction, act for `partnership_id` for one step, then for the
    partnership acting again: an alert's own approval writes what a neighbour it is shared
    with receives, seeing (and writing to) only that neighbour's contacts meanwhile. At host
    level, or on SQLite, there is nothing to switch."""
    acting = _acting.get()
    if acting is None or connection.dialect.name != "postgresql":
        yield
        return
    _set(connection, partnership_id)
    try:
        yield
    finally:
        _set(connection, acting)


def _set(connection: Connection, partnership_id: int) -> None:
    connection.execute(
        text("SELECT set_config('ldis.partnership', :id, true)"), {"id": str(int(partnership_id))}
    )
