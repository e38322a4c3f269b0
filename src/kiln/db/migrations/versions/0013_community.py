"""community: collections, share links, comments, favourites, follows, notifications; profile and
comment settings; favourite and comment counts on media

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 02:35:36
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import kiln.db.base

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('follows',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('followee_id', sa.Integer(), nullable=False),
    sa.Column('follower_id', sa.Integer(), nullable=True),
    sa.Column('follower_uri', sa.String(length=500), nullable=True),
    sa.Column('created', kiln.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('(follower_id IS NULL) <> (follower_uri IS NULL)', name=op.f('ck_follows_one_follower')),
    sa.ForeignKeyConstraint(['followee_id'], ['users.id'], name=op.f('fk_follows_followee_id_users'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['follower_id'], ['users.id'], name=op.f('fk_follows_follower_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_follows')),
    sa.UniqueConstraint('followee_id', 'follower_id', name=op.f('uq_follows_followee_id_follower_id')),
    sa.UniqueConstraint('followee_id', 'follower_uri', name=op.f('uq_follows_followee_id_follower_uri'))
    )
    with op.batch_alter_table('follows', schema=None) as batch_op:
        batch_op.create_index('ix_follows_follower_id', ['follower_id', 'followee_id'], unique=False)

    op.create_table('collections',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('cover_media_id', sa.Integer(), nullable=True),
    sa.Column('visibility', sa.String(length=10), nullable=False),
    sa.Column('created', kiln.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated', kiln.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("visibility IN ('public', 'unlisted', 'private')", name=op.f('ck_collections_visibility')),
    sa.ForeignKeyConstraint(['cover_media_id'], ['media.id'], name=op.f('fk_collections_cover_media_id_media'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_collections_owner_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_collections')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('collections', schema=None) as batch_op:
        batch_op.create_index('ix_collections_owner_updated', ['owner_id', 'updated'], unique=False)

    op.create_table('comments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('media_id', sa.Integer(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created', kiln.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('edited', kiln.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('deleted', kiln.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_comments_author_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['media_id'], ['media.id'], name=op.f('fk_comments_media_id_media'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['parent_id'], ['comments.id'], name=op.f('fk_comments_parent_id_comments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_comments')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('comments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_comments_author_id'), ['author_id'], unique=False)
        batch_op.create_index('ix_comments_media_id', ['media_id', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_comments_parent_id'), ['parent_id'], unique=False)

    op.create_table('favourites',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('media_id', sa.Integer(), nullable=False),
    sa.Column('created', kiln.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['media_id'], ['media.id'], name=op.f('fk_favourites_media_id_media'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_favourites_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'media_id', name=op.f('pk_favourites'))
    )
    with op.batch_alter_table('favourites', schema=None) as batch_op:
        batch_op.create_index('ix_favourites_media_created', ['media_id', 'created'], unique=False)

    op.create_table('collection_collaborators',
    sa.Column('collection_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created', kiln.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['collection_id'], ['collections.id'], name=op.f('fk_collection_collaborators_collection_id_collections'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_collection_collaborators_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('collection_id', 'user_id', name=op.f('pk_collection_collaborators'))
    )
    with op.batch_alter_table('collection_collaborators', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_collection_collaborators_user_id'), ['user_id'], unique=False)

    op.create_table('collection_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('collection_id', sa.Integer(), nullable=False),
    sa.Column('media_id', sa.Integer(), nullable=False),
    sa.Column('added_by_id', sa.Integer(), nullable=True),
    sa.Column('note', sa.String(length=1000), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('added', kiln.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['added_by_id'], ['users.id'], name=op.f('fk_collection_items_added_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['collection_id'], ['collections.id'], name=op.f('fk_collection_items_collection_id_collections'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['media_id'], ['media.id'], name=op.f('fk_collection_items_media_id_media'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_collection_items')),
    sa.UniqueConstraint('collection_id', 'media_id', name=op.f('uq_collection_items_collection_id_media_id'))
    )
    with op.batch_alter_table('collection_items', schema=None) as batch_op:
        batch_op.create_index('ix_collection_items_collection_position', ['collection_id', 'position'], unique=False)
        batch_op.create_index(batch_op.f('ix_collection_items_media_id'), ['media_id'], unique=False)

    op.create_table('notifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('type', sa.String(length=20), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('media_id', sa.Integer(), nullable=True),
    sa.Column('comment_id', sa.Integer(), nullable=True),
    sa.Column('collection_id', sa.Integer(), nullable=True),
    sa.Column('created', kiln.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('read', kiln.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('mail', sa.String(length=10), nullable=False),
    sa.Column('extra', sa.JSON(), nullable=True),
    sa.CheckConstraint("mail IN ('none', 'immediate', 'digest', 'sent')", name=op.f('ck_notifications_mail')),
    sa.CheckConstraint("type IN ('comment', 'reply', 'favourite', 'follow', 'invite', 'failed')", name=op.f('ck_notifications_type')),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_notifications_actor_id_users'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['collection_id'], ['collections.id'], name=op.f('fk_notifications_collection_id_collections'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['comment_id'], ['comments.id'], name=op.f('fk_notifications_comment_id_comments'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['media_id'], ['media.id'], name=op.f('fk_notifications_media_id_media'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_notifications_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index('ix_notifications_mail', ['mail', 'user_id'], unique=False)
        batch_op.create_index('ix_notifications_user_id', ['user_id', 'id'], unique=False)
        batch_op.create_index('ix_notifications_user_read', ['user_id', 'read'], unique=False)

    op.create_table('share_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('collection_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('label', sa.String(length=100), nullable=False),
    sa.Column('created', kiln.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires', kiln.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked', kiln.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['collection_id'], ['collections.id'], name=op.f('fk_share_links_collection_id_collections'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_share_links')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_share_links_token_hash')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('share_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_share_links_collection_id'), ['collection_id'], unique=False)

    # Plain ADD COLUMN (SQLite has it): a batch rebuild of these tables would lose AUTOINCREMENT.
    op.add_column("media", sa.Column("comments_enabled", sa.Boolean(), server_default=sa.true(), nullable=False))
    op.add_column("media", sa.Column("favourite_count", sa.Integer(), server_default="0", nullable=False))
    op.add_column("media", sa.Column("comment_count", sa.Integer(), server_default="0", nullable=False))
    op.add_column("users", sa.Column("avatar", sa.JSON(), nullable=True))
    op.add_column("users", sa.Column("links", sa.JSON(), server_default="[]", nullable=False))
    op.add_column("users", sa.Column("comments_enabled", sa.Boolean(), server_default=sa.true(), nullable=False))
    op.add_column("users", sa.Column("notify_mail", sa.JSON(), nullable=True))
    op.add_column("users", sa.Column("digest_sent", kiln.db.base.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    for column in ("digest_sent", "notify_mail", "comments_enabled", "links", "avatar"):
        op.drop_column("users", column)
    for column in ("comment_count", "favourite_count", "comments_enabled"):
        op.drop_column("media", column)
    with op.batch_alter_table('share_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_share_links_collection_id'))

    op.drop_table('share_links')
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_notifications_user_read')
        batch_op.drop_index('ix_notifications_user_id')
        batch_op.drop_index('ix_notifications_mail')

    op.drop_table('notifications')
    with op.batch_alter_table('collection_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_collection_items_media_id'))
        batch_op.drop_index('ix_collection_items_collection_position')

    op.drop_table('collection_items')
    with op.batch_alter_table('collection_collaborators', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_collection_collaborators_user_id'))

    op.drop_table('collection_collaborators')
    with op.batch_alter_table('favourites', schema=None) as batch_op:
        batch_op.drop_index('ix_favourites_media_created')

    op.drop_table('favourites')
    with op.batch_alter_table('comments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_comments_parent_id'))
        batch_op.drop_index('ix_comments_media_id')
        batch_op.drop_index(batch_op.f('ix_comments_author_id'))

    op.drop_table('comments')
    with op.batch_alter_table('collections', schema=None) as batch_op:
        batch_op.drop_index('ix_collections_owner_updated')

    op.drop_table('collections')
    with op.batch_alter_table('follows', schema=None) as batch_op:
        batch_op.drop_index('ix_follows_follower_id')

    op.drop_table('follows')
