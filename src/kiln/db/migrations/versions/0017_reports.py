"""reports: reports about media, comments, collections and people; removal of media, comments and
collections by the moderators; the "report_outcome" and "removed" notifications

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 20:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import kiln.db.base

revision = "0017"
down_revision = "0019"
branch_labels = None
depends_on = None

# The notification types before and after this revision (frozen here: the model's list moves on).
_TYPES_BEFORE = ("comment", "reply", "favourite", "follow", "invite", "failed", "warning")
_TYPES_AFTER = (*_TYPES_BEFORE, "report_outcome", "removed")


def _types_check(types: tuple[str, ...]) -> str:
    return "type IN (" + ", ".join(f"'{t}'" for t in types) + ")"


def upgrade() -> None:
    op.create_table(
        "reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created", kiln.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reporter_id", sa.Integer(), nullable=True),
        sa.Column("target_type", sa.String(length=20), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=False),
        sa.Column("target_owner_id", sa.Integer(), nullable=True),
        sa.Column("category", sa.String(length=20), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=False),
        sa.Column("resolved_by_id", sa.Integer(), nullable=True),
        sa.Column("resolved_at", kiln.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("target_type IN ('media', 'comment', 'collection', 'user')",
                           name=op.f("ck_reports_target_type")),
        sa.CheckConstraint("category IN ('spam', 'harassment', 'illegal', 'copyright', 'sensitive', 'other')",
                           name=op.f("ck_reports_category")),
        sa.CheckConstraint("state IN ('open', 'resolved')", name=op.f("ck_reports_state")),
        sa.ForeignKeyConstraint(["reporter_id"], ["users.id"], name=op.f("fk_reports_reporter_id_users"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["target_owner_id"], ["users.id"], name=op.f("fk_reports_target_owner_id_users"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["resolved_by_id"], ["users.id"], name=op.f("fk_reports_resolved_by_id_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reports")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("reports") as batch:
        batch.create_index("ix_reports_state_target", ["state", "target_type", "target_id"], unique=False)
        batch.create_index("ix_reports_reporter_id", ["reporter_id", "id"], unique=False)
        batch.create_index("ix_reports_target_owner_id", ["target_owner_id", "state"], unique=False)
        batch.create_index("uq_reports_open_per_reporter", ["reporter_id", "target_type", "target_id"], unique=True,
                           sqlite_where=sa.text("state = 'open'"), postgresql_where=sa.text("state = 'open'"))
    with op.batch_alter_table("media", table_kwargs={"sqlite_autoincrement": True}) as batch:  # NEVER_REUSE_IDS
        batch.add_column(sa.Column("removed", kiln.db.base.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("removed_reason", sa.Text(), server_default="", nullable=False))
    with op.batch_alter_table("collections", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(sa.Column("removed", kiln.db.base.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("removed_reason", sa.Text(), server_default="", nullable=False))
    with op.batch_alter_table("comments", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(sa.Column("removed", kiln.db.base.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table("notifications", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_constraint(op.f("ck_notifications_type"), type_="check")
        batch.create_check_constraint(op.f("ck_notifications_type"), _types_check(_TYPES_AFTER))


def downgrade() -> None:
    op.execute("DELETE FROM notifications WHERE type IN ('report_outcome', 'removed')")
    with op.batch_alter_table("notifications", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_constraint(op.f("ck_notifications_type"), type_="check")
        batch.create_check_constraint(op.f("ck_notifications_type"), _types_check(_TYPES_BEFORE))
    with op.batch_alter_table("comments", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("removed")
    with op.batch_alter_table("collections", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("removed_reason")
        batch.drop_column("removed")
    with op.batch_alter_table("media", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("removed_reason")
        batch.drop_column("removed")
    with op.batch_alter_table("reports") as batch:
        batch.drop_index("uq_reports_open_per_reporter")
        batch.drop_index("ix_reports_target_owner_id")
        batch.drop_index("ix_reports_reporter_id")
        batch.drop_index("ix_reports_state_target")
    op.drop_table("reports")
