"""People and trust: reporters' service, two-factor (TOTP secret, last step, recovery
codes), lockout counters, password resets, token scopes, report redaction (retention)
and contact erasure.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 17:45:34.010183
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ldis.store.models.base

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "password_resets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", ldis.store.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", ldis.store.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", ldis.store.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_password_resets_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_resets")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_password_resets_token_hash")),
    )
    op.create_index(
        op.f("ix_password_resets_user_id"), "password_resets", ["user_id"], unique=False
    )
    op.create_table(
        "recovery_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=200), nullable=False),
        sa.Column("created_at", ldis.store.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", ldis.store.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_recovery_codes_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recovery_codes")),
    )
    op.create_index(op.f("ix_recovery_codes_user_id"), "recovery_codes", ["user_id"], unique=False)
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(
            sa.Column("scopes", sa.JSON(), server_default=sa.text("'[]'"), nullable=False)
        )
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(
            sa.Column("erased_at", ldis.store.models.base.UTCDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("reports") as batch:
        batch.add_column(
            sa.Column(
                "redacted_at", ldis.store.models.base.UTCDateTime(timezone=True), nullable=True
            )
        )
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("service_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("totp_secret", sa.String(length=300), nullable=True))
        batch.add_column(
            sa.Column(
                "totp_confirmed_at",
                ldis.store.models.base.UTCDateTime(timezone=True),
                nullable=True,
            )
        )
        batch.add_column(sa.Column("totp_last_step", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("failed_logins", sa.Integer(), server_default="0", nullable=False)
        )
        batch.add_column(
            sa.Column(
                "locked_until", ldis.store.models.base.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch.add_column(
            sa.Column(
                "password_changed_at",
                ldis.store.models.base.UTCDateTime(timezone=True),
                nullable=True,
            )
        )
        batch.add_column(
            sa.Column(
                "last_login_at", ldis.store.models.base.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch.create_index(batch.f("ix_users_service_id"), ["service_id"], unique=False)
        batch.create_foreign_key(
            batch.f("fk_users_service_id_services"),
            "services",
            ["service_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint(batch.f("fk_users_service_id_services"), type_="foreignkey")
        batch.drop_index(batch.f("ix_users_service_id"))
        for name in (
            "last_login_at",
            "password_changed_at",
            "locked_until",
            "failed_logins",
            "totp_last_step",
            "totp_confirmed_at",
            "totp_secret",
            "service_id",
        ):
            batch.drop_column(name)
    with op.batch_alter_table("reports") as batch:
        batch.drop_column("redacted_at")
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("erased_at")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("scopes")
    op.drop_index(op.f("ix_recovery_codes_user_id"), table_name="recovery_codes")
    op.drop_table("recovery_codes")
    op.drop_index(op.f("ix_password_resets_user_id"), table_name="password_resets")
    op.drop_table("password_resets")
