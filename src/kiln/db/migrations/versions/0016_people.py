"""people: bans with an end and a reason, privileges suspended until a time, last seen, and the
"warning" notification

Revision ID: 0016
Revises: 0014
Create Date: 2026-12-06 07:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import kiln.db.base

revision = "0016"
down_revision = "0014"
branch_labels = None
depends_on = None

# The notification types before and after this revision (frozen here: the model's list moves on).
_TYPES_BEFORE = ("comment", "reply", "favourite", "follow", "invite", "failed")
_TYPES_AFTER = (*_TYPES_BEFORE, "warning")


def _types_check(types: tuple[str, ...]) -> str:
    return "type IN (" + ", ".join(f"'{t}'" for t in types) + ")"


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("banned_until", kiln.db.base.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("ban_reason", sa.Text(), server_default="", nullable=False))
        batch.add_column(sa.Column("last_seen", kiln.db.base.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table("user_privileges") as batch:
        batch.add_column(sa.Column("suspended_until", kiln.db.base.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table("notifications", table_kwargs={"sqlite_autoincrement": True}) as batch:  # NEVER_REUSE_IDS
        batch.drop_constraint(op.f("ck_notifications_type"), type_="check")
        batch.create_check_constraint(op.f("ck_notifications_type"), _types_check(_TYPES_AFTER))


def downgrade() -> None:
    op.execute("DELETE FROM notifications WHERE type = 'warning'")
    with op.batch_alter_table("notifications", table_kwargs={"sqlite_autoincrement": True}) as batch:  # NEVER_REUSE_IDS
        batch.drop_constraint(op.f("ck_notifications_type"), type_="check")
        batch.create_check_constraint(op.f("ck_notifications_type"), _types_check(_TYPES_BEFORE))
    with op.batch_alter_table("user_privileges") as batch:
        batch.drop_column("suspended_until")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("last_seen")
        batch.drop_column("ban_reason")
        batch.drop_column("banned_until")
