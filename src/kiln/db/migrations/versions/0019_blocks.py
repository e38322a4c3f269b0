"""blocks: people block and mute each other; a count on each person of the blocks and mutes that
change what they see

Revision ID: 0019
Revises: 0016
Create Date: 2026-12-06 20:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import kiln.db.base

revision = "0019"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("hiding", sa.Integer(), server_default="0", nullable=False))
    op.create_table(
        "user_blocks",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("created", kiln.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('block', 'mute')", name=op.f("ck_user_blocks_kind")),
        sa.CheckConstraint("user_id <> target_id", name=op.f("ck_user_blocks_not_self")),
        sa.ForeignKeyConstraint(["target_id"], ["users.id"], name=op.f("fk_user_blocks_target_id_users"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_user_blocks_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "target_id", "kind", name=op.f("pk_user_blocks")),
    )
    with op.batch_alter_table("user_blocks") as batch:
        batch.create_index("ix_user_blocks_target_kind", ["target_id", "kind"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("user_blocks") as batch:
        batch.drop_index("ix_user_blocks_target_kind")
    op.drop_table("user_blocks")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("hiding")
