"""the outbox: side effects (mail first) recorded in the transaction that causes them

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 12:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import kiln.db.base

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("summary", sa.String(length=300), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("enqueued", kiln.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("next_run", kiln.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(length=100), nullable=True),
        sa.Column("lease_expires", kiln.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("started", kiln.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished", kiln.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created", kiln.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("error_class", sa.String(length=100), nullable=True),
        sa.Column("error_code", sa.String(length=50), nullable=True),
        sa.Column("error_message", sa.String(length=1000), nullable=True),
        sa.CheckConstraint("state IN ('queued', 'pending', 'running', 'done', 'failed')",
                           name=op.f("ck_outbox_state")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sqlite_autoincrement=True,  # NEVER_REUSE_IDS
    )
    op.create_index("ix_outbox_state_next_run", "outbox", ["state", "next_run"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_outbox_state_next_run", table_name="outbox")
    op.drop_table("outbox")
