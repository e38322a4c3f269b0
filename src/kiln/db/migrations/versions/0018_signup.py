"""signup: registration requests (approval mode), invite links, accounts waiting for approval and
comments held for a moderator

Revision ID: 0018
Revises: 0016
Create Date: 2026-12-06 20:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import kiln.db.base

revision = "0018"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", table_kwargs={"sqlite_autoincrement": True}) as batch:  # NEVER_REUSE_IDS
        batch.add_column(sa.Column("pending_approval", sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table("comments", table_kwargs={"sqlite_autoincrement": True}) as batch:  # NEVER_REUSE_IDS
        batch.add_column(sa.Column("held", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_table(
        "registration_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("locale", sa.String(length=16), nullable=True),
        sa.Column("created", kiln.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_registration_requests_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registration_requests")),
        sa.UniqueConstraint("user_id", name=op.f("uq_registration_requests_user_id")),
    )
    op.create_table(
        "invites",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=False),
        sa.Column("created", kiln.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires", kiln.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("max_uses", sa.Integer(), nullable=False),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("revoked", kiln.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_invites_created_by_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invites")),
        sa.UniqueConstraint("code", name=op.f("uq_invites_code")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_invites_created_by"), "invites", ["created_by"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_invites_created_by"), table_name="invites")
    op.drop_table("invites")
    op.drop_table("registration_requests")
    with op.batch_alter_table("comments", table_kwargs={"sqlite_autoincrement": True}) as batch:  # NEVER_REUSE_IDS
        batch.drop_column("held")
    with op.batch_alter_table("users", table_kwargs={"sqlite_autoincrement": True}) as batch:  # NEVER_REUSE_IDS
        batch.drop_column("pending_approval")
