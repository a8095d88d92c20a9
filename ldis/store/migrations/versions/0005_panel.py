"""The panel: grades and decisions per case; alert versions with purpose, state, revision
and authors; voidable approvals; alert lifecycle dates and timing milestones; an append-only
audit log (triggers refuse UPDATE and DELETE) with an index for per-record history.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 16:56:54.985969
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import ldis.store.models.base

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

UTC_TIME = ldis.store.models.base.UTCDateTime(timezone=True)
JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")

PG_AUDIT_GUARD = """
CREATE OR REPLACE FUNCTION ldis_audit_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
  FOR EACH ROW EXECUTE FUNCTION ldis_audit_append_only();
"""


def _audit_guard() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_AUDIT_GUARD)
        return
    for event in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER audit_events_no_{event.lower()} BEFORE {event} ON audit_events "
            f"BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: {event} refused'); END"
        )


def upgrade() -> None:
    op.create_table(
        "grades",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(length=20), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("criteria", JSON_DOC, nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("rag", sa.String(length=10), nullable=False),
        sa.Column("recommendation", sa.String(length=30), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_grades_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grades")),
    )
    op.create_index(
        "uq_grades_case_user", "grades", ["subject", "subject_id", "user_id"], unique=True
    )
    op.create_table(
        "panel_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(length=20), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("decision", sa.String(length=30), nullable=False),
        sa.Column("rag", sa.String(length=10), nullable=False),
        sa.Column("reasons", sa.String(length=4000), nullable=False),
        sa.Column("decided_by", sa.Integer(), nullable=False),
        sa.Column("decided_at", UTC_TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["decided_by"], ["users.id"], name=op.f("fk_panel_decisions_decided_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_panel_decisions")),
    )
    op.create_index(
        "ix_panel_decisions_case", "panel_decisions", ["subject", "subject_id", "id"], unique=False
    )
    with op.batch_alter_table("alert_approvals") as batch:
        batch.add_column(sa.Column("revision", sa.Integer(), server_default="1", nullable=False))
        batch.add_column(sa.Column("voided_at", UTC_TIME, nullable=True))
        batch.drop_constraint("uq_alert_approvals_alert_id_version_user_id", type_="unique")
        batch.create_index(
            "uq_alert_approvals_standing",
            ["alert_id", "version", "user_id"],
            unique=True,
            postgresql_where=sa.text("voided_at IS NULL"),
            sqlite_where=sa.text("voided_at IS NULL"),
        )
    with op.batch_alter_table("alert_versions") as batch:
        batch.add_column(
            sa.Column("purpose", sa.String(length=20), server_default="alert", nullable=False)
        )
        batch.add_column(
            sa.Column("state", sa.String(length=30), server_default="draft", nullable=False)
        )
        batch.add_column(sa.Column("revision", sa.Integer(), server_default="1", nullable=False))
        batch.add_column(
            sa.Column("author_ids", sa.JSON(), server_default=sa.text("'[]'"), nullable=False)
        )
        batch.add_column(sa.Column("rejected_at", UTC_TIME, nullable=True))
        batch.add_column(sa.Column("reject_reason", sa.String(length=1000), nullable=True))
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("live_version", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("signal_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("report_id", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("exercise", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        for name in (
            "review_by",
            "review_reminded_at",
            "expires_at",
            "first_report_at",
            "signal_at",
            "decided_at",
            "approved_at",
            "withdrawn_at",
            "expired_at",
        ):
            batch.add_column(sa.Column(name, UTC_TIME, nullable=True))
        batch.create_index(batch.f("ix_alerts_expires_at"), ["expires_at"], unique=False)
        batch.create_index(batch.f("ix_alerts_report_id"), ["report_id"], unique=False)
        batch.create_index(batch.f("ix_alerts_signal_id"), ["signal_id"], unique=False)
        batch.create_foreign_key(
            batch.f("fk_alerts_report_id_reports"), "reports", ["report_id"], ["id"]
        )
        batch.create_foreign_key(
            batch.f("fk_alerts_signal_id_signals"), "signals", ["signal_id"], ["id"]
        )
    # Alerts made before versions had their own state: each had one version, in the
    # alert's state; approved ones are live at that version.
    op.execute(
        "UPDATE alert_versions SET state = (SELECT status FROM alerts "
        "WHERE alerts.id = alert_versions.alert_id AND alerts.current_version = "
        "alert_versions.version) WHERE EXISTS (SELECT 1 FROM alerts WHERE alerts.id = "
        "alert_versions.alert_id AND alerts.current_version = alert_versions.version)"
    )
    op.execute(
        "UPDATE alerts SET live_version = current_version, approved_at = updated_at "
        "WHERE status = 'approved'"
    )
    bind = op.get_bind()
    versions = sa.table(
        "alert_versions",
        sa.column("id", sa.Integer()),
        sa.column("drafter_id", sa.Integer()),
        sa.column("author_ids", sa.JSON()),
    )
    for version_id, drafter_id in bind.execute(sa.select(versions.c.id, versions.c.drafter_id)):
        bind.execute(
            versions.update().where(versions.c.id == version_id).values(author_ids=[drafter_id])
        )
    op.create_index(
        "ix_audit_events_entity", "audit_events", ["entity", "entity_id", "id"], unique=False
    )
    _audit_guard()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events")
        op.execute("DROP FUNCTION IF EXISTS ldis_audit_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_delete")
    op.drop_index("ix_audit_events_entity", table_name="audit_events")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_constraint(batch.f("fk_alerts_signal_id_signals"), type_="foreignkey")
        batch.drop_constraint(batch.f("fk_alerts_report_id_reports"), type_="foreignkey")
        batch.drop_index(batch.f("ix_alerts_signal_id"))
        batch.drop_index(batch.f("ix_alerts_report_id"))
        batch.drop_index(batch.f("ix_alerts_expires_at"))
        for name in (
            "expired_at",
            "withdrawn_at",
            "approved_at",
            "decided_at",
            "signal_at",
            "first_report_at",
            "expires_at",
            "review_reminded_at",
            "review_by",
            "exercise",
            "report_id",
            "signal_id",
            "live_version",
        ):
            batch.drop_column(name)
    with op.batch_alter_table("alert_versions") as batch:
        for name in ("reject_reason", "rejected_at", "author_ids", "revision", "state", "purpose"):
            batch.drop_column(name)
    with op.batch_alter_table("alert_approvals") as batch:
        batch.drop_index("uq_alert_approvals_standing")
        batch.create_unique_constraint(
            "uq_alert_approvals_alert_id_version_user_id", ["alert_id", "version", "user_id"]
        )
        batch.drop_column("voided_at")
        batch.drop_column("revision")
    op.drop_index("ix_panel_decisions_case", table_name="panel_decisions")
    op.drop_table("panel_decisions")
    op.drop_index("uq_grades_case_user", table_name="grades")
    op.drop_table("grades")
