"""Keeping the search index current: after the commit, durably, never a rebuild per write.

Session hooks (``install``) notice, in every flush, the changes that alter what an item's document
holds: its title, description, alt text, tags or extracted text; its state (published, removed); a
comment added, edited or deleted; the item put in or taken out of a collection, or the collection
renamed or deleted; its owner's name. Before the transaction commits they record one outbox effect,
``search_index``, naming what changed; after the commit a worker runs it (``reindex``), reading each
named item as it is then and writing or removing its row. Running it twice does nothing more, so the
outbox's at-least-once delivery is safe. ``reindex_all`` (``kiln search reindex``) rebuilds every row.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Iterable
from functools import cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, event, func, inspect, select, text
from sqlalchemy.orm import Session, sessionmaker

from kiln.db import changes
from kiln.processing import outbox
from kiln.search import text as search_text
from kiln.search.backends import Backend, Document, backend_for, ensure_configuration

if TYPE_CHECKING:
    from kiln.runtime import Runtime

log = logging.getLogger(__name__)
EFFECT = "search_index"
_DIRTY = "kiln.search.dirty"
CHUNK = 200
MEDIA_TEXT_FIELDS = ("title", "description", "alt_text", "removed", "tags", "owner_id")
COMMENT_FIELDS = ("body", "deleted", "held", "removed")
COLLECTION_FIELDS = ("title", "visibility", "removed")
USER_FIELDS = ("username", "display_name")


def _changed(obj: object, fields: Iterable[str]) -> bool:
    state = inspect(obj)
    return any(state.attrs[name].history.has_changes() for name in fields if name in state.attrs)


def _media_changed(media: Any) -> bool:
    """Whether a flushed change to an item alters its entry: the move into or out of ``processed``,
    and, once it is published, its text, tags, metadata (the text of a PDF, remade by reprocessing),
    removal or owner. Processing commits several times per item (each step's state and metadata) and
    an unpublished item has no entry: none of that counts."""
    attrs = inspect(media).attrs
    state = attrs.state.history
    if state.has_changes() and "processed" in (*state.added, *state.deleted):
        return True
    return media.state == "processed" and (_changed(media, MEDIA_TEXT_FIELDS) or attrs.info.history.has_changes())


def _dirty(session: Session) -> dict[str, set[int]]:
    return session.info.setdefault(_DIRTY, {"media": set(), "collections": set(), "users": set()})


# The hooks each session factory was given (benchmarks take them off to measure what they cost).
INSTALLED: weakref.WeakKeyDictionary[sessionmaker[Session], list[tuple[str, Callable[..., None]]]] = (
    weakref.WeakKeyDictionary())


def install(factory: sessionmaker[Session]) -> None:
    from kiln.accounts.models import User
    from kiln.media.models import MediaEntry
    from kiln.social.models import Collection, CollectionItem, Comment

    @event.listens_for(factory, "before_flush")
    def _collection_deletions(session: Session, _context: object, _instances: object) -> None:
        gone = [obj.id for obj in session.deleted if isinstance(obj, Collection)]
        if gone:  # its items lose its title; after the flush they are no longer in it to be found
            with session.no_autoflush:
                _dirty(session)["media"].update(session.scalars(
                    select(CollectionItem.media_id).where(CollectionItem.collection_id.in_(gone))))

    @event.listens_for(factory, "after_flush")
    def _collect(session: Session, _context: object) -> None:
        dirty = None
        for obj in session.new:
            if isinstance(obj, MediaEntry) and obj.state == "processed":
                dirty = dirty or _dirty(session)
                dirty["media"].add(obj.id)
            elif isinstance(obj, (Comment, CollectionItem)):
                dirty = dirty or _dirty(session)
                dirty["media"].add(obj.media_id)
        for obj in session.dirty:
            if isinstance(obj, MediaEntry) and _media_changed(obj):
                dirty = dirty or _dirty(session)
                dirty["media"].add(obj.id)
            elif isinstance(obj, Comment) and _changed(obj, COMMENT_FIELDS):
                dirty = dirty or _dirty(session)
                dirty["media"].add(obj.media_id)
            elif isinstance(obj, Collection) and _changed(obj, COLLECTION_FIELDS):
                dirty = dirty or _dirty(session)
                dirty["collections"].add(obj.id)
            elif isinstance(obj, User) and _changed(obj, USER_FIELDS):
                dirty = dirty or _dirty(session)
                dirty["users"].add(obj.id)
        for obj in session.deleted:
            if isinstance(obj, MediaEntry):
                dirty = dirty or _dirty(session)
                dirty["media"].add(obj.id)
            elif isinstance(obj, (Comment, CollectionItem)):
                dirty = dirty or _dirty(session)
                dirty["media"].add(obj.media_id)

    @event.listens_for(factory, "before_commit")
    def _record(session: Session) -> None:
        if session.new or session.dirty or session.deleted:
            session.flush()  # what the commit would flush next is noticed too
        dirty = session.info.pop(_DIRTY, None)
        if dirty and any(dirty.values()):
            payload = {name: sorted(ids) for name, ids in dirty.items() if ids}
            outbox.record(session, EFFECT, payload,
                          summary="search index: " + ", ".join(f"{len(v)} {k}" for k, v in payload.items()))

    @event.listens_for(factory, "after_rollback")
    def _forget(session: Session) -> None:
        session.info.pop(_DIRTY, None)

    INSTALLED[factory] = [("before_flush", _collection_deletions), ("after_flush", _collect),
                          ("before_commit", _record), ("after_rollback", _forget)]


# Building documents --------------------------------------------------------------------------------

@cache
def _documents_query() -> Any:
    """The query of ``_documents``, built once (building it cost more than running it): the ids are
    an expanding parameter."""
    from kiln.accounts.models import User
    from kiln.media.models import MediaEntry, Tag, media_tags
    from kiln.social.models import Collection, CollectionItem, Comment

    tags = (select(func.aggregate_strings(Tag.name, " ")).join(media_tags, media_tags.c.tag_id == Tag.id)
            .where(media_tags.c.media_id == MediaEntry.id).scalar_subquery())
    collections = (select(func.aggregate_strings(Collection.title, " "))
                   .join(CollectionItem, CollectionItem.collection_id == Collection.id)
                   .where(CollectionItem.media_id == MediaEntry.id, Collection.visibility == "public",
                          Collection.removed.is_(None)).scalar_subquery())
    comments = (select(func.aggregate_strings(Comment.body, "\n"))
                .where(Comment.media_id == MediaEntry.id, Comment.deleted.is_(None), Comment.removed.is_(None),
                       Comment.held.is_(False)).scalar_subquery())
    return (select(MediaEntry.id, MediaEntry.title, MediaEntry.description, MediaEntry.alt_text, MediaEntry.info,
                   MediaEntry.visibility, User.username, User.display_name, tags.label("tags"),
                   collections.label("collections"), comments.label("comments"))
            .join(User, User.id == MediaEntry.owner_id)
            .where(MediaEntry.id.in_(bindparam("media_ids", expanding=True)), MediaEntry.state == "processed",
                   MediaEntry.removed.is_(None)))


def _documents(session: Session, media_ids: list[int]) -> tuple[dict[int, Document], list[int], bool]:
    """The documents of those items that are searchable (published and not removed), the ids of the
    others (their rows go), and whether any searchable one is public. One query of plain rows (tags,
    public collections' titles and comments gathered by subqueries): this runs once per published
    item, and its cost is part of what publishing an item costs."""
    rows = session.execute(_documents_query(), {"media_ids": list(media_ids)}).all()
    documents = {}
    for m in rows:
        info = m.info or {}
        extracted = info.get("text") if isinstance(info.get("text"), str) else ""
        pages = info.get("page_text")
        body = "\n".join([m.description, m.alt_text, extracted or "",
                          *(p for p in (pages if isinstance(pages, list) else []) if isinstance(p, str)),
                          m.comments or ""])
        documents[m.id] = Document(
            title=search_text.prepare(m.title), tags=search_text.prepare(m.tags or ""),
            people=search_text.prepare(" ".join([m.username, m.display_name or "", m.collections or ""])),
            body=search_text.prepare(body))
    public = any(m.visibility == "public" for m in rows)
    return documents, [i for i in media_ids if i not in documents], public


def backend(rt: Runtime) -> Backend:
    return backend_for(rt.engine.dialect.name, rt.settings.search.language)


def index_media(rt: Runtime, media_ids: Iterable[int], session: Session | None = None) -> int:
    """Write or remove the rows of these items, CHUNK to a transaction. Returns how many were written.
    With ``session``, the writes go through it, committed between chunks but not after the last (the
    caller's commit ends it)."""
    if session is None:
        with rt.sessions() as own:
            written = index_media(rt, media_ids, own)
            own.commit()
        return written
    ids = sorted(set(media_ids))
    written = 0
    chosen = backend(rt)
    for start in range(0, len(ids), CHUNK):
        if start:
            session.commit()
        chunk = ids[start:start + CHUNK]
        documents, gone, public = _documents(session, chunk)
        for media_id, document in documents.items():
            chosen.put(session, media_id, document)
        chosen.remove(session, gone)
        if public:
            # Anonymous searches are kept by the page cache per generation: one rendered between
            # the change and this rewrite must not outlive it. (Entries of items only their owner
            # sees are in no kept page; removed entries were already left out by the live rules.)
            changes.bump(session.connection())
        written += len(documents)
    return written


def index_now(rt: Runtime, session: Session, media_id: int) -> None:
    """Write the item's entry in the caller's transaction, before it commits, when what the session
    changed alters it (a worker publishing the item): no effect is recorded for it, so the publication
    costs no second transaction and no effect rows. A failure rolls back only these writes (a
    savepoint) and leaves the item to the effect, as for any other change."""
    session.flush()  # the hooks see the change, and the document is read as it will be committed
    dirty = session.info.get(_DIRTY)
    if not dirty or media_id not in dirty["media"]:
        return
    # A savepoint of the connection, not of the session: the session's commit hooks (which record
    # and ring effects) must not run for it. The writes are plain statements, no ORM objects.
    savepoint = session.connection().begin_nested()
    try:
        index_media(rt, [media_id], session)
    except Exception:
        savepoint.rollback()
        log.exception("indexing media %s with its change failed; the search index effect will", media_id)
        return
    savepoint.commit()
    dirty["media"].discard(media_id)


def _expand(session: Session, payload: dict[str, Any]) -> set[int]:
    from kiln.media.models import MediaEntry
    from kiln.social.models import CollectionItem

    media = {int(i) for i in payload.get("media", [])}
    if payload.get("users"):
        media.update(session.scalars(select(MediaEntry.id).where(MediaEntry.owner_id.in_(payload["users"]))))
    if payload.get("collections"):
        media.update(session.scalars(select(CollectionItem.media_id)
                                     .where(CollectionItem.collection_id.in_(payload["collections"]))))
    return media


def reindex(rt: Runtime, session: Session, payload: dict[str, Any]) -> None:
    """The ``search_index`` effect's handler: its writes commit with the effect's done mark."""
    if payload.get("all"):
        session.commit()  # the claim: the rebuild writes in transactions of its own
        reindex_all(rt)
        return
    index_media(rt, _expand(session, payload), session)


def fill_if_empty(rt: Runtime) -> bool:
    """Ask for a whole rebuild (an effect, run by a worker) when the index is empty although there is
    something to find: a site that has just been upgraded to a version with search. One indexed
    lookup on any site whose index has a row. Returns whether it asked."""
    from kiln.media.models import MediaEntry
    from kiln.processing.models import OutboxEffect, WorkState

    with rt.sessions() as session:
        if session.execute(text("SELECT 1 FROM search_media LIMIT 1")).first() is not None:
            return False
        if session.scalar(select(MediaEntry.id).where(MediaEntry.state == "processed").limit(1)) is None:
            return False
        pending = session.scalars(select(OutboxEffect.payload).where(
            OutboxEffect.kind == EFFECT,
            OutboxEffect.state.in_((WorkState.PENDING, WorkState.QUEUED, WorkState.RUNNING))))
        if any(payload.get("all") for payload in pending):
            return False
        outbox.record(session, EFFECT, {"all": True}, summary="search index: rebuild every item")
        session.commit()
    log.info("the search index is empty: a rebuild of every item is queued")
    return True


def reindex_all(rt: Runtime, progress: Callable[[int], None] | None = None) -> tuple[int, int]:
    """Rebuild every row (the search keeps answering meanwhile); rows of items that no longer exist
    go. Returns (items indexed, rows removed)."""
    from kiln.media.models import MediaEntry

    if rt.engine.dialect.name == "postgresql":
        with rt.engine.begin() as connection:
            ensure_configuration(connection, rt.settings.search.language)
    with rt.sessions() as session:
        ids = list(session.scalars(select(MediaEntry.id).order_by(MediaEntry.id)))
    written = 0
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        written += index_media(rt, chunk)
        if progress is not None:
            progress(len(chunk))
    with rt.sessions() as session:
        stale = sorted(backend(rt).indexed_ids(session) - set(ids))
        backend(rt).remove(session, stale)
        changes.bump(session.connection())
        session.commit()
    return written, len(stale)


outbox.register_local_handler(EFFECT, reindex)
