"""federation, following: local accounts follow accounts elsewhere (a follow may name a remote
followee, and waits for its Accept), the posts of the accounts followed, their files cached here, and
local answers to them

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import kiln.db.base

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("follows") as batch:
        batch.add_column(sa.Column("followee_uri", sa.String(length=2000), nullable=True))
        batch.add_column(sa.Column("accepted", sa.Boolean(), server_default=sa.true(), nullable=False))
        batch.add_column(sa.Column("activity_uri", sa.String(length=2000), nullable=True))
        batch.alter_column("followee_id", existing_type=sa.Integer(), nullable=True)
        batch.create_check_constraint(op.f("ck_follows_one_followee"), "(followee_id IS NULL) <> (followee_uri IS NULL)")
        batch.create_check_constraint(op.f("ck_follows_local_side"), "followee_uri IS NULL OR follower_id IS NOT NULL")
        batch.create_unique_constraint(op.f("uq_follows_follower_id_followee_uri"), ["follower_id", "followee_uri"])
        batch.create_index("ix_follows_followee_uri", ["followee_uri"], unique=False)
    op.create_table(
        "remote_posts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("uri", sa.String(length=2000), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("summary", sa.String(length=500), nullable=False),
        sa.Column("sensitive", sa.Boolean(), nullable=False),
        sa.Column("published", kiln.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("edited", kiln.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("received", kiln.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["actor_id"], ["remote_actors.id"], name=op.f("fk_remote_posts_actor_id_remote_actors"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_remote_posts")),
        sa.UniqueConstraint("uri", name=op.f("uq_remote_posts_uri")),
    )
    with op.batch_alter_table("remote_posts") as batch:
        batch.create_index("ix_remote_posts_actor_published", ["actor_id", "published", "id"], unique=False)
        batch.create_index("ix_remote_posts_published", ["published", "id"], unique=False)
    op.create_table(
        "remote_attachments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("media_type", sa.String(length=100), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("name", sa.String(length=1500), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("blurhash", sa.String(length=100), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("stored_key", sa.JSON(), nullable=True),
        sa.Column("stored_type", sa.String(length=100), nullable=False),
        sa.Column("stored_size", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=False),
        sa.CheckConstraint("kind IN ('image', 'video', 'audio', 'other')", name=op.f("ck_remote_attachments_kind")),
        sa.CheckConstraint("state IN ('waiting', 'cached', 'refused', 'failed')",
                           name=op.f("ck_remote_attachments_state")),
        sa.ForeignKeyConstraint(["post_id"], ["remote_posts.id"], name=op.f("fk_remote_attachments_post_id_remote_posts"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_remote_attachments")),
    )
    with op.batch_alter_table("remote_attachments") as batch:
        batch.create_index("ix_remote_attachments_post_id", ["post_id", "position"], unique=False)
    op.create_table(
        "remote_post_comments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created", kiln.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["author_id"], ["users.id"], name=op.f("fk_remote_post_comments_author_id_users"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["post_id"], ["remote_posts.id"],
                                name=op.f("fk_remote_post_comments_post_id_remote_posts"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_remote_post_comments")),
    )
    with op.batch_alter_table("remote_post_comments") as batch:
        batch.create_index("ix_remote_post_comments_post_id", ["post_id", "id"], unique=False)
        batch.create_index(op.f("ix_remote_post_comments_author_id"), ["author_id"], unique=False)
    op.create_table(
        "remote_post_favourites",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=False),
        sa.Column("activity_uri", sa.String(length=2000), nullable=False),
        sa.Column("created", kiln.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["post_id"], ["remote_posts.id"],
                                name=op.f("fk_remote_post_favourites_post_id_remote_posts"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_remote_post_favourites_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "post_id", name=op.f("pk_remote_post_favourites")),
    )
    with op.batch_alter_table("remote_post_favourites") as batch:
        batch.create_index(op.f("ix_remote_post_favourites_post_id"), ["post_id"], unique=False)


def downgrade() -> None:
    op.drop_table("remote_post_favourites")
    op.drop_table("remote_post_comments")
    op.drop_table("remote_attachments")
    op.drop_table("remote_posts")
    op.execute("DELETE FROM follows WHERE followee_uri IS NOT NULL")
    with op.batch_alter_table("follows") as batch:
        batch.drop_index("ix_follows_followee_uri")
        batch.drop_constraint(op.f("uq_follows_follower_id_followee_uri"), type_="unique")
        batch.drop_constraint(op.f("ck_follows_local_side"), type_="check")
        batch.drop_constraint(op.f("ck_follows_one_followee"), type_="check")
        batch.alter_column("followee_id", existing_type=sa.Integer(), nullable=False)
        batch.drop_column("activity_uri")
        batch.drop_column("accepted")
        batch.drop_column("followee_uri")
