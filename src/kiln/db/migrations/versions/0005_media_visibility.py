"""media visibility and rendition key token

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 19:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing items stay public with an empty token: their stored keys keep working, and the
    # first switch to private gives them a token and moves their files.
    with op.batch_alter_table("media", schema=None) as batch_op:
        batch_op.add_column(sa.Column("visibility", sa.String(length=10), server_default="public", nullable=False))
        batch_op.add_column(sa.Column("key_token", sa.String(length=32), server_default="", nullable=False))
        batch_op.create_check_constraint(op.f("ck_media_visibility"), "visibility IN ('public', 'unlisted', 'private')")


def downgrade() -> None:
    with op.batch_alter_table("media", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_media_visibility"), type_="check")
        batch_op.drop_column("key_token")
        batch_op.drop_column("visibility")
