"""Cheaper index work on deliveries: each message of a fan-out updates its row twice (claim,
then record), and both updates are non-HOT, so each writes an entry in every index whose
predicate the new row version satisfies (docs/performance.md, "two updates of each
delivery row").

- `ix_deliveries_status_queued_at` holds only rows on their way (`queued`, `sending`):
  the sweeper, the fan-out's `queued_ids`, `cancel_queued` and the oldest-pending metric
  look rows up there; a recorded (sent, delivered, failed, cancelled) row leaves it, so a
  record writes no entry in it, and the index stays the size of the backlog.
- `ix_deliveries_provider_id` holds only rows with a provider id: a queued row (approval)
  and a claimed one never enter it. A status callback's `provider_id = :sid` implies
  `provider_id IS NOT NULL`, so it still uses the index.
- PostgreSQL only: `fillfactor = 85` on deliveries, so an update that leaves every indexed
  column alone (a heartbeat's `claimed_at`, a receipt's `provider_status`, an
  acknowledgement) can stay on its page as a HOT update. It applies to pages written from
  now on; existing pages fill up as before until the table is rewritten (VACUUM FULL).

Both indexes are rebuilt in the migration's transaction (deliveries locked against writes
meanwhile: a second or so per million rows on a modest server).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# Frozen copies of the model's predicates (ldis.store.models.deliveries).
ON_ITS_WAY = "status IN ('queued', 'sending')"
NAMED = "provider_id IS NOT NULL"
FILLFACTOR = 85


def upgrade() -> None:
    op.drop_index("ix_deliveries_status_queued_at", table_name="deliveries")
    op.create_index(
        "ix_deliveries_status_queued_at",
        "deliveries",
        ["status", "queued_at"],
        unique=False,
        postgresql_where=sa.text(ON_ITS_WAY),
        sqlite_where=sa.text(ON_ITS_WAY),
    )
    op.drop_index("ix_deliveries_provider_id", table_name="deliveries")
    op.create_index(
        "ix_deliveries_provider_id",
        "deliveries",
        ["provider_id"],
        unique=False,
        postgresql_where=sa.text(NAMED),
        sqlite_where=sa.text(NAMED),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE deliveries SET (fillfactor = {FILLFACTOR})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE deliveries RESET (fillfactor)")
    op.drop_index("ix_deliveries_provider_id", table_name="deliveries")
    op.create_index("ix_deliveries_provider_id", "deliveries", ["provider_id"], unique=False)
    op.drop_index("ix_deliveries_status_queued_at", table_name="deliveries")
    op.create_index(
        "ix_deliveries_status_queued_at", "deliveries", ["status", "queued_at"], unique=False
    )
