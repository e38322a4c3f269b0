"""What an import brought in, and the old site's URLs."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from kiln.db.base import Base, utcnow

# What a legacy path leads to; ``role`` says which page or file of it.
LEGACY_TARGETS = ("user", "media", "comment", "collection", "tag")


class Imported(Base):
    """One thing an import made in Kiln, under the source's own id for it (``kind`` "user", "media",
    "comment", "collection" or "report"): a second run finds it here and skips it."""

    __tablename__ = "imported"

    source: Mapped[str] = mapped_column(String(20), primary_key=True)  # "mediagoblin"
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    old_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    new_id: Mapped[int]
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)


class LegacyPath(Base):
    """A URL path of the old site (``/u/alice/m/harbour-dusk/``) and what it is in Kiln now: answered
    with a permanent redirect when nothing of Kiln's own answers it (kiln.imports.redirects)."""

    __tablename__ = "legacy_paths"
    __table_args__ = (Index("ix_legacy_paths_target", "target_type", "target_id"),)

    path: Mapped[str] = mapped_column(String(1000), primary_key=True)
    target_type: Mapped[str] = mapped_column(String(20))  # one of LEGACY_TARGETS
    target_id: Mapped[int]
    # Which page or file: "page", "gallery", "feed", "collections", "tag:<slug>" for a person; "page",
    # "thumb", "medium", "original" for an item; "page", "feed" for a collection.
    role: Mapped[str] = mapped_column(String(80), default="page")
