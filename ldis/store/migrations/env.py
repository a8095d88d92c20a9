"""Alembic environment: the URL comes from the caller (ldis.store.migrate), never a file."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from ldis.store.models import Base


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds tables so one migration
        # script serves both SQLite and PostgreSQL.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `ldis db upgrade`")
run(connection)
