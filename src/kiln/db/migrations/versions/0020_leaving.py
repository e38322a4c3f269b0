"""leaving: usernames of deleted accounts held back for a time

Revision ID: 0020
Revises: 0016
Create Date: 2026-12-06 20:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import kiln.db.base

revision = "0020"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "held_usernames",
        sa.Column("username", sa.String(length=30), nullable=False),
        sa.Column("until", kiln.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created", kiln.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("username", name=op.f("pk_held_usernames")),
    )
    with op.batch_alter_table("held_usernames") as batch:
        batch.create_index(batch.f("ix_held_usernames_until"), ["until"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("held_usernames") as batch:
        batch.drop_index(batch.f("ix_held_usernames_until"))
    op.drop_table("held_usernames")
