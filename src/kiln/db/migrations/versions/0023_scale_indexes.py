"""indexes for a site of a million items (docs/scaling.md, bench/results/plans.json): removed media,
unfinished processing steps, lower(username)

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07 14:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

UNFINISHED = "state IN ('queued', 'pending', 'running')"


def upgrade() -> None:
    op.create_index("ix_media_removed", "media", ["removed"], unique=False,
                    sqlite_where=sa.text("removed IS NOT NULL"), postgresql_where=sa.text("removed IS NOT NULL"))
    op.create_index("ix_processing_steps_unfinished", "processing_steps", ["media_id", "position"], unique=False,
                    sqlite_where=sa.text(UNFINISHED), postgresql_where=sa.text(UNFINISHED))
    op.create_index("ix_users_lower_username", "users", [sa.text("lower(username)")], unique=False)


def downgrade() -> None:
    op.drop_index("ix_users_lower_username", table_name="users")
    op.drop_index("ix_processing_steps_unfinished", table_name="processing_steps")
    op.drop_index("ix_media_removed", table_name="media")
