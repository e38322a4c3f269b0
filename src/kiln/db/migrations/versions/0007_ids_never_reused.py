"""ids never reused on SQLite: users, api_tokens, tags and media become AUTOINCREMENT tables

A plain INTEGER PRIMARY KEY hands the id of the newest row to the next insert once that row is
deleted, so an old link (/api/v1/media/14, a bookmarked page) showed someone else's upload.
PostgreSQL's sequences never go back, so nothing changes there.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 12:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TABLES = ("users", "api_tokens", "tags", "media")


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        # Rebuilt with every column, index and constraint it has; copying the rows sets the table's
        # sequence to its largest id. (env.py turns foreign keys off while tables are rebuilt.)
        with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": True}):
            pass


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in reversed(TABLES):
        with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": False}):
            pass
