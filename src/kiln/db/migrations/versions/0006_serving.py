"""site change counter, shared throttle counters, per-user upload limit

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 22:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import kiln.db.base

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "site_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.Column("changed_at", kiln.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_site_changes")),
    )
    op.create_table(
        "throttle_keys",
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("hits", sa.JSON(), nullable=False),
        sa.Column("blocked_until", sa.Float(), nullable=False),
        sa.Column("strikes", sa.Integer(), nullable=False),
        sa.Column("seen", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_throttle_keys")),
    )
    op.create_index(op.f("ix_throttle_keys_seen"), "throttle_keys", ["seen"], unique=False)
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("upload_limit_bytes", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("upload_limit_bytes")
    op.drop_index(op.f("ix_throttle_keys_seen"), table_name="throttle_keys")
    op.drop_table("throttle_keys")
    op.drop_table("site_changes")
