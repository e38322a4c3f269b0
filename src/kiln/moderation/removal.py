"""Removal of content by the moderators: a media item, a comment or a collection.

A removed media item or collection is hidden from everyone but admins on every page, listing, feed,
API answer and file URL (``kiln.media.visibility.visible`` and the listings' SQL ask
``removed IS NULL``); its owner is told it was removed and why. Removing an item rotates its key
token and copies its renditions to the new keys, as making it private does
(``kiln.media.visibility.rotate_keys``): the caller deletes the old keys only after the commit, so
the public URLs fetched before answer 404. The change counter watches these tables, so the page
cache and the kept fragments move on by the same commit.

After ``moderation.removal_grace_days`` the item (row, renditions, original) or the collection is
purged (``purge_due``, run by ``kiln moderation purge`` and the sweeper); until then an admin can
restore it. A removed comment becomes a placeholder ("removed by the moderators") at once, which stays
in the thread and counts as one of its comments; its text is kept only in the reports about it.

Each removal tells the owner (a "removed" notification with the reason, mailed at once by default;
the moderator is not named). Each change writes its audit entry in the caller's transaction; the
caller commits.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiln.accounts.models import User
from kiln.db.base import utcnow
from kiln.errors import Conflict, PermissionDenied
from kiln.media import services as media_service
from kiln.media.models import MediaEntry
from kiln.media.visibility import rotate_keys
from kiln.moderation import audit
from kiln.moderation.people import _reason, may_moderate
from kiln.runtime import Runtime
from kiln.social.models import Collection, Comment
from kiln.social.notify import notify
from kiln.storage.base import Key

log = logging.getLogger(__name__)


def check_moderator(actor: User | None) -> None:
    if actor is not None and not may_moderate(actor):
        raise PermissionDenied("Only moderators and administrators can do this.", code="not_moderator")


def check_may_remove(actor: User | None, owner: User | None) -> None:
    """Moderators remove what people posted, except what moderators and admins posted (their own aside):
    only an admin does that, as only an admin acts on their accounts (``people._check_actor``)."""
    check_moderator(actor)
    if (actor is not None and owner is not None and owner.id != actor.id and not actor.is_admin
            and (owner.is_admin or owner.has("moderator"))):
        raise PermissionDenied("Only administrators can act on moderators and administrators.", code="not_admin")


def check_admin(actor: User | None) -> None:
    if actor is not None and not actor.is_admin:
        raise PermissionDenied("Only administrators can restore what the moderators removed.", code="not_admin")


def remove_media(rt: Runtime, session: Session, actor: User | None, media: MediaEntry, *, reason: str,
                 via: str) -> list[Key]:
    """Remove an item; returns the old rendition keys, which the caller deletes after the commit."""
    check_may_remove(actor, media.owner)
    text = _reason(reason)
    if media.removed is not None:
        raise Conflict("This has been removed already.", code="removed_already")
    from kiln.federation import publishing  # federation builds on moderation, not the reverse

    before = publishing.audience(media)
    media.removed, media.removed_reason = utcnow(), text
    publishing.on_changed(session, media, before)  # a Delete to followers elsewhere
    old_keys = rotate_keys(rt, media)
    notify(session, media.owner, "removed", media_id=media.id, extra={"reason": text})
    audit.record(session, actor, "media.remove", "media", media.id, target_label=media.title, reason=text,
                 details={"owner_id": media.owner_id, "owner": media.owner.username}, via=via)
    return old_keys


def restore_media(session: Session, actor: User | None, media: MediaEntry, *, reason: str = "", via: str) -> None:
    """Give back a removed item before it is purged (admins only). Its renditions keep their new keys."""
    check_admin(actor)
    text = _reason(reason, required=False)
    if media.removed is None:
        raise Conflict("This has not been removed.", code="not_removed")
    media.removed, media.removed_reason = None, ""
    from kiln.federation import publishing

    publishing.on_changed(session, media, None)  # sent again to followers elsewhere
    audit.record(session, actor, "media.restore", "media", media.id, target_label=media.title, reason=text,
                 details={"owner_id": media.owner_id, "owner": media.owner.username}, via=via)


def remove_comment(session: Session, actor: User | None, comment: Comment, *, reason: str, via: str) -> None:
    """Make a comment a placeholder that says the moderators removed it (its replies stay)."""
    check_may_remove(actor, comment.author)
    text = _reason(reason)
    if comment.removed is not None or comment.deleted is not None:
        raise Conflict("This has been removed already.", code="removed_already")
    # The placeholder stays in the thread (and in the item's comment count, which makes the thread
    # show), whether or not it has replies.
    comment.removed = comment.deleted = utcnow()
    comment.body = ""
    if comment.author is not None:
        notify(session, comment.author, "removed", media_id=comment.media_id, comment_id=comment.id,
               extra={"reason": text})
    author = comment.author.username if comment.author else comment.remote_actor.handle if comment.remote_actor else ""
    audit.record(session, actor, "comment.remove", "comment", comment.id, target_label=author, reason=text,
                 details={"media_id": comment.media_id, "author_id": comment.author_id}, via=via)


def remove_collection(session: Session, actor: User | None, collection: Collection, *, reason: str,
                      via: str) -> None:
    check_may_remove(actor, collection.owner)
    text = _reason(reason)
    if collection.removed is not None:
        raise Conflict("This has been removed already.", code="removed_already")
    collection.removed, collection.removed_reason = utcnow(), text
    notify(session, collection.owner, "removed", collection_id=collection.id, extra={"reason": text})
    audit.record(session, actor, "collection.remove", "collection", collection.id, target_label=collection.title,
                 reason=text, details={"owner_id": collection.owner_id}, via=via)


def restore_collection(session: Session, actor: User | None, collection: Collection, *, reason: str = "",
                       via: str) -> None:
    check_admin(actor)
    text = _reason(reason, required=False)
    if collection.removed is None:
        raise Conflict("This has not been removed.", code="not_removed")
    collection.removed, collection.removed_reason = None, ""
    audit.record(session, actor, "collection.restore", "collection", collection.id, target_label=collection.title,
                 reason=text, details={"owner_id": collection.owner_id}, via=via)


def removed_media(session: Session, limit: int = 200) -> list[MediaEntry]:
    """Items waiting to be purged, the most recently removed first (the admin's list)."""
    return list(session.scalars(select(MediaEntry).where(MediaEntry.removed.is_not(None))
                                .order_by(MediaEntry.removed.desc()).limit(limit)).unique())


def removed_collections(session: Session, limit: int = 200) -> list[Collection]:
    return list(session.scalars(select(Collection).where(Collection.removed.is_not(None))
                                .order_by(Collection.removed.desc()).limit(limit)).unique())


def due(rt: Runtime, *, now: dt.datetime | None = None) -> tuple[list[int], list[int]]:
    """The ids of the media items and collections whose grace period is over."""
    cutoff = (now or utcnow()) - dt.timedelta(days=rt.settings.moderation.removal_grace_days)
    with rt.sessions() as session:
        media_ids = list(session.scalars(select(MediaEntry.id).where(MediaEntry.removed.is_not(None),
                                                                     MediaEntry.removed <= cutoff)))
        collection_ids = list(session.scalars(select(Collection.id).where(Collection.removed.is_not(None),
                                                                          Collection.removed <= cutoff)))
    return media_ids, collection_ids


def purge_due(rt: Runtime, *, now: dt.datetime | None = None, via: str = "system") -> int:
    """Delete for good what was removed more than the grace period ago: each item through the one
    delete path (``kiln.media.services.delete``: the row, then its files), each collection's row.
    One short transaction per thing, each with its audit entry. Returns how many were purged."""
    cutoff = (now or utcnow()) - dt.timedelta(days=rt.settings.moderation.removal_grace_days)
    purged = 0
    media_ids, collection_ids = due(rt, now=now)
    with rt.sessions() as session:
        for media_id in media_ids:
            media = session.get(MediaEntry, media_id)
            if media is None or media.removed is None or media.removed > cutoff:
                continue  # restored (or deleted) meanwhile
            audit.record(session, None, "media.purge", "media", media.id, target_label=media.title,
                         reason=media.removed_reason, details={"owner_id": media.owner_id}, via=via)
            media_service.delete(rt, session, None, media)  # commits the entry with the deletion
            purged += 1
        for collection_id in collection_ids:
            collection = session.get(Collection, collection_id)
            if collection is None or collection.removed is None or collection.removed > cutoff:
                continue
            audit.record(session, None, "collection.purge", "collection", collection.id,
                         target_label=collection.title, reason=collection.removed_reason,
                         details={"owner_id": collection.owner_id}, via=via)
            session.delete(collection)
            session.commit()
            purged += 1
    if purged:
        log.info("purged %d removed items and collections", purged)
    return purged
