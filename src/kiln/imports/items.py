"""Importing files with what is known about them (a folder and its spreadsheet, a Google Takeout or a
Flickr export: kiln.imports.sources) into one person's account, through Kiln's one upload flow.

Every file has a stable identity in its source (``Incoming.key``: where it is and how big, or the
service's own id), and is uploaded under an upload key made from it (``import:SOURCE:HASH``), the same
key a client's ``Idempotency-Key`` uses: a second run, or a run after a kill at any moment, finds what
is there and makes nothing twice. Albums become collections of the person's (remembered in ``imported``
by name, so a second run adds to the same one), items in them in the source's order.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import IO, Any, BinaryIO, cast

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kiln.accounts import services as accounts
from kiln.db.base import utcnow
from kiln.errors import KilnError
from kiln.imports.mediagoblin import NO_LIMIT, ImportReport, Progress
from kiln.imports.models import Imported
from kiln.media import services as media_service
from kiln.media.licenses import is_known, normalized
from kiln.media.models import MediaEntry
from kiln.media.services import MediaFields
from kiln.runtime import Runtime
from kiln.social.models import Collection, CollectionItem


@dataclass
class Incoming:
    """One file to import, and what its source says about it."""

    key: str  # its identity in the source: the same file gives the same key on every run
    name: str  # its file name (Kiln decides the kind from the content; the name is a hint)
    open: Callable[[], IO[bytes]]
    title: str = ""
    description: str = ""
    tags: list[str] = field(default_factory=list)
    license: str = ""
    created: dt.datetime | None = None  # when it was taken or first published
    albums: list[str] = field(default_factory=list)
    visibility: str | None = None  # None: the run's
    gps: tuple[float, float] | None = None
    label: str = ""  # how the report names it (its path in the source)


@dataclass
class Album:
    title: str
    description: str = ""


class ItemImport:
    def __init__(self, rt: Runtime, source: str, username: str, *, visibility: str, dry_run: bool = False,
                 collection: str | None = None, albums: dict[str, Album] | None = None,
                 progress: Progress | None = None) -> None:
        self.rt, self.source, self.username, self.visibility = rt, source, username, visibility
        self.dry_run, self.collection = dry_run, collection
        self.albums = albums or {}
        self.progress = progress or (lambda kind, done, total: None)
        self.report = ImportReport(dry_run)
        self.collections: dict[str, int] = {}

    def key(self, incoming: Incoming) -> str:
        return f"import:{self.source}:{hashlib.sha256(incoming.key.encode()).hexdigest()[:40]}"

    def run(self, items: Iterable[Incoming], total: int) -> ImportReport:
        with self.rt.sessions() as session:
            owner = accounts.get_user(session, self.username)
            session.commit()
            for done, incoming in enumerate(items, 1):
                self.progress("media", done, total)
                self._one(session, owner, incoming)
        return self.report

    def _one(self, session: Session, owner: Any, incoming: Incoming) -> None:
        key = self.key(incoming)
        label = incoming.label or incoming.name
        entry = media_service.upload_for_key(session, owner, key)
        albums = [*incoming.albums, *([self.collection] if self.collection else [])]
        if entry is not None:
            self.report.count("media", "already")
            if not self.dry_run:
                self._into_albums(session, owner, entry.id, albums)
            return
        licence = normalized(incoming.license)
        if licence and not is_known(licence):
            self.report.notes.append(f"{label}: licence {incoming.license} is not one Kiln knows; imported as all "
                                     "rights reserved")
            licence = ""
        if self.dry_run:
            self.report.count("media", "new")
            for album in albums:
                if album not in self.collections:
                    self.collections[album] = 0
                    self.report.count("collections", "new")
            return
        fields = MediaFields(title=incoming.title, description=incoming.description, tags=incoming.tags,
                             license=licence, visibility=incoming.visibility or self.visibility)
        try:
            with incoming.open() as fh:
                spooled = media_service.spool(self.rt.settings, cast(BinaryIO, fh), NO_LIMIT)
            entry = media_service.submit_spooled(self.rt, session, owner, spooled, incoming.name, fields,
                                                 idempotency_key=key,
                                                 imported=(self.source, incoming.created or utcnow()))
        except KilnError as exc:
            self.report.notes.append(f"{label}: left out, Kiln refused it: {exc.message}")
            self.report.count("media", "skipped")
            return
        except OSError as exc:
            self.report.notes.append(f"{label}: left out, it could not be read: {exc}")
            self.report.count("media", "skipped")
            return
        if incoming.gps is not None:
            entry.gps_lat, entry.gps_lon = incoming.gps  # private, like every place Kiln knows
        self.report.count("media", "new")
        self.report.new_media.append(entry.id)
        self._into_albums(session, owner, entry.id, albums)
        session.commit()

    def _collection(self, session: Session, owner: Any, name: str) -> int:
        if name in self.collections:
            return self.collections[name]
        found = session.get(Imported, (self.source, "collection", f"{owner.id}:{name}"[:200]))
        collection = session.get(Collection, found.new_id) if found is not None else None
        if collection is None:
            album = self.albums.get(name, Album(name))
            collection = Collection(owner_id=owner.id, title=(album.title or name)[:200],
                                    description=album.description, visibility=self.visibility)
            session.add(collection)
            session.flush()
            session.merge(Imported(source=self.source, kind="collection", old_id=f"{owner.id}:{name}"[:200],
                                   new_id=collection.id))
            self.report.count("collections", "new")
        self.collections[name] = collection.id
        return collection.id

    def _into_albums(self, session: Session, owner: Any, media_id: int, albums: list[str]) -> None:
        for name in albums:
            collection_id = self._collection(session, owner, name)
            there = session.scalar(select(CollectionItem.id).where(CollectionItem.collection_id == collection_id,
                                                                  CollectionItem.media_id == media_id))
            if there is None:
                position = session.scalar(select(func.coalesce(func.max(CollectionItem.position) + 1, 0))
                                          .where(CollectionItem.collection_id == collection_id))
                media = session.get_one(MediaEntry, media_id)
                session.add(CollectionItem(collection_id=collection_id, media_id=media_id, added_by_id=owner.id,
                                           position=position or 0, added=media.created))
        session.commit()
