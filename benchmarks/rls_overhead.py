"""What row-level security costs a partnership's queries (docs/operations.md, "Several
partnerships"): the same reads at host level and acting for a partnership, on a throwaway
PostgreSQL database with 50,000 reports (half in each of two partnerships), each with one
named substance (a child table, whose policy looks its report up).

    .venv/bin/python benchmarks/rls_overhead.py [postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import secrets
import sys
import time

import psycopg
from sqlalchemy import func, select

from ldis.store.db import Database
from ldis.store.migrate import upgrade
from ldis.store.models import Report, ReportSubstance
from ldis.store.tenancy import acting_for

ROWS = 50_000
FILL = [
    "INSERT INTO partnerships (code, name, created_at) VALUES ('b', 'B', now())",
    "INSERT INTO reports (reference, kind, partnership_id, received_at, source_type, red_list, "
    "content_hash, data, origin, verified) SELECT 'R' || g, 'near_miss', 1 + (g %% 2), "
    "now() - (g || ' minutes')::interval, 'x', false, md5(g::text), '{}', 'staff', true "
    f"FROM generate_series(1, {ROWS}) g",
    "INSERT INTO report_substances (report_id, field, written, canonical, red_list) "
    f"SELECT g, 'suspected', 'heroin', 'heroin', false FROM generate_series(1, {ROWS}) g",
    "ANALYZE",
]


def _reads(db: Database) -> tuple[float, int]:
    """The best of five: a page of the newest reports, and two counts."""
    best, seen = float("inf"), 0
    for _ in range(5):
        started = time.perf_counter()
        with db.transaction() as session:
            session.scalars(select(Report).order_by(Report.received_at.desc()).limit(50)).all()
            session.scalar(select(func.count()).select_from(ReportSubstance))
            seen = session.scalar(select(func.count()).select_from(Report)) or 0
        best = min(best, time.perf_counter() - started)
    return best, seen


def main(admin_url: str) -> None:
    name = "ldis_rls_" + secrets.token_hex(3)
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
        db = Database(f"{base}/{name}")
        upgrade(db.engine)
        with db.engine.begin() as connection:
            for statement in FILL:
                connection.exec_driver_sql(statement)
        host, host_rows = _reads(db)
        with acting_for(1):
            scoped, scoped_rows = _reads(db)
        print(f"host level:         {host * 1000:6.1f} ms  ({host_rows} reports seen)")
        print(f"acting for one:     {scoped * 1000:6.1f} ms  ({scoped_rows} reports seen)")
        db.dispose()
    finally:
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "postgresql://postgres@127.0.0.1:5432/postgres")
