"""imports and hosts: what an import brought in, the old site's URL paths, where an item came from;
the heartbeats of processing workers on every host

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07 06:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import kiln.db.base

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "imported",
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("old_id", sa.String(length=200), nullable=False),
        sa.Column("new_id", sa.Integer(), nullable=False),
        sa.Column("created", kiln.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", "kind", "old_id", name=op.f("pk_imported")),
    )
    op.create_table(
        "legacy_paths",
        sa.Column("path", sa.String(length=1000), nullable=False),
        sa.Column("target_type", sa.String(length=20), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=80), nullable=False),
        sa.PrimaryKeyConstraint("path", name=op.f("pk_legacy_paths")),
    )
    with op.batch_alter_table("legacy_paths") as batch:
        batch.create_index("ix_legacy_paths_target", ["target_type", "target_id"], unique=False)
    with op.batch_alter_table("media") as batch:
        batch.add_column(sa.Column("imported_from", sa.String(length=20), nullable=True))
    op.create_table(
        "worker_hosts",
        sa.Column("id", sa.String(length=300), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("started", kiln.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_beat", kiln.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("lanes", sa.JSON(), nullable=False),
        sa.Column("processes", sa.Integer(), nullable=False),
        sa.Column("running", sa.Integer(), nullable=False),
        sa.Column("broker", sa.String(length=300), nullable=False),
        sa.Column("stores", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_worker_hosts")),
    )
    with op.batch_alter_table("worker_hosts") as batch:
        batch.create_index(batch.f("ix_worker_hosts_host"), ["host"], unique=False)
        batch.create_index(batch.f("ix_worker_hosts_last_beat"), ["last_beat"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("worker_hosts") as batch:
        batch.drop_index(batch.f("ix_worker_hosts_last_beat"))
        batch.drop_index(batch.f("ix_worker_hosts_host"))
    op.drop_table("worker_hosts")
    with op.batch_alter_table("media") as batch:
        batch.drop_column("imported_from")
    with op.batch_alter_table("legacy_paths") as batch:
        batch.drop_index("ix_legacy_paths_target")
    op.drop_table("legacy_paths")
    op.drop_table("imported")
