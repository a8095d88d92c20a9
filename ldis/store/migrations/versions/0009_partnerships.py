# ruff: noqa: S608  (every SQL string here is built from this file's own constants)
"""Several partnerships on one deployment: the partnerships table (a default one, id 1, that
every existing row joins), `partnership_id` on each partnership's own tables, alert shares,
and on PostgreSQL the row-level security that keeps each partnership to its own rows.

How the isolation works (docs/operations.md, "Several partnerships"): a request acting for a
partnership runs `SET LOCAL ROLE ldis_partnership` and sets `ldis.partnership` for its
transaction (ldis.store.tenancy). That role owns nothing, is no superuser and has no
BYPASSRLS, so the policies below always apply to it, whoever the application connects as;
the connecting role (the tables' owner: workers, beat, the command line, a host operator)
is not subject to them. A policy reads the setting without `missing_ok`, so a query in the
role without a partnership fails instead of seeing anything. Child tables follow their
parent row (a report's substances are visible when the report is), so one rule per root.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 20:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ldis.store.models.base

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

ROLE = "ldis_partnership"
# The roots: the rows each partnership owns. users' column may be NULL (host operators).
ROOTS = ("areas", "services", "reports", "signals", "alerts", "users")
ME = "current_setting('ldis.partnership')::integer"
OWN = f"partnership_id = {ME}"
# The partnership acting, or the default one: where a row lands when no one names one.
ACTING_OR_DEFAULT = "COALESCE(NULLIF(current_setting('ldis.partnership', true), '')::integer, 1)"


def _parent(table: str, column: str) -> str:
    return f"EXISTS (SELECT 1 FROM {table} p WHERE p.id = {column})"


def _own_alert(column: str) -> str:
    return f"EXISTS (SELECT 1 FROM alerts p WHERE p.id = {column} AND p.partnership_id = {ME})"


# Child tables: visible and writable exactly when their parent row is.
CHILDREN = {
    "contacts": _parent("services", "service_id"),
    "contact_channels": _parent("contacts", "contact_id"),
    "contact_unsubscriptions": _parent("contacts", "contact_id"),
    "service_areas": _parent("services", "service_id"),
    "service_managers": _parent("services", "service_id"),
    "area_neighbours": _parent("areas", "area_id"),
    "public_subscribers": _parent("areas", "area_id"),
    "report_substances": _parent("reports", "report_id"),
    "report_updates": _parent("reports", "report_id"),
    "report_photos": _parent("reports", "report_id"),
    "signal_reports": f"{_parent('signals', 'signal_id')} AND {_parent('reports', 'report_id')}",
    "grades": "CASE subject WHEN 'signal' THEN "
    + _parent("signals", "subject_id")
    + " WHEN 'report' THEN "
    + _parent("reports", "subject_id")
    + " ELSE false END",
    "panel_decisions": "CASE subject WHEN 'signal' THEN "
    + _parent("signals", "subject_id")
    + " WHEN 'report' THEN "
    + _parent("reports", "subject_id")
    + " ELSE false END",
    # A partnership sees the messages to its own contacts (of its alerts or shared ones).
    "deliveries": _parent("contacts", "contact_id"),
    "delivery_attempts": _parent("deliveries", "delivery_id"),
    "escalations": _parent("services", "service_id"),
    # Notices (verification codes, reminders) are written by requests of any partnership
    # and have no partnership of their own; their outbox rows stay open to the role.
    "outbox_messages": f"delivery_id IS NULL OR {_parent('deliveries', 'delivery_id')}",
    "user_roles": _parent("users", "user_id"),
    "api_tokens": _parent("users", "user_id"),
    "recovery_codes": _parent("users", "user_id"),
    "password_resets": _parent("users", "user_id"),
}
# An alert's own rows: readable with the alert (so a neighbour it is shared with reads its
# versions), written only by the alert's own partnership (a neighbour cannot approve).
ALERT_CHILDREN = ("alert_versions", "alert_approvals")


def upgrade() -> None:
    op.create_table(
        "partnerships",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", ldis.store.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partnerships")),
        sa.UniqueConstraint("code", name=op.f("uq_partnerships_code")),
    )
    op.execute(
        "INSERT INTO partnerships (id, code, name, created_at) "
        "VALUES (1, 'default', 'Default partnership', CURRENT_TIMESTAMP)"
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute("SELECT setval(pg_get_serial_sequence('partnerships', 'id'), 1)")
    for table in ROOTS:
        # The default fills every existing row: a single partnership changes nothing.
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column(
                    "partnership_id",
                    sa.Integer(),
                    server_default=sa.text("1"),
                    nullable=table == "users",
                )
            )
            batch.create_index(op.f(f"ix_{table}_partnership_id"), ["partnership_id"])
            batch.create_foreign_key(
                op.f(f"fk_{table}_partnership_id_partnerships"),
                "partnerships",
                ["partnership_id"],
                ["id"],
            )
    with op.batch_alter_table("alerts") as batch:
        batch.create_unique_constraint(
            op.f("uq_alerts_id_partnership_id"), ["id", "partnership_id"]
        )
    # A lab's result may be filed by two partnerships; a resend within one is still refused.
    with op.batch_alter_table("reports") as batch:
        batch.drop_constraint(op.f("uq_reports_dedupe_key"), type_="unique")
        batch.create_unique_constraint(
            op.f("uq_reports_partnership_id_dedupe_key"), ["partnership_id", "dedupe_key"]
        )
    # One live signal per key within a partnership, not across the deployment.
    op.drop_index("uq_signals_live_key", table_name="signals")
    op.create_index(
        "uq_signals_live_key",
        "signals",
        ["partnership_id", "key"],
        unique=True,
        postgresql_where=sa.text("status IN ('open', 'monitoring')"),
        sqlite_where=sa.text("status IN ('open', 'monitoring')"),
    )
    op.create_table(
        "alert_shares",
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("partnership_id", sa.Integer(), nullable=False),
        sa.Column("shared_from", sa.Integer(), nullable=False),
        sa.Column("shared_by", sa.Integer(), nullable=True),
        sa.Column("shared_at", ldis.store.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id", "shared_from"],
            ["alerts.id", "alerts.partnership_id"],
            name="fk_alert_shares_alert_owner",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["partnership_id"],
            ["partnerships.id"],
            name=op.f("fk_alert_shares_partnership_id_partnerships"),
        ),
        sa.ForeignKeyConstraint(
            ["shared_from"],
            ["partnerships.id"],
            name=op.f("fk_alert_shares_shared_from_partnerships"),
        ),
        sa.ForeignKeyConstraint(
            ["shared_by"], ["users.id"], name=op.f("fk_alert_shares_shared_by_users")
        ),
        sa.PrimaryKeyConstraint("alert_id", "partnership_id", name=op.f("pk_alert_shares")),
    )
    op.create_index(
        op.f("ix_alert_shares_partnership_id"), "alert_shares", ["partnership_id"], unique=False
    )
    if postgres:
        _row_level_security()


def _row_level_security() -> None:
    # The role is cluster-wide: create it once (another database may have), then let the
    # connecting role switch to it. A non-superuser owner without CREATEROLE needs a DBA to
    # run the two statements first (docs/operations.md); then these are no-ops.
    op.execute(
        f"""
        DO $$ BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{ROLE}') THEN
                CREATE ROLE {ROLE} NOLOGIN NOSUPERUSER NOBYPASSRLS;
            END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END $$;
        """
    )
    op.execute(
        f"""
        DO $$ BEGIN
            IF NOT pg_has_role(current_user, '{ROLE}', 'MEMBER') THEN
                EXECUTE format('GRANT {ROLE} TO %I', current_user);
            END IF;
        END $$;
        """
    )
    grant_role_privileges()
    for table in ROOTS:
        op.execute(
            f"ALTER TABLE {table} ALTER COLUMN partnership_id SET DEFAULT {ACTING_OR_DEFAULT}"
        )
    for table in ROOTS:
        _enable(table)
        if table != "alerts":
            op.execute(f"CREATE POLICY own ON {table} TO {ROLE} USING ({OWN}) WITH CHECK ({OWN})")
    op.execute(f"CREATE POLICY own ON alerts TO {ROLE} USING ({OWN}) WITH CHECK ({OWN})")
    op.execute(
        f"CREATE POLICY shared ON alerts FOR SELECT TO {ROLE} USING (EXISTS ("
        "SELECT 1 FROM alert_shares s WHERE s.alert_id = alerts.id "
        f"AND s.partnership_id = {ME}))"
    )
    # A share is seen by both sides and made only by the alert's own partnership (the
    # composite key ties shared_from to the alert's owner). No reference back to alerts
    # here: alerts' policy reads this table, and policies must not recurse.
    _enable("alert_shares")
    op.execute(
        f"CREATE POLICY own ON alert_shares TO {ROLE} "
        f"USING (partnership_id = {ME} OR shared_from = {ME}) WITH CHECK (shared_from = {ME})"
    )
    for table, rule in CHILDREN.items():
        _enable(table)
        op.execute(f"CREATE POLICY parent ON {table} TO {ROLE} USING ({rule}) WITH CHECK ({rule})")
    for table in ALERT_CHILDREN:
        _enable(table)
        op.execute(
            f"CREATE POLICY parent_read ON {table} FOR SELECT TO {ROLE} "
            f"USING ({_parent('alerts', 'alert_id')})"
        )
        op.execute(
            f"CREATE POLICY parent_write ON {table} TO {ROLE} "
            f"USING ({_own_alert('alert_id')}) WITH CHECK ({_own_alert('alert_id')})"
        )


def grant_role_privileges() -> None:
    """What the partnership role may touch at all; the policies then narrow it to rows.
    `ldis db upgrade` runs the same grants after every upgrade, so a table a later
    migration adds is usable by a partnership's requests too."""
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {ROLE}")
    op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {ROLE}")


def _enable(table: str) -> None:
    # No FORCE: the owner (host level) is meant to see everything; the role is never owner.
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in (*CHILDREN, *ALERT_CHILDREN, "alert_shares", *ROOTS):
            for policy in ("own", "shared", "parent", "parent_read", "parent_write"):
                op.execute(f"DROP POLICY IF EXISTS {policy} ON {table}")
            op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
        # The role stays: other databases on the cluster may use it.
    op.drop_index(op.f("ix_alert_shares_partnership_id"), table_name="alert_shares")
    op.drop_table("alert_shares")
    op.drop_index("uq_signals_live_key", table_name="signals")
    op.create_index(
        "uq_signals_live_key",
        "signals",
        ["key"],
        unique=True,
        postgresql_where=sa.text("status IN ('open', 'monitoring')"),
        sqlite_where=sa.text("status IN ('open', 'monitoring')"),
    )
    with op.batch_alter_table("alerts") as batch:
        batch.drop_constraint(op.f("uq_alerts_id_partnership_id"), type_="unique")
    with op.batch_alter_table("reports") as batch:
        batch.drop_constraint(op.f("uq_reports_partnership_id_dedupe_key"), type_="unique")
        batch.create_unique_constraint(op.f("uq_reports_dedupe_key"), ["dedupe_key"])
    for table in reversed(ROOTS):
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(
                op.f(f"fk_{table}_partnership_id_partnerships"), type_="foreignkey"
            )
            batch.drop_index(op.f(f"ix_{table}_partnership_id"))
            batch.drop_column("partnership_id")
    op.drop_table("partnerships")
