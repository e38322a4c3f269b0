"""federation, receiving: replies from other servers as comments, their likes and boosts, their
reports; the "boost" notification and notifications from remote actors; tombstones of Notes sent;
the delivery state of each remote server; domain blocks and people's blocks of remote accounts; follow requests
awaiting approval

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07 14:30:00
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import sqlalchemy as sa
from alembic import op

import kiln.db.base

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

# The notification types before and after this revision (frozen here: the model's list moves on).
_TYPES_BEFORE = ("comment", "reply", "favourite", "follow", "invite", "failed", "warning", "report_outcome",
                 "removed")
_TYPES_AFTER = (*_TYPES_BEFORE, "boost", "follow_request")
_AUTOINCREMENT = {"sqlite_autoincrement": True}  # NEVER_REUSE_IDS


def _types_check(types: tuple[str, ...]) -> str:
    return "type IN (" + ", ".join(f"'{t}'" for t in types) + ")"


@contextlib.contextmanager
def _users_rebuilt() -> Iterator[None]:
    """SQLite rebuilds ``users`` to change a column, from what it reads of the table; it cannot read an
    index on an expression (0023's ``lower(username)``) and would leave it behind: made again after."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        op.drop_index("ix_users_lower_username", table_name="users")
    yield
    if sqlite:
        op.create_index("ix_users_lower_username", "users", [sa.text("lower(username)")], unique=False)


def upgrade() -> None:
    op.create_table(
        "follow_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("followee_id", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("activity", sa.JSON(), nullable=False),
        sa.Column("created", kiln.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["actor_id"], ["remote_actors.id"],
                                name=op.f("fk_follow_requests_actor_id_remote_actors"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["followee_id"], ["users.id"], name=op.f("fk_follow_requests_followee_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_follow_requests")),
        sa.UniqueConstraint("followee_id", "actor_id", name=op.f("uq_follow_requests_followee_id_actor_id")),
    )
    with op.batch_alter_table("follow_requests") as batch:
        batch.create_index(op.f("ix_follow_requests_followee_id"), ["followee_id"], unique=False)
    with _users_rebuilt(), op.batch_alter_table("users", table_kwargs=_AUTOINCREMENT) as batch:
        batch.add_column(sa.Column("approve_followers", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_table(
        "domain_blocks",
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created", kiln.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('block', 'silence')", name=op.f("ck_domain_blocks_kind")),
        sa.PrimaryKeyConstraint("domain", name=op.f("pk_domain_blocks")),
    )
    op.create_table(
        "remote_blocks",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("created", kiln.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["actor_id"], ["remote_actors.id"], name=op.f("fk_remote_blocks_actor_id_remote_actors"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_remote_blocks_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "actor_id", name=op.f("pk_remote_blocks")),
    )
    with op.batch_alter_table("remote_blocks") as batch:
        batch.create_index("ix_remote_blocks_actor_id", ["actor_id"], unique=False)
    op.create_table(
        "delivery_hosts",
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("first_failure", kiln.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_failure", kiln.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_success", kiln.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=False),
        sa.Column("probe_at", kiln.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("state IN ('up', 'dead')", name=op.f("ck_delivery_hosts_state")),
        sa.PrimaryKeyConstraint("host", name=op.f("pk_delivery_hosts")),
    )
    op.create_table(
        "federation_tombstones",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uri", sa.String(length=2000), nullable=False),
        sa.Column("deleted", kiln.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_federation_tombstones")),
        sa.UniqueConstraint("uri", name=op.f("uq_federation_tombstones_uri")),
    )
    op.create_table(
        "remote_reactions",
        sa.Column("media_id", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("activity_uri", sa.String(length=2000), nullable=True),
        sa.Column("created", kiln.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('like', 'announce')", name=op.f("ck_remote_reactions_kind")),
        sa.ForeignKeyConstraint(["actor_id"], ["remote_actors.id"],
                                name=op.f("fk_remote_reactions_actor_id_remote_actors"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["media_id"], ["media.id"], name=op.f("fk_remote_reactions_media_id_media"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("media_id", "actor_id", "kind", name=op.f("pk_remote_reactions")),
    )
    with op.batch_alter_table("remote_reactions") as batch:
        batch.create_index("ix_remote_reactions_actor_id", ["actor_id"], unique=False)
        batch.create_index("ix_remote_reactions_activity_uri", ["activity_uri"], unique=False)
    with op.batch_alter_table("media", table_kwargs=_AUTOINCREMENT) as batch:
        batch.add_column(sa.Column("boost_count", sa.Integer(), server_default="0", nullable=False))
    with op.batch_alter_table("comments", table_kwargs=_AUTOINCREMENT) as batch:
        batch.add_column(sa.Column("remote_actor_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("remote_uri", sa.String(length=2000), nullable=True))
        batch.create_foreign_key(op.f("fk_comments_remote_actor_id_remote_actors"), "remote_actors",
                                 ["remote_actor_id"], ["id"], ondelete="CASCADE")
        batch.create_unique_constraint(op.f("uq_comments_remote_uri"), ["remote_uri"])
        batch.create_index(op.f("ix_comments_remote_actor_id"), ["remote_actor_id"], unique=False)
    with op.batch_alter_table("notifications", table_kwargs=_AUTOINCREMENT) as batch:
        batch.add_column(sa.Column("remote_actor_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f("fk_notifications_remote_actor_id_remote_actors"), "remote_actors",
                                 ["remote_actor_id"], ["id"], ondelete="CASCADE")
        batch.drop_constraint(op.f("ck_notifications_type"), type_="check")
        batch.create_check_constraint(op.f("ck_notifications_type"), _types_check(_TYPES_AFTER))
    with op.batch_alter_table("reports", table_kwargs=_AUTOINCREMENT) as batch:
        batch.add_column(sa.Column("remote_reporter_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f("fk_reports_remote_reporter_id_remote_actors"), "remote_actors",
                                 ["remote_reporter_id"], ["id"], ondelete="SET NULL")


def downgrade() -> None:
    op.execute("DELETE FROM notifications WHERE type IN ('boost', 'follow_request') OR remote_actor_id IS NOT NULL")
    op.execute("DELETE FROM comments WHERE remote_actor_id IS NOT NULL")
    with op.batch_alter_table("reports", table_kwargs=_AUTOINCREMENT) as batch:
        batch.drop_constraint(op.f("fk_reports_remote_reporter_id_remote_actors"), type_="foreignkey")
        batch.drop_column("remote_reporter_id")
    with op.batch_alter_table("notifications", table_kwargs=_AUTOINCREMENT) as batch:
        batch.drop_constraint(op.f("ck_notifications_type"), type_="check")
        batch.create_check_constraint(op.f("ck_notifications_type"), _types_check(_TYPES_BEFORE))
        batch.drop_constraint(op.f("fk_notifications_remote_actor_id_remote_actors"), type_="foreignkey")
        batch.drop_column("remote_actor_id")
    with op.batch_alter_table("comments", table_kwargs=_AUTOINCREMENT) as batch:
        batch.drop_index(op.f("ix_comments_remote_actor_id"))
        batch.drop_constraint(op.f("uq_comments_remote_uri"), type_="unique")
        batch.drop_constraint(op.f("fk_comments_remote_actor_id_remote_actors"), type_="foreignkey")
        batch.drop_column("remote_uri")
        batch.drop_column("remote_actor_id")
    with op.batch_alter_table("media", table_kwargs=_AUTOINCREMENT) as batch:
        batch.drop_column("boost_count")
    with op.batch_alter_table("remote_reactions") as batch:
        batch.drop_index("ix_remote_reactions_activity_uri")
        batch.drop_index("ix_remote_reactions_actor_id")
    op.drop_table("remote_reactions")
    op.drop_table("federation_tombstones")
    op.drop_table("delivery_hosts")
    with op.batch_alter_table("remote_blocks") as batch:
        batch.drop_index("ix_remote_blocks_actor_id")
    op.drop_table("remote_blocks")
    op.drop_table("domain_blocks")
    with _users_rebuilt(), op.batch_alter_table("users", table_kwargs=_AUTOINCREMENT) as batch:
        batch.drop_column("approve_followers")
    with op.batch_alter_table("follow_requests") as batch:
        batch.drop_index(op.f("ix_follow_requests_followee_id"))
    op.drop_table("follow_requests")
