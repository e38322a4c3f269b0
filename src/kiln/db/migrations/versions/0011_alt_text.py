"""media alt text: a description of the picture for people who cannot see it

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 23:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("media") as batch:
        batch.add_column(sa.Column("alt_text", sa.String(length=1500), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("media") as batch:
        batch.drop_column("alt_text")
