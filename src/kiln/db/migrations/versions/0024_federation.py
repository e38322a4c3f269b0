"""federation: each account's key pair, remote actors, activities received

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07 13:47:13
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import kiln.db.base

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "remote_actors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uri", sa.String(length=2000), nullable=False),
        sa.Column("key_id", sa.String(length=2000), nullable=False),
        sa.Column("public_key_pem", sa.Text(), nullable=False),
        sa.Column("inbox", sa.String(length=2000), nullable=False),
        sa.Column("shared_inbox", sa.String(length=2000), nullable=True),
        sa.Column("username", sa.String(length=200), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("profile_url", sa.String(length=2000), nullable=False),
        sa.Column("fetched", kiln.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_remote_actors")),
        sa.UniqueConstraint("uri", name=op.f("uq_remote_actors_uri")),
    )
    with op.batch_alter_table("remote_actors") as batch:
        batch.create_index("ix_remote_actors_key_id", ["key_id"], unique=False)
    op.create_table(
        "actor_keys",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("public_pem", sa.Text(), nullable=False),
        sa.Column("private_pem", sa.Text(), nullable=False),
        sa.Column("created", kiln.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_actor_keys_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_actor_keys")),
    )
    op.create_table(
        "inbox_activities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("activity_uri", sa.String(length=2000), nullable=True),
        sa.Column("actor_uri", sa.String(length=2000), nullable=False),
        sa.Column("type", sa.String(length=50), nullable=False),
        sa.Column("recipient_id", sa.Integer(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("received", kiln.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=50), nullable=False),
        sa.ForeignKeyConstraint(["recipient_id"], ["users.id"], name=op.f("fk_inbox_activities_recipient_id_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox_activities")),
    )
    with op.batch_alter_table("inbox_activities") as batch:
        batch.create_index("ix_inbox_activities_activity_uri", ["activity_uri"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("inbox_activities") as batch:
        batch.drop_index("ix_inbox_activities_activity_uri")
    op.drop_table("inbox_activities")
    op.drop_table("actor_keys")
    with op.batch_alter_table("remote_actors") as batch:
        batch.drop_index("ix_remote_actors_key_id")
    op.drop_table("remote_actors")
