"""upload keys: an upload's Idempotency-Key, per person

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 14:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import kiln.db.base

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "upload_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("media_id", sa.Integer(), nullable=False),
        sa.Column("created", kiln.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["media_id"], ["media.id"], name=op.f("fk_upload_keys_media_id_media"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_upload_keys_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_upload_keys")),
        sa.UniqueConstraint("user_id", "key", name=op.f("uq_upload_keys_user_id_key")),
    )
    op.create_index(op.f("ix_upload_keys_media_id"), "upload_keys", ["media_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_upload_keys_media_id"), table_name="upload_keys")
    op.drop_table("upload_keys")
