"""Public reports and subscriptions: reports' origin and verified flag, the public texts
the panel edits, public subscribers to alerts by text (number sealed, keyed hash), and
used public form tokens.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 20:03:21.185567
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ldis.store.models.base

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "public_form_tokens",
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("used_at", ldis.store.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_public_form_tokens")),
    )
    op.create_index(
        op.f("ix_public_form_tokens_used_at"), "public_form_tokens", ["used_at"], unique=False
    )
    op.create_table(
        "public_subscribers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("phone_hash", sa.String(length=64), nullable=False),
        sa.Column("phone_sealed", sa.String(length=400), nullable=False),
        sa.Column("area_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created_at", ldis.store.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", ldis.store.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["area_id"],
            ["areas.id"],
            name=op.f("fk_public_subscribers_area_id_areas"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_public_subscribers")),
        sa.UniqueConstraint(
            "phone_hash", "area_id", name=op.f("uq_public_subscribers_phone_hash_area_id")
        ),
    )
    op.create_index(
        op.f("ix_public_subscribers_area_id"), "public_subscribers", ["area_id"], unique=False
    )
    op.create_index(
        op.f("ix_public_subscribers_phone_hash"), "public_subscribers", ["phone_hash"], unique=False
    )
    op.create_table(
        "public_texts",
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.Column("updated_at", ldis.store.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["updated_by"], ["users.id"], name=op.f("fk_public_texts_updated_by_users")
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_public_texts")),
    )
    with op.batch_alter_table("reports") as batch:
        batch.add_column(
            sa.Column("origin", sa.String(length=20), server_default="staff", nullable=False)
        )
        batch.add_column(
            sa.Column("verified", sa.Boolean(), server_default=sa.true(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("reports") as batch:
        batch.drop_column("verified")
        batch.drop_column("origin")
    op.drop_table("public_texts")
    op.drop_index(op.f("ix_public_subscribers_phone_hash"), table_name="public_subscribers")
    op.drop_index(op.f("ix_public_subscribers_area_id"), table_name="public_subscribers")
    op.drop_table("public_subscribers")
    op.drop_index(op.f("ix_public_form_tokens_used_at"), table_name="public_form_tokens")
    op.drop_table("public_form_tokens")
