"""Server-less ("embedded") Celery broker: kombu's SQLAlchemy transport on SQLite.

Broker URL form: ``sqla+sqlite:////abs/path/broker.sqlite``.

Two gaps in kombu 5.7's transport are closed here:

* It passes *every* transport option to ``create_engine()``, so the usual
  ``broker_transport_options={"polling_interval": ...}`` raises ``TypeError``.
  The interval is therefore set on the transport class, which is where
  ``virtual.Transport.__init__`` falls back to when the option is absent.
* With ``task_acks_late`` and prefetch 1, every time the pool is full the
  channel reports "empty" and the transport sleeps a whole polling interval
  before fetching again, capping throughput near concurrency / interval.
  The channel now waits (up to one interval) for a slot to free instead:
  a cheap in-memory check, no SQL, and idle polling is unchanged.
* It never deletes delivered messages: ``_get`` only flips ``visible`` to False.
  ``purge_consumed_messages`` is the janitor for those rows.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from typing import Any

from kombu.transport import sqlalchemy as kombu_sqla
from sqlalchemy import Boolean, DateTime, Engine, Integer, create_engine, event, inspect
from sqlalchemy import column as sa_column
from sqlalchemy import table as sa_table

__all__ = ["configure_embedded_transport", "purge_consumed_messages"]

# Long enough to ride out a purge batch or a burst of producers; short enough
# that a truly wedged lock still surfaces as an error instead of a hang.
_BUSY_TIMEOUT_MS = 30_000
# Keeps each purge transaction (the SQLite write lock) short so producers and
# the worker's BEGIN IMMEDIATE polls are not starved while a big backlog goes.
_PURGE_BATCH = 5_000
# How often a saturated worker re-checks for a freed prefetch slot (see below).
_SLOT_RECHECK_S = 0.002
_PATCH_MARK = "_ldis_embedded_patched"
_lock = threading.Lock()


def _set_sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    try:
        # WAL: readers never block the writer and vice versa, so the web process,
        # beat and the worker's polling do not trip over each other.
        cur.execute("PRAGMA journal_mode=WAL")
        # Wait for the write lock instead of failing with "database is locked".
        cur.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        # NORMAL is crash-safe in WAL mode (only an OS crash/power loss can drop
        # the last commits) and avoids an fsync per enqueued task.
        cur.execute("PRAGMA synchronous=NORMAL")
    finally:
        cur.close()


def _harden_engine(engine: Engine) -> Engine:
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _set_sqlite_pragmas)
    return engine


def _dispose_engines_after_fork() -> None:
    # kombu caches engines in a class-level dict. A prefork child (or a forked
    # gunicorn worker) must not reuse the parent's SQLite handles: drop the
    # pooled connections without closing them, so the parent's stay intact.
    for engine, _session in list(kombu_sqla.Channel._engines.values()):
        engine.dispose(close=False)


def configure_embedded_transport(polling_interval: float = 0.1) -> None:
    """Tune kombu's SQLAlchemy transport for the embedded broker (idempotent).

    Call before the Celery app opens a broker connection, in every process that
    uses the broker (web, worker, beat). The interval is the sleep between empty
    polls: it is the latency floor for an idle worker and the cost of idling.
    """
    if polling_interval <= 0:
        raise ValueError("polling_interval must be > 0 (0 would busy-loop on SQLite)")
    kombu_sqla.Transport.polling_interval = polling_interval
    with _lock:
        channel_cls: Any = kombu_sqla.Channel
        if getattr(channel_cls, _PATCH_MARK, False):
            return
        # kombu has no engine hook, so wrap the factory it calls once per URL.
        original = channel_cls._engine_from_config

        def _engine_from_config(self: Any) -> Engine:
            return _harden_engine(original(self))

        original_drain = channel_cls.drain_events

        def drain_events(self: Any, timeout: float | None = None, callback: Any = None) -> Any:
            # Acks arrive from the pool's result thread, so a slot can free
            # while we wait. Bounded by the interval so other channels in
            # kombu's round-robin cycle are not starved.
            if self._consumers and not self.qos.can_consume():
                deadline = time.monotonic() + kombu_sqla.Transport.polling_interval
                while not self.qos.can_consume() and time.monotonic() < deadline:
                    time.sleep(_SLOT_RECHECK_S)
            return original_drain(self, timeout=timeout, callback=callback)

        channel_cls._engine_from_config = _engine_from_config
        channel_cls.drain_events = drain_events
        setattr(channel_cls, _PATCH_MARK, True)
        os.register_at_fork(after_in_child=_dispose_engines_after_fork)


def _sqlalchemy_url(broker_url: str) -> str:
    for prefix in ("sqla+", "sqlalchemy+"):
        if broker_url.startswith(prefix):
            return broker_url[len(prefix) :]
    raise ValueError(f"not a kombu SQLAlchemy broker URL: {broker_url!r}")


def purge_consumed_messages(
    broker_url: str,
    older_than_seconds: float = 3600,
    *,
    message_table: str = "kombu_message",
) -> int:
    """Delete delivered (``visible`` = False) messages consumed over ``older_than_seconds`` ago.

    Returns the number of rows deleted. ``message_table`` must match the
    ``message_tablename`` transport option if that was changed.
    """
    # kombu stamps the ``timestamp`` column via ``onupdate=datetime.now`` (naive
    # local time) when it flips ``visible``; rows are inserted with NULL. So the
    # column is the *consumption* time, and the cutoff must be naive local too.
    cutoff = dt.datetime.now() - dt.timedelta(seconds=older_than_seconds)
    msg = sa_table(
        message_table,
        sa_column("id", Integer),
        sa_column("visible", Boolean),
        sa_column("timestamp", DateTime),
    )
    done = msg.c.visible.is_(False) & (msg.c.timestamp < cutoff)
    engine = _harden_engine(create_engine(_sqlalchemy_url(broker_url)))
    total = 0
    try:
        if not inspect(engine).has_table(message_table):
            return 0  # broker never used yet
        while True:
            batch = msg.select().with_only_columns(msg.c.id).where(done).limit(_PURGE_BATCH)
            with engine.begin() as conn:
                deleted = conn.execute(msg.delete().where(msg.c.id.in_(batch))).rowcount
            total += deleted
            if deleted < _PURGE_BATCH:
                return total
    finally:
        engine.dispose()
