"""Storage garbage collection: objects that no media references, and references with no object."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kiln.accounts.models import User
from kiln.media.models import MediaEntry, MediaState, Rendition
from kiln.storage import STORE_NAMES, Stores
from kiln.storage.base import InvalidKey, NoSuchFile, clean_key
from kiln.storage.local import LocalStorage

# Bytes are stored before the row that points at them commits (an upload, a rendition): an object
# this young may belong to a transaction still open, so it is not garbage yet.
GRACE_SECONDS = 3600


@dataclass
class GcReport:
    unreferenced: dict[str, list[list[str]]] = field(default_factory=dict)
    missing: list[tuple[int, str, list[str]]] = field(default_factory=list)  # (media id, what, key)
    recent: int = 0  # unreferenced objects younger than the grace period, left alone
    deleted: int = 0
    # Half-written files (local stores' ``.part-`` files) of saves a killed process never finished,
    # older than the grace period; deleted with the rest.
    partial: list[str] = field(default_factory=list)


def _referenced(session: Session) -> tuple[dict[str, set[tuple[str, ...]]], set[int]]:
    refs: dict[str, set[tuple[str, ...]]] = {name: set() for name in STORE_NAMES}
    for key in session.scalars(select(Rendition.key)):
        refs["public"].add(tuple(key))
    for avatar in session.scalars(select(User.avatar).where(User.avatar.is_not(None))):  # profile pictures
        refs["public"].update(tuple(key) for key in (avatar or {}).values())
    from kiln.federation import media_cache  # copies of followed accounts' files

    refs[media_cache.STORE].update(media_cache.stored_keys(session))
    busy: set[int] = set()
    for media_id, store, key, state in session.execute(
        select(MediaEntry.id, MediaEntry.original_store, MediaEntry.original_key, MediaEntry.state)
    ):
        refs[store].add(tuple(key))
        if state in (MediaState.QUEUED, MediaState.PROCESSING):
            busy.add(media_id)
    # As the stores name them: a store cleans each component of a key (an avatar's random token that
    # ends in "_" is saved without it), and the listing gives the cleaned names back.
    return {name: {_as_stored(key) for key in keys} for name, keys in refs.items()}, busy


def _as_stored(key: tuple[str, ...]) -> tuple[str, ...]:
    try:
        return tuple(clean_key(list(key)))
    except InvalidKey:  # never saved under any name: nothing listed can match it
        return key


def _owner_id(key: list[str]) -> int | None:
    return int(key[1]) if len(key) >= 2 and key[0] == "entries" and key[1].isdigit() else None


def gc(sessions: sessionmaker[Session], stores: Stores, dry_run: bool = True,
       grace: float = GRACE_SECONDS) -> GcReport:
    """Objects no media references, and references with no object.

    Every object no row references is found, whatever its key says (a deleted item's files, files of
    ids that never committed). Objects of items still being processed, and objects younger than
    ``grace`` seconds, are left alone.
    """
    report = GcReport()
    oldest = time.time() - grace
    with sessions() as session:
        refs, busy = _referenced(session)
        for rendition in session.scalars(select(Rendition)):
            if not stores.public.exists(rendition.key):
                report.missing.append((rendition.media_id, rendition.name, list(rendition.key)))
        for media in session.scalars(select(MediaEntry).where(MediaEntry.state == MediaState.PROCESSED)):
            if not stores.by_name(media.original_store).exists(media.original_key):
                report.missing.append((media.id, "original", list(media.original_key)))
    for name in STORE_NAMES:
        store = stores.by_name(name)
        orphans = []
        for key in store.iter_keys():
            if tuple(key) in refs[name] or _owner_id(key) in busy:
                continue
            try:
                if store.modified(key) > oldest:
                    report.recent += 1
                    continue
            except NoSuchFile:  # deleted meanwhile
                continue
            orphans.append(key)
        report.unreferenced[name] = orphans
        parts = store.partial_writes(oldest) if isinstance(store, LocalStorage) else []
        report.partial.extend(str(path) for path in parts)
        if not dry_run:
            for key in orphans:
                store.delete(key)
                report.deleted += 1
            for path in parts:
                path.unlink(missing_ok=True)
                report.deleted += 1
    return report
