"""What federation stores: each account's key pair, remote actors seen, activities received, and what
remote actors did to local items (likes and boosts; their replies are comments, ``Comment.remote_actor_id``)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kiln.db.base import Base, utcnow

if TYPE_CHECKING:
    from kiln.accounts.models import User

URI_MAX = 2000


class ActorKey(Base):
    """A local account's key pair for HTTP Signatures. The private key never leaves the server: no
    route reads this table's ``private_pem``; only ``kiln.federation.delivery`` signs with it."""

    __tablename__ = "actor_keys"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    public_pem: Mapped[str] = mapped_column(Text)
    private_pem: Mapped[str] = mapped_column(Text)
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)


class InstanceKey(Base):
    """The key pair of the site's own actor (``kiln.federation.instance``), which signs Kiln's fetches of
    documents on other servers. One row (``id`` 1), made on first need; like ``actor_keys``, no route
    reads its ``private_pem``."""

    __tablename__ = "instance_keys"
    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    public_pem: Mapped[str] = mapped_column(Text)
    private_pem: Mapped[str] = mapped_column(Text)
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)


class RemoteActor(Base):
    """An actor on another server, as last fetched: where to deliver to it and the key it signs with."""

    __tablename__ = "remote_actors"
    __table_args__ = (Index("ix_remote_actors_key_id", "key_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    uri: Mapped[str] = mapped_column(String(URI_MAX), unique=True)
    key_id: Mapped[str] = mapped_column(String(URI_MAX))
    public_key_pem: Mapped[str] = mapped_column(Text)
    inbox: Mapped[str] = mapped_column(String(URI_MAX))
    shared_inbox: Mapped[str | None] = mapped_column(String(URI_MAX))
    username: Mapped[str] = mapped_column(String(200), default="")
    display_name: Mapped[str] = mapped_column(String(200), default="")
    profile_url: Mapped[str] = mapped_column(String(URI_MAX), default="")
    fetched: Mapped[dt.datetime] = mapped_column(default=utcnow)

    @property
    def handle(self) -> str:
        """``@name@host`` as people write it elsewhere, or the address when the actor has no name."""
        from urllib.parse import urlsplit

        host = urlsplit(self.uri).hostname or ""
        return f"@{self.username}@{host}" if self.username and host else self.uri

    @property
    def link(self) -> str:
        """Where people read the actor's profile: its page, else its address (http(s) only)."""
        for url in (self.profile_url, self.uri):
            if url.startswith(("https://", "http://")):
                return url
        return ""


class InboxActivity(Base):
    """An activity a verified remote actor posted to an inbox, kept as received; processed after the
    request was answered (``kiln.federation.inbox.process``)."""

    __tablename__ = "inbox_activities"
    __table_args__ = (Index("ix_inbox_activities_activity_uri", "activity_uri"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_uri: Mapped[str | None] = mapped_column(String(URI_MAX))
    actor_uri: Mapped[str] = mapped_column(String(URI_MAX))
    type: Mapped[str] = mapped_column(String(50))
    # The local account whose own inbox it came to; None: the shared inbox.
    recipient_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    received: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # What processing made of it: "" until processed, then e.g. "followed", "ignored".
    outcome: Mapped[str] = mapped_column(String(50), default="")


REACTION_KINDS = ("like", "announce")


class RemoteReaction(Base):
    """A remote actor's ``Like`` (a favourite) or ``Announce`` (a boost) of a local item: at most one of
    each per actor and item. Kept apart from ``favourites``, whose rows are local accounts (its key is
    the user), so that nothing that lists or counts a person's favourites meets a remote one; the item's
    ``favourite_count`` and ``boost_count`` count both kinds of rows."""

    __tablename__ = "remote_reactions"
    __table_args__ = (CheckConstraint(f"kind IN {REACTION_KINDS!r}", name="kind"),
                      Index("ix_remote_reactions_actor_id", "actor_id"),
                      Index("ix_remote_reactions_activity_uri", "activity_uri"))

    media_id: Mapped[int] = mapped_column(ForeignKey("media.id", ondelete="CASCADE"), primary_key=True)
    actor_id: Mapped[int] = mapped_column(ForeignKey("remote_actors.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10), primary_key=True)
    # The Like's or Announce's id, for an Undo that names only it.
    activity_uri: Mapped[str | None] = mapped_column(String(URI_MAX))
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Tombstone(Base):
    """A Note other servers were sent that is gone (the item deleted, removed, or made private): its
    address answers ActivityPub clients ``410 Gone`` with a ``Tombstone`` until it comes back."""

    __tablename__ = "federation_tombstones"

    id: Mapped[int] = mapped_column(primary_key=True)
    uri: Mapped[str] = mapped_column(String(URI_MAX), unique=True)
    deleted: Mapped[dt.datetime] = mapped_column(default=utcnow)


HOST_STATES = ("up", "dead")


class DeliveryHost(Base):
    """What Kiln knows of delivering to one server (by host name): failures in a row, and whether it
    counts as dead (kiln.federation.hosts). No row: nothing has failed there yet."""

    __tablename__ = "delivery_hosts"
    __table_args__ = (CheckConstraint(f"state IN {HOST_STATES!r}", name="state"),)

    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    state: Mapped[str] = mapped_column(String(10), default="up")
    failures: Mapped[int] = mapped_column(default=0)  # in a row, since the last success
    first_failure: Mapped[dt.datetime | None]  # the first of those
    last_failure: Mapped[dt.datetime | None]
    last_success: Mapped[dt.datetime | None]
    last_error: Mapped[str] = mapped_column(String(500), default="")
    # Dead: when one delivery is tried next (the probe); the others wait for it.
    probe_at: Mapped[dt.datetime | None]


DOMAIN_BLOCK_KINDS = ("block", "silence")


class DomainBlock(Base):
    """An administrator's decision about a whole server (kiln.federation.moderation): ``block`` (nothing
    from it is accepted or shown, its followers are removed, nothing is delivered there) or ``silence``
    (its replies wait for a moderator, its likes, boosts and follows notify nobody). Covers the domain
    and every subdomain."""

    __tablename__ = "domain_blocks"
    __table_args__ = (CheckConstraint(f"kind IN {DOMAIN_BLOCK_KINDS!r}", name="kind"),)

    domain: Mapped[str] = mapped_column(String(255), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10), default="block")
    reason: Mapped[str] = mapped_column(Text, default="")
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)


class RemoteBlock(Base):
    """A local account blocks a remote account: its replies, likes, boosts and follows of the
    account's things are refused, and its follow ends."""

    __tablename__ = "remote_blocks"
    __table_args__ = (Index("ix_remote_blocks_actor_id", "actor_id"),)

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    actor_id: Mapped[int] = mapped_column(ForeignKey("remote_actors.id", ondelete="CASCADE"), primary_key=True)
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)


class FollowRequest(Base):
    """A remote actor asked to follow an account that approves its followers: waiting for the
    account's answer (an ``Accept`` or a ``Reject`` of ``activity``)."""

    __tablename__ = "follow_requests"
    __table_args__ = (UniqueConstraint("followee_id", "actor_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    followee_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    actor_id: Mapped[int] = mapped_column(ForeignKey("remote_actors.id", ondelete="CASCADE"))
    activity: Mapped[dict[str, Any]] = mapped_column(JSON)  # the Follow, as received (id, type, actor, object)
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)

    actor: Mapped[RemoteActor] = relationship(lazy="joined")


ATTACHMENT_KINDS = ("image", "video", "audio", "other")
CACHE_STATES = ("waiting", "cached", "refused", "failed")


class RemotePost(Base):
    """A post (Note, Article, Image, Video, Audio, Page) of an actor someone here follows, as its
    ``Create`` or latest ``Update`` said (kiln.federation.posts). Its ``content`` is the HTML after the
    comments' allow-list; it is shown to logged-in readers who follow its author, never to visitors."""

    __tablename__ = "remote_posts"
    __table_args__ = (Index("ix_remote_posts_actor_published", "actor_id", "published", "id"),
                      Index("ix_remote_posts_published", "published", "id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    actor_id: Mapped[int] = mapped_column(ForeignKey("remote_actors.id", ondelete="CASCADE"))
    uri: Mapped[str] = mapped_column(String(URI_MAX), unique=True)
    url: Mapped[str] = mapped_column(String(URI_MAX), default="")  # its page there (http(s) only)
    type: Mapped[str] = mapped_column(String(20), default="Note")
    content: Mapped[str] = mapped_column(Text, default="")
    summary: Mapped[str] = mapped_column(String(500), default="")
    sensitive: Mapped[bool] = mapped_column(default=False)
    published: Mapped[dt.datetime] = mapped_column(default=utcnow)
    edited: Mapped[dt.datetime | None]
    received: Mapped[dt.datetime] = mapped_column(default=utcnow)

    actor: Mapped[RemoteActor] = relationship(lazy="joined")
    attachments: Mapped[list[RemoteAttachment]] = relationship(
        lazy="selectin", order_by="RemoteAttachment.position", cascade="all, delete-orphan")


class RemoteAttachment(Base):
    """One file of a remote post, and Kiln's own copy of it once the cache job fetched it
    (kiln.federation.media_cache): pages show only the copy, whose type Kiln found from its bytes."""

    __tablename__ = "remote_attachments"
    __table_args__ = (CheckConstraint(f"kind IN {ATTACHMENT_KINDS!r}", name="kind"),
                      CheckConstraint(f"state IN {CACHE_STATES!r}", name="state"),
                      Index("ix_remote_attachments_post_id", "post_id", "position"))

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("remote_posts.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(default=0)
    kind: Mapped[str] = mapped_column(String(10), default="other")  # from the declared mediaType
    media_type: Mapped[str] = mapped_column(String(100), default="")  # as declared
    url: Mapped[str] = mapped_column(String(URI_MAX))
    name: Mapped[str] = mapped_column(String(1500), default="")  # the alt text
    width: Mapped[int | None]
    height: Mapped[int | None]
    blurhash: Mapped[str] = mapped_column(String(100), default="")
    state: Mapped[str] = mapped_column(String(10), default="waiting")
    stored_key: Mapped[list[str] | None] = mapped_column(JSON)  # in the originals store
    stored_type: Mapped[str] = mapped_column(String(100), default="")  # sniffed from the bytes
    stored_size: Mapped[int | None]
    error: Mapped[str] = mapped_column(String(500), default="")


class RemotePostComment(Base):
    """A local account's answer to a remote post: sent to its author as ``Create{Note}`` with
    ``inReplyTo`` the post's id, and shown under the post here."""

    __tablename__ = "remote_post_comments"
    __table_args__ = (Index("ix_remote_post_comments_post_id", "post_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("remote_posts.id", ondelete="CASCADE"))
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    body: Mapped[str] = mapped_column(Text)  # Markdown, as written
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)

    author: Mapped[User] = relationship(lazy="joined")


class RemotePostFavourite(Base):
    """A local account's favourite of a remote post: sent to its author as ``Like`` (``activity_uri``
    its id, for the ``Undo`` when it is taken back)."""

    __tablename__ = "remote_post_favourites"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("remote_posts.id", ondelete="CASCADE"), primary_key=True,
                                         index=True)
    activity_uri: Mapped[str] = mapped_column(String(URI_MAX))
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
