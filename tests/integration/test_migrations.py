"""The migrations build exactly the schema the models describe, on PostgreSQL."""

from __future__ import annotations

import runpy

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

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
