"""Media entries, their stored renditions, and tags."""

from __future__ import annotations

import datetime as dt
import secrets
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kiln.accounts.models import User
from kiln.db.base import NEVER_REUSE_IDS, Base, utcnow


class MediaState(StrEnum):
    """Where a media entry is on its way to publication. Its changes live in processing/ledger.py; the column
    stays a string (a StrEnum member is one)."""

    QUEUED = "queued"  # uploaded, no step started yet
    PROCESSING = "processing"  # a step has started (or is being retried or reprocessed)
    PROCESSED = "processed"  # every step final and the renditions present: published
    FAILED = "failed"  # a required step failed for good before the item was ever published


MEDIA_STATES = tuple(state.value for state in MediaState)
# public: listed everywhere; unlisted: reachable by its link only; private: owner and admins only.
VISIBILITIES = ("public", "unlisted", "private")
# The longest alternative text (Mastodon and PixelFed allow 1,500 characters).
ALT_TEXT_MAX = 1500


def new_key_token() -> str:
    """The unguessable part of every rendition key; rotated when an item becomes private."""
    return secrets.token_hex(16)


media_tags = Table(
    "media_tags",
    Base.metadata,
    Column("media_id", ForeignKey("media.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Tag(Base):
    __tablename__ = "tags"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(64))


class MediaEntry(Base):
    __tablename__ = "media"
    __table_args__ = (
        CheckConstraint(f"state IN {MEDIA_STATES!r}", name="state"),
        CheckConstraint(f"visibility IN {VISIBILITIES!r}", name="visibility"),
        Index("ix_media_state_published", "state", "published"),
        Index("ix_media_owner_state_published", "owner_id", "state", "published"),
        # The sweeper's "removed long enough ago" (moderation.removal.due): only removed rows are indexed.
        Index("ix_media_removed", "removed", sqlite_where=text("removed IS NOT NULL"),
              postgresql_where=text("removed IS NOT NULL")),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(20), default=MediaState.QUEUED.value)  # a MediaState
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    # What the picture shows, for people who cannot see it (screen readers, feeds, failed loads). Empty
    # until the owner writes one: then ``alt`` falls back to the title.
    alt_text: Mapped[str] = mapped_column(String(ALT_TEXT_MAX), default="", server_default="")
    license: Mapped[str] = mapped_column(String(100), default="")
    show_exif: Mapped[bool] = mapped_column(default=True)
    # Whether people may comment on this item (its owner's account setting also applies).
    comments_enabled: Mapped[bool] = mapped_column(default=True, server_default=true())
    # Kept in step by kiln.social in the same transaction as the rows they count.
    favourite_count: Mapped[int] = mapped_column(default=0, server_default="0")
    comment_count: Mapped[int] = mapped_column(default=0, server_default="0")
    # Boosts (``Announce``) from other servers (kiln.federation.receiving).
    boost_count: Mapped[int] = mapped_column(default=0, server_default="0")
    visibility: Mapped[str] = mapped_column(String(10), default="public", server_default="public")
    # Part of every rendition key, so old URLs stop working when it changes. Empty for items made
    # before it existed: their keys have no token until they are made private.
    key_token: Mapped[str] = mapped_column(String(32), default=new_key_token, server_default="")
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Set when processing finishes; public lists are ordered by it.
    published: Mapped[dt.datetime | None]
    # Removed by the moderators (kiln.moderation.removal): hidden from everyone but admins, and purged
    # after the grace period unless an admin restores it. The reason is shown to the owner.
    removed: Mapped[dt.datetime | None]
    removed_reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    # Brought in by ``kiln import`` from another site ("mediagoblin"): published under the date it
    # was created there (``created``), not the day Kiln processed it.
    imported_from: Mapped[str | None] = mapped_column(String(20))

    # The original, kept privately. Its key is generated by Kiln, never taken from the filename.
    original_key: Mapped[list[str]] = mapped_column(JSON)
    original_store: Mapped[str] = mapped_column(String(20), default="queue")
    original_name: Mapped[str] = mapped_column(String(255), default="")
    mime_type: Mapped[str] = mapped_column(String(100), default="")
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    sha256: Mapped[str] = mapped_column(String(64), default="")

    width: Mapped[int | None]
    height: Mapped[int | None]
    exif: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    gps_lat: Mapped[float | None]
    gps_lon: Mapped[float | None]
    # What the kind learned that has no column of its own: duration, codecs, page count, triangle
    # count, text encoding, the blurred placeholder (``blurhash``) ...
    info: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    error_code: Mapped[str | None] = mapped_column(String(50))
    error_message: Mapped[str | None] = mapped_column(String(1000))  # English, for logs and admins
    # The same sentence as msgid and parameters (KilnError.stored), said in the reader's language.
    error_stored: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    @property
    def error_said(self) -> str | None:
        """Why processing failed, in the current language."""
        from kiln.i18n import say_stored

        return say_stored(self.error_stored, self.error_message)

    owner: Mapped[User] = relationship(lazy="joined")
    renditions: Mapped[list[Rendition]] = relationship(
        back_populates="media", cascade="all, delete-orphan", lazy="selectin"
    )
    tags: Mapped[list[Tag]] = relationship(secondary=media_tags, lazy="selectin", order_by=Tag.slug)

    @property
    def alt(self) -> str:
        """The alternative text of this item's pictures: the owner's description, else the title."""
        return self.alt_text or self.title

    def rendition(self, name: str) -> Rendition | None:
        return next((r for r in self.renditions if r.name == name), None)

    def rendition_key(self, filename: str, token: str | None = None) -> list[str]:
        """Where a rendition file of this item is stored in the public store (``token``: the item's
        current key token when this object may be stale)."""
        token = self.key_token if token is None else token
        return ["entries", str(self.id), *([token] if token else []), filename]


class Rendition(Base):
    """A processed, public file made from the original (thumbnail, medium, ...)."""

    __tablename__ = "renditions"
    __table_args__ = (Index("uq_renditions_media_name", "media_id", "name", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    media_id: Mapped[int] = mapped_column(ForeignKey("media.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(40))
    key: Mapped[list[str]] = mapped_column(JSON)
    mime_type: Mapped[str] = mapped_column(String(100))
    width: Mapped[int | None]
    height: Mapped[int | None]
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    spec_fingerprint: Mapped[str] = mapped_column(String(32))
    # The spec's parameters, so a reprocess can tell whether a new spec would change the bytes.
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)

    media: Mapped[MediaEntry] = relationship(back_populates="renditions")


class UploadKey(Base):
    """A client's ``Idempotency-Key`` for an upload: the same key from the same person names the same
    item, so a client that retries after a lost answer never makes a duplicate."""

    __tablename__ = "upload_keys"
    __table_args__ = (UniqueConstraint("user_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))
    media_id: Mapped[int] = mapped_column(ForeignKey("media.id", ondelete="CASCADE"), index=True)
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
