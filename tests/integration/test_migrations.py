"""The migrations build exactly the schema the models describe, on PostgreSQL."""

from __future__ import annotations

import runpy

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from ldis.bootstrap import Container
from ldis.domain.recipients import DEFAULT_SERVICE_TYPES
from ldis.store.migrate import MIGRATIONS, current_revision, head_revision
from ldis.store.models import Base

pytestmark = pytest.mark.integration


def test_models_and_migrations_agree(container: Container) -> None:
    assert current_revision(container.db.engine) == head_revision()
    with container.db.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def test_migration_seeds_the_default_service_types(container: Container) -> None:
    """The frozen copy in migration 0004 and the domain's list agree (tests re-seed from it)."""
    path = MIGRATIONS / "versions" / "0004_recipients.py"
    seed = runpy.run_path(str(path))["SEED_SERVICE_TYPES"]
    assert [tuple(pair) for pair in seed] == list(DEFAULT_SERVICE_TYPES)


def test_index_predicates_and_table_options_agree(container: Container) -> None:
    """What compare_metadata does not compare: partial indexes' predicates (as PostgreSQL
    normalises them: each model predicate is built on a scratch copy of its table) and
    tables' storage parameters (`postgresql_with`, e.g. deliveries' fillfactor)."""
    predicate = text(
        "SELECT pg_get_expr(i.indpred, i.indrelid) FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = :name"
    )
    with container.db.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            options = table.dialect_options["postgresql"]["with"] or {}
            reloptions = connection.scalar(
                text("SELECT reloptions FROM pg_class WHERE relname = :t AND relkind = 'r'"),
                {"t": table.name},
            )
            assert sorted(reloptions or []) == sorted(f"{k}={v}" for k, v in options.items()), (
                table.name
            )
            for index in table.indexes:
                where = index.dialect_options["postgresql"]["where"]
                expected = None
                if where is not None:
                    with connection.begin_nested() as scratch:
                        connection.execute(text(f"CREATE TEMP TABLE probe (LIKE {table.name})"))
                        columns = ", ".join(c.name for c in index.columns)
                        connection.execute(
                            text(f"CREATE INDEX probe_ix ON probe ({columns}) WHERE {where}")
                        )
                        expected = connection.scalar(predicate, {"name": "probe_ix"})
                        scratch.rollback()
                actual = connection.scalar(predicate, {"name": index.name})
                assert actual == expected, index.name
