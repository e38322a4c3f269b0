"""Storage garbage collection: objects that no media references, and references with no object."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from kiln.media.models import MediaEntry, Rendition
from kiln.storage import STORE_NAMES, Stores


@dataclass
class GcReport:
    unreferenced: dict[str, list[list[str]]] = field(default_factory=dict)
    missing: list[tuple[int, str, list[str]]] = field(default_factory=list)  # (media id, what, key)
    deleted: int = 0


def _referenced(session: Session) -> tuple[dict[str, set[tuple[str, ...]]], set[int], int]:
    refs: dict[str, set[tuple[str, ...]]] = {name: set() for name in STORE_NAMES}
    for key in session.scalars(select(Rendition.key)):
        refs["public"].add(tuple(key))
    busy: set[int] = set()
    for media_id, store, key, state in session.execute(
        select(MediaEntry.id, MediaEntry.original_store, MediaEntry.original_key, MediaEntry.state)
    ):
        refs[store].add(tuple(key))
        if state in ("queued", "processing"):
            busy.add(media_id)
    newest = session.scalar(select(func.max(MediaEntry.id))) or 0
    return refs, busy, newest


def _owner_id(key: list[str]) -> int | None:
    return int(key[1]) if len(key) >= 2 and key[0] == "entries" and key[1].isdigit() else None


def gc(sessions: sessionmaker[Session], stores: Stores, dry_run: bool = True) -> GcReport:
    """Objects no media references, and references with no object.

    Objects of items still being processed, and of ids newer than any committed item (an upload
    being stored right now), are left alone.
    """
    report = GcReport()
    with sessions() as session:
        refs, busy, newest = _referenced(session)
        for rendition in session.scalars(select(Rendition)):
            if not stores.public.exists(rendition.key):
                report.missing.append((rendition.media_id, rendition.name, list(rendition.key)))
        for media in session.scalars(select(MediaEntry).where(MediaEntry.state == "processed")):
            if not stores.by_name(media.original_store).exists(media.original_key):
                report.missing.append((media.id, "original", list(media.original_key)))
    for name in STORE_NAMES:
        store = stores.by_name(name)
        orphans = []
        for key in store.iter_keys():
            owner = _owner_id(key)
            if tuple(key) in refs[name] or owner in busy or (owner is not None and owner > newest):
                continue
            orphans.append(key)
        report.unreferenced[name] = orphans
        if not dry_run:
            for key in orphans:
                store.delete(key)
                report.deleted += 1
    return report
