"""What people do together: collections (albums) with collaborators and share links, comments,
favourites, follows and notifications.

Visibility composes: a collection shows an item only when the viewer may see the item itself
(``kiln.media.visibility.visible``) *and* the collection; a share link widens the collection's
visibility, never an item's beyond what the collection allows (``kiln.social.collections``).

Follows name the follower either as a local account (``follower_id``) or by an address elsewhere
(``follower_uri``, for federation): "who follows whom" does not depend on where the follower lives.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, false, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kiln.accounts.models import User
from kiln.db.base import NEVER_REUSE_IDS, Base, utcnow
from kiln.federation.models import URI_MAX, RemoteActor
from kiln.media.models import VISIBILITIES, MediaEntry

# Every kind of notification, in the order the account page lists their mail settings.
NOTIFICATION_TYPES = ("comment", "reply", "favourite", "follow", "invite", "failed", "warning", "report_outcome",
                      "removed", "boost", "follow_request")
# How a person wants mail about one type: at once, in a daily digest, or not at all.
MAIL_MODES = ("immediate", "digest", "off")
# The mail state of one notification: none (not to be mailed), immediate/digest (waiting), sent.
MAIL_STATES = ("none", "immediate", "digest", "sent")
COLLECTION_TITLE_MAX = 200
ITEM_NOTE_MAX = 1000
COMMENT_MAX = 5000


class Collection(Base):
    __tablename__ = "collections"
    __table_args__ = (
        CheckConstraint(f"visibility IN {VISIBILITIES!r}", name="visibility"),
        Index("ix_collections_owner_updated", "owner_id", "updated"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(COLLECTION_TITLE_MAX))
    description: Mapped[str] = mapped_column(Text, default="")  # Markdown
    # The item whose thumbnail stands for the collection; None: its first visible item's.
    cover_media_id: Mapped[int | None] = mapped_column(ForeignKey("media.id", ondelete="SET NULL"))
    visibility: Mapped[str] = mapped_column(String(10), default="public")
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Removed by the moderators (kiln.moderation.removal): hidden like a removed media item.
    removed: Mapped[dt.datetime | None]
    removed_reason: Mapped[str] = mapped_column(Text, default="", server_default="")

    owner: Mapped[User] = relationship(lazy="joined")


class CollectionItem(Base):
    """One item in a collection, at a position (smallest first), with the adder's note."""

    __tablename__ = "collection_items"
    __table_args__ = (
        UniqueConstraint("collection_id", "media_id"),
        Index("ix_collection_items_collection_position", "collection_id", "position"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    media_id: Mapped[int] = mapped_column(ForeignKey("media.id", ondelete="CASCADE"), index=True)
    # Who put it there (the owner or a collaborator); None once that account is gone.
    added_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    note: Mapped[str] = mapped_column(String(ITEM_NOTE_MAX), default="")
    position: Mapped[int] = mapped_column(default=0)
    added: Mapped[dt.datetime] = mapped_column(default=utcnow)

    media: Mapped[MediaEntry] = relationship(lazy="joined")


class CollectionCollaborator(Base):
    """Someone the owner invited: they may add their own media to the collection and remove it."""

    __tablename__ = "collection_collaborators"

    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship(lazy="joined")


class ShareLink(Base):
    """A secret link that shows an unlisted or private collection (and its items) to whoever has it.
    Only the SHA-256 of the secret is stored; revoked or expired links answer 404 everywhere."""

    __tablename__ = "share_links"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(100), default="")
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires: Mapped[dt.datetime | None]
    revoked: Mapped[dt.datetime | None]


class Comment(Base):
    """A Markdown comment on a media item; replies are one level deep (``parent_id`` is a top-level
    comment). A deleted comment that has replies stays as a placeholder (``deleted`` set, body
    emptied) so the thread still reads."""

    __tablename__ = "comments"
    __table_args__ = (Index("ix_comments_media_id", "media_id", "id"), NEVER_REUSE_IDS)

    id: Mapped[int] = mapped_column(primary_key=True)
    media_id: Mapped[int] = mapped_column(ForeignKey("media.id", ondelete="CASCADE"))
    # None once the author's account is gone (the comment reads "deleted account").
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("comments.id", ondelete="CASCADE"), index=True)
    body: Mapped[str] = mapped_column(Text, default="")  # Markdown, as written
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    edited: Mapped[dt.datetime | None]
    deleted: Mapped[dt.datetime | None]
    # Waiting for a moderator (a new account's first comments, ``hold_first_comments``): shown only to
    # its author and moderators, not counted, nobody notified until it is approved.
    held: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Removed by the moderators: a placeholder like a deleted comment (``deleted`` is set too), which
    # says so.
    removed: Mapped[dt.datetime | None]
    # A reply from another server (kiln.federation.receiving): its author is this remote actor (then
    # ``author_id`` is None), ``body`` is the Note's HTML after the allow-list, not Markdown, and
    # ``remote_uri`` is the Note's id (for its Update and Delete). The comment goes with the actor.
    remote_actor_id: Mapped[int | None] = mapped_column(ForeignKey("remote_actors.id", ondelete="CASCADE"),
                                                        index=True)
    remote_uri: Mapped[str | None] = mapped_column(String(2000), unique=True)

    author: Mapped[User | None] = relationship(lazy="joined")
    remote_actor: Mapped[RemoteActor | None] = relationship(lazy="joined")
    media: Mapped[MediaEntry] = relationship(lazy="select")  # loaded when asked for (the held queue)


class Favourite(Base):
    __tablename__ = "favourites"
    __table_args__ = (Index("ix_favourites_media_created", "media_id", "created"),)

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    media_id: Mapped[int] = mapped_column(ForeignKey("media.id", ondelete="CASCADE"), primary_key=True)
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Follow(Base):
    """``follower`` follows ``followee``. Either side may be elsewhere, never both: a remote follower of
    a local account (``follower_uri``, kept when its ``Follow`` arrives) or a local account following a
    remote one (``followee_uri``, the actor's id; kiln.federation.following). A follow of someone
    elsewhere waits (``accepted`` false) until their server sends ``Accept``."""

    __tablename__ = "follows"
    __table_args__ = (
        CheckConstraint("(follower_id IS NULL) <> (follower_uri IS NULL)", name="one_follower"),
        CheckConstraint("(followee_id IS NULL) <> (followee_uri IS NULL)", name="one_followee"),
        CheckConstraint("followee_uri IS NULL OR follower_id IS NOT NULL", name="local_side"),
        UniqueConstraint("followee_id", "follower_id"),
        UniqueConstraint("followee_id", "follower_uri"),
        UniqueConstraint("follower_id", "followee_uri"),
        Index("ix_follows_follower_id", "follower_id", "followee_id"),
        Index("ix_follows_followee_uri", "followee_uri"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    followee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    follower_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    follower_uri: Mapped[str | None] = mapped_column(String(500))
    followee_uri: Mapped[str | None] = mapped_column(String(URI_MAX))
    # False while a follow of someone elsewhere waits for their server's Accept.
    accepted: Mapped[bool] = mapped_column(default=True, server_default=true())
    # The id of the Follow Kiln sent (its Accept, Reject or our Undo names it).
    activity_uri: Mapped[str | None] = mapped_column(String(URI_MAX))
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Notification(Base):
    """Something that happened that ``user`` should hear about. ``mail`` is where its mail is:
    none, waiting to go at once or in the next digest, or sent."""

    __tablename__ = "notifications"
    __table_args__ = (
        CheckConstraint(f"type IN {NOTIFICATION_TYPES!r}", name="type"),
        CheckConstraint(f"mail IN {MAIL_STATES!r}", name="mail"),
        Index("ix_notifications_user_id", "user_id", "id"),
        Index("ix_notifications_user_read", "user_id", "read"),
        Index("ix_notifications_mail", "mail", "user_id"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    media_id: Mapped[int | None] = mapped_column(ForeignKey("media.id", ondelete="CASCADE"))
    comment_id: Mapped[int | None] = mapped_column(ForeignKey("comments.id", ondelete="CASCADE"))
    collection_id: Mapped[int | None] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    read: Mapped[dt.datetime | None]
    mail: Mapped[str] = mapped_column(String(10), default="none")
    # Anything else the sentence needs (a processing failure's code) that has no column.
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    # Who did it when they are on another server (then ``actor_id`` is None).
    remote_actor_id: Mapped[int | None] = mapped_column(ForeignKey("remote_actors.id", ondelete="CASCADE"))

    actor: Mapped[User | None] = relationship(foreign_keys=[actor_id], lazy="joined")
    remote_actor: Mapped[RemoteActor | None] = relationship(lazy="joined")


BLOCK_KINDS = ("block", "mute")


class UserBlock(Base):
    """``user`` blocks or mutes ``target`` (kiln.social.blocks says what each does). One row per kind:
    someone may both mute and block a person, and undo each."""

    __tablename__ = "user_blocks"
    __table_args__ = (
        CheckConstraint(f"kind IN {BLOCK_KINDS!r}", name="kind"),
        CheckConstraint("user_id <> target_id", name="not_self"),
        Index("ix_user_blocks_target_kind", "target_id", "kind"),
    )

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    target_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10), primary_key=True)
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)

    target: Mapped[User] = relationship(foreign_keys=[target_id], lazy="joined")
