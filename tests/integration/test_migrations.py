"""The migrations build exactly the schema the models describe, on PostgreSQL."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from ldis.bootstrap import Container
from ldis.store.migrate import current_revision, head_revision
from ldis.store.models import Base

pytestmark = pytest.mark.integration


def test_models_and_migrations_agree(container: Container) -> None:
    assert current_revision(container.db.engine) == head_revision()
    with container.db.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []
