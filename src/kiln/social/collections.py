"""Collections (albums): ordered items with a note each, collaborators (share links: kiln.social.shares).

Who sees what (docs/collections.md):

- A collection is public (listed on its owner's collections page and on its items' pages), unlisted
  (reachable by its link, listed nowhere but to its owner and collaborators) or private (its owner,
  its collaborators and admins; everyone else gets 404). A live share link shows it to whoever has
  the link, whatever its visibility.
- An item shows in a collection only when the viewer may see the item itself
  (``kiln.media.visibility.visible``) *and* the collection: a private item never becomes visible by
  being put in a public collection.
- The one widening: a live share link also shows the items in its collection that belong to the
  collection's *owner* (processed ones, whatever their visibility, files included), because the owner
  made the link to share exactly them. Items a collaborator added stay governed by their own
  visibility. A revoked or expired link shows nothing: every page, feed and file asked with it
  answers 404.

Only an item's owner puts it in a collection (the collection's owner or a collaborator, each their
own media); the collection's owner may remove anything, a collaborator what they added.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, and_, delete, func, or_, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kiln.accounts.models import User
from kiln.accounts.services import get_user
from kiln.db.base import utcnow
from kiln.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from kiln.media.models import MediaEntry, MediaState
from kiln.media.visibility import check_visibility, visible
from kiln.social import blocks
from kiln.social.models import (
    COLLECTION_TITLE_MAX,
    ITEM_NOTE_MAX,
    Collection,
    CollectionCollaborator,
    CollectionItem,
    ShareLink,
)
from kiln.social.notify import notify

DESCRIPTION_MAX = 20000
MAX_ITEMS = 1000  # per collection: an album, not an archive
MAX_COLLABORATORS = 50
SHARE_LABEL_MAX = 100
NO_SUCH_COLLECTION = "There is no such collection. It may have been deleted."


# Reading ---------------------------------------------------------------------------------------

def get_collection(session: Session, collection_id: int) -> Collection:
    collection = session.get(Collection, collection_id)
    if collection is None:
        raise NotFound(NO_SUCH_COLLECTION)
    return collection


def collaborator_ids(session: Session, collection: Collection) -> set[int]:
    return set(session.scalars(select(CollectionCollaborator.user_id)
                               .where(CollectionCollaborator.collection_id == collection.id)))


def collaborators(session: Session, collection: Collection) -> list[User]:
    rows = session.scalars(select(CollectionCollaborator).where(CollectionCollaborator.collection_id == collection.id)
                           .order_by(CollectionCollaborator.created)).unique()
    return [row.user for row in rows]


def is_member(session: Session, collection: Collection, user: User | None) -> bool:
    """The owner or a collaborator: people who may add their media to it."""
    if user is None:
        return False
    return user.id == collection.owner_id or user.id in collaborator_ids(session, collection)


def may_see(session: Session, collection: Collection, viewer: User | None, share: ShareLink | None = None) -> bool:
    if collection.removed is not None:  # removed by the moderators: admins only (kiln.moderation.removal)
        return viewer is not None and viewer.is_admin
    if blocks.blocks_viewer(collection.owner_id, viewer, session):
        return False  # to someone its owner blocked, nothing of theirs exists
    if collection.visibility != "private" or (share is not None and share.collection_id == collection.id):
        return True
    return viewer is not None and (viewer.is_admin or is_member(session, collection, viewer))


def _item_filter(collection: Collection, viewer: User | None, share: ShareLink | None) -> ColumnElement[bool]:
    """SQL for ``item_visible``: what ``visible`` allows, plus the owner's items under a live share link."""
    if viewer is not None and viewer.is_admin:
        return true()
    done = MediaEntry.state == MediaState.PROCESSED
    shown = and_(done, MediaEntry.visibility != "private")
    if share is not None and share.collection_id == collection.id:
        shown = or_(shown, and_(done, MediaEntry.owner_id == collection.owner_id))
    if viewer is not None:
        shown = or_(shown, MediaEntry.owner_id == viewer.id)
    return and_(shown, MediaEntry.removed.is_(None))


def item_visible(collection: Collection, media: MediaEntry, viewer: User | None, share: ShareLink | None) -> bool:
    if visible(media, viewer):
        return True
    return (media.removed is None and share is not None and share.collection_id == collection.id
            and media.owner_id == collection.owner_id
            and media.state == MediaState.PROCESSED)


def _items_query(collection: Collection, viewer: User | None, share: ShareLink | None) -> Select[CollectionItem]:
    query = (select(CollectionItem).join(MediaEntry, MediaEntry.id == CollectionItem.media_id)
             .where(CollectionItem.collection_id == collection.id, _item_filter(collection, viewer, share))
             .order_by(CollectionItem.position, CollectionItem.id))
    return blocks.leave_out(None, viewer, query, MediaEntry.owner_id)  # the items of people hidden from the viewer


@dataclass
class ItemPage:
    items: list[CollectionItem]
    next_cursor: str | None


_CURSOR = re.compile(r"(-?[0-9]{1,9})-([0-9]{1,10})", re.ASCII)


def items_page(session: Session, collection: Collection, viewer: User | None, share: ShareLink | None,
               cursor: str | None, per_page: int) -> ItemPage:
    """The items the viewer may see, in the collection's order, ``per_page`` at a time (keyset on
    position and row id; the cursor is ``POSITION-ID``)."""
    query = _items_query(collection, viewer, share)
    if cursor:
        found = _CURSOR.fullmatch(cursor)
        if found is None or int(found.group(2)) > 2**31 - 1:
            raise InvalidInput("That page link is broken; start from the first page.", code="bad_cursor")
        position, row_id = int(found.group(1)), int(found.group(2))
        query = query.where(or_(CollectionItem.position > position,
                                and_(CollectionItem.position == position, CollectionItem.id > row_id)))
    rows = list(session.scalars(query.limit(per_page + 1)).unique())
    items = rows[:per_page]
    more = len(rows) > per_page and items
    return ItemPage(items, cursor_of(items[-1]) if more else None)


def cursor_of(item: CollectionItem) -> str:
    """The cursor of the page that starts after ``item`` (``items_page``)."""
    return f"{item.position}-{item.id}"


def visible_items(session: Session, collection: Collection, viewer: User | None, share: ShareLink | None = None,
                  limit: int = MAX_ITEMS) -> list[CollectionItem]:
    return list(session.scalars(_items_query(collection, viewer, share).limit(limit)).unique())


def all_items(session: Session, collection: Collection) -> list[CollectionItem]:
    return list(session.scalars(select(CollectionItem).where(CollectionItem.collection_id == collection.id)
                                .order_by(CollectionItem.position, CollectionItem.id)).unique())


def cover(session: Session, collection: Collection, viewer: User | None,
          share: ShareLink | None = None) -> MediaEntry | None:
    """The cover the viewer may see: the chosen one, else the first item they may see."""
    if collection.cover_media_id is not None:
        chosen = session.get(MediaEntry, collection.cover_media_id)
        if chosen is not None and item_visible(collection, chosen, viewer, share):
            return chosen
    first = session.scalars(_items_query(collection, viewer, share).limit(1)).first()
    return first.media if first is not None else None


def _listed_filter(session: Session, viewer: User | None) -> ColumnElement[bool]:
    """Collections listed to ``viewer``: public ones, and all those they own or help with (admins: all)."""
    if viewer is None:
        return and_(Collection.visibility == "public", Collection.removed.is_(None))
    if viewer.is_admin:
        return true()
    helping = select(CollectionCollaborator.collection_id).where(CollectionCollaborator.user_id == viewer.id)
    return and_(Collection.removed.is_(None), or_(Collection.visibility == "public", Collection.owner_id == viewer.id,
                                                  Collection.id.in_(helping)))


def user_collections(session: Session, owner: User, viewer: User | None, cursor: str | None = None,
                     per_page: int = 30) -> tuple[list[Collection], str | None]:
    """``owner``'s collections listed to ``viewer``, newest first (keyset on the id; cursor = the id)."""
    query = select(Collection).where(Collection.owner_id == owner.id, _listed_filter(session, viewer))
    if cursor:
        if not (cursor.isascii() and cursor.isdigit() and len(cursor) <= 10 and 0 < int(cursor) <= 2**31 - 1):
            raise InvalidInput("That page link is broken; start from the first page.", code="bad_cursor")
        query = query.where(Collection.id < int(cursor))
    rows = list(session.scalars(query.order_by(Collection.id.desc()).limit(per_page + 1)).unique())
    items = rows[:per_page]
    return items, str(items[-1].id) if len(rows) > per_page and items else None


@dataclass(frozen=True)
class Containing:
    """A collection an item is in, with what deciding who it is listed to needs."""

    id: int
    title: str
    visibility: str
    owner_id: int
    helpers: frozenset[int]

    def listed_to(self, viewer: User | None) -> bool:
        """As ``_listed_filter``: public ones to everyone, the rest to their owner, helpers and admins."""
        if self.visibility == "public":
            return True
        return viewer is not None and (viewer.id == self.owner_id or viewer.id in self.helpers or viewer.is_admin)


def containing_all(session: Session, media_id: int) -> tuple[Containing, ...]:
    """Every collection ``media_id`` is in, whoever may see it, by title (two queries; the same for
    every viewer, so the media page keeps it per generation and filters it with ``listed_to``)."""
    rows = session.execute(
        select(Collection.id, Collection.title, Collection.visibility, Collection.owner_id)
        .join(CollectionItem, CollectionItem.collection_id == Collection.id)
        .where(CollectionItem.media_id == media_id, Collection.removed.is_(None))
        .order_by(Collection.title, Collection.id)).all()
    helpers: dict[int, set[int]] = {}
    if any(row.visibility != "public" for row in rows):
        for collection_id, user_id in session.execute(
                select(CollectionCollaborator.collection_id, CollectionCollaborator.user_id)
                .where(CollectionCollaborator.collection_id.in_([row.id for row in rows]))):
            helpers.setdefault(collection_id, set()).add(user_id)
    return tuple(Containing(row.id, row.title, row.visibility, row.owner_id, frozenset(helpers.get(row.id, ())))
                 for row in rows)


def containing(session: Session, media: MediaEntry, viewer: User | None,
               found: tuple[Containing, ...] | None = None) -> list[Containing]:
    """The collections an item is in that are listed to ``viewer`` (the media page's "In collections"),
    at most 50; ``found``: ``containing_all``'s answer, if kept."""
    rows = containing_all(session, media.id) if found is None else found
    return [row for row in rows if row.listed_to(viewer)][:50]


def addable(session: Session, user: User) -> list[Collection]:
    """Collections ``user`` may add their media to: their own and those they help with."""
    helping = select(CollectionCollaborator.collection_id).where(CollectionCollaborator.user_id == user.id)
    return list(session.scalars(select(Collection).where(or_(Collection.owner_id == user.id,
                                                             Collection.id.in_(helping)))
                                .order_by(Collection.title, Collection.id).limit(500)).unique())


# Changing --------------------------------------------------------------------------------------

def _clean_title(title: str) -> str:
    title = " ".join((title or "").split())
    if not title:
        raise InvalidInput("Give the collection a title.", code="no_title")
    if len(title) > COLLECTION_TITLE_MAX:
        raise InvalidInput("A title has at most %(n)s characters.", code="title_too_long", n=COLLECTION_TITLE_MAX)
    return title


def _clean_description(text: str) -> str:
    if len(text or "") > DESCRIPTION_MAX:
        raise InvalidInput("A description has at most %(n)s characters.", code="description_too_long",
                           n=DESCRIPTION_MAX)
    return (text or "").replace("\x00", "")


def check_owner(session: Session, collection: Collection, user: User | None, *, admin_too: bool = False) -> None:
    """Only the owner (and, for ``admin_too``, an admin) may do this; to those who may not see the
    collection it does not exist."""
    if user is not None and (user.id == collection.owner_id or (admin_too and user.is_admin)):
        return
    if not may_see(session, collection, user):
        raise NotFound(NO_SUCH_COLLECTION)
    raise PermissionDenied("Only the collection's owner can do that.", code="not_collection_owner")


def create(session: Session, owner: User, title: str, description: str = "", visibility: str = "public") -> Collection:
    collection = Collection(owner_id=owner.id, title=_clean_title(title), description=_clean_description(description),
                            visibility=check_visibility(visibility or "public"))
    session.add(collection)
    session.flush()
    return collection


def update(session: Session, user: User, collection: Collection, *, title: str | None = None,
           description: str | None = None, visibility: str | None = None, cover_media_id: int | None = None,
           clear_cover: bool = False) -> Collection:
    check_owner(session, collection, user)
    if title is not None:
        collection.title = _clean_title(title)
    if description is not None:
        collection.description = _clean_description(description)
    if visibility is not None:
        collection.visibility = check_visibility(visibility)
    if clear_cover:
        collection.cover_media_id = None
    elif cover_media_id is not None:
        if session.scalar(select(CollectionItem.id).where(CollectionItem.collection_id == collection.id,
                                                          CollectionItem.media_id == cover_media_id)) is None:
            raise InvalidInput("The cover must be one of the collection's items.", code="bad_cover")
        collection.cover_media_id = cover_media_id
    collection.updated = utcnow()
    return collection


def remove_collection(session: Session, user: User, collection: Collection) -> None:
    """The owner or an admin deletes a collection; its items stay where they are."""
    check_owner(session, collection, user, admin_too=True)
    session.delete(collection)


def find_item(session: Session, collection: Collection, media_id: int) -> CollectionItem | None:
    return session.scalar(select(CollectionItem).where(CollectionItem.collection_id == collection.id,
                                                       CollectionItem.media_id == media_id))


def check_can_add(session: Session, collection: Collection, user: User) -> None:
    if not is_member(session, collection, user):
        if not may_see(session, collection, user):
            raise NotFound(NO_SUCH_COLLECTION)
        raise PermissionDenied("Only the collection's owner and the people they invited can add to it.",
                               code="not_collaborator")


def add_item(session: Session, user: User, collection: Collection, media: MediaEntry, note: str = "") -> CollectionItem:
    """Put ``user``'s own item at the end (adding it again changes its note). The caller commits."""
    check_can_add(session, collection, user)
    if media.owner_id != user.id:
        if not visible(media, user):
            raise NotFound("There is no such media. It may have been deleted.")
        raise PermissionDenied("You can add only your own media to a collection.", code="not_your_media")
    note = (note or "").replace("\x00", "").strip()
    if len(note) > ITEM_NOTE_MAX:
        raise InvalidInput("A note has at most %(n)s characters.", code="note_too_long", n=ITEM_NOTE_MAX)
    item = find_item(session, collection, media.id)
    if item is None:
        count, last = session.execute(select(func.count(), func.max(CollectionItem.position))
                                      .where(CollectionItem.collection_id == collection.id)).one()
        if count >= MAX_ITEMS:
            raise InvalidInput("A collection holds at most %(n)s items.", code="collection_full", n=MAX_ITEMS)
        item = CollectionItem(collection_id=collection.id, media_id=media.id, added_by_id=user.id, note=note,
                              position=(last if last is not None else -1) + 1)
        session.add(item)
    else:
        item.note = note
    collection.updated = utcnow()
    session.flush()
    return item


def upload_target(session: Session, user: User, raw: str | None) -> Collection | None:
    """The collection an upload goes into (``collection_id`` of the upload form or the API; empty:
    none), checked before a file is taken."""
    raw = (raw or "").strip()
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 10 and 0 < int(raw) <= 2**31 - 1):
        raise InvalidInput("Choose one of your collections, or none.", code="bad_collection")
    collection = get_collection(session, int(raw))
    check_can_add(session, collection, user)
    return collection


def add_uploads(session: Session, user: User, collection: Collection | None, media: list[MediaEntry]) -> None:
    """Put ``user``'s new uploads at the end of ``collection``, in order, and commit."""
    if collection is None or not media:
        return
    for entry in media:
        add_item(session, user, collection, entry)
    session.commit()


def remove_item(session: Session, user: User, collection: Collection, media_id: int) -> None:
    """The owner (or an admin) removes anything; a collaborator what they added or what is theirs."""
    item = find_item(session, collection, media_id)
    if user.id != collection.owner_id and not user.is_admin:
        check_can_add(session, collection, user)  # 404 to those who may not see it, 403 to non-members
        if item is not None and visible(item.media, user) and user.id not in (item.added_by_id, item.media.owner_id):
            raise PermissionDenied("You can remove only the items you added.", code="not_your_item")
        if item is not None and not visible(item.media, user):
            item = None
    if item is None:
        raise NotFound("This item is not in the collection.", code="not_in_collection")
    if collection.cover_media_id == media_id:
        collection.cover_media_id = None
    session.delete(item)
    collection.updated = utcnow()


def reorder(session: Session, user: User, collection: Collection, media_ids: list[int],
            notes: dict[int, str] | None = None) -> None:
    """The owner puts the listed items first, in that order; the others keep their order after them.
    ``notes`` (media id -> note) changes notes at the same time (the arrange form)."""
    check_owner(session, collection, user)
    items = all_items(session, collection)
    by_media = {item.media_id: item for item in items}
    unknown = [m for m in media_ids if m not in by_media]
    if unknown or len(set(media_ids)) != len(media_ids):
        raise InvalidInput("List each item of the collection at most once.", code="bad_order")
    ordered = [by_media[m] for m in media_ids] + [item for item in items if item.media_id not in set(media_ids)]
    for position, item in enumerate(ordered):
        item.position = position
    for media_id, note in (notes or {}).items():
        if media_id in by_media:
            if len(note) > ITEM_NOTE_MAX:
                raise InvalidInput("A note has at most %(n)s characters.", code="note_too_long", n=ITEM_NOTE_MAX)
            by_media[media_id].note = note.replace("\x00", "").strip()
    collection.updated = utcnow()


def order_from_numbers(items: list[CollectionItem], numbers: dict[int, str]) -> list[int]:
    """The order the no-JavaScript form asks for: each item's typed position (a blank or bad number
    keeps its place), ties broken by the current order."""
    def wanted(index: int, item: CollectionItem) -> tuple[float, int]:
        raw = (numbers.get(item.media_id) or "").strip()
        try:
            return float(raw) if raw and len(raw) < 12 else float(index + 1), index
        except ValueError:
            return float(index + 1), index

    return [item.media_id for _, item in sorted(enumerate(items), key=lambda pair: wanted(*pair))]


# Collaborators ---------------------------------------------------------------------------------

def invite(session: Session, owner: User, collection: Collection, username: str) -> User:
    """The owner invites an existing person, who is told with an "invite" notification."""
    check_owner(session, collection, owner)
    invitee = get_user(session, (username or "").strip().lstrip("@"))
    if invitee.id == collection.owner_id:
        raise InvalidInput("You own this collection already.", code="own_collection")
    blocks.check_may_interact(session, owner, invitee.id, invitee.username, "invite")
    if invitee.id in collaborator_ids(session, collection):
        raise Conflict("%(name)s helps with this collection already.", code="already_collaborator",
                       name=invitee.username)
    if len(collaborator_ids(session, collection)) >= MAX_COLLABORATORS:
        raise InvalidInput("A collection has at most %(n)s collaborators.", code="too_many_collaborators",
                           n=MAX_COLLABORATORS)
    session.add(CollectionCollaborator(collection_id=collection.id, user_id=invitee.id))
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict("%(name)s helps with this collection already.", code="already_collaborator",
                       name=invitee.username) from exc
    notify(session, invitee, "invite", actor_id=owner.id, collection_id=collection.id)
    return invitee


def remove_collaborator(session: Session, user: User, collection: Collection, username: str) -> None:
    """The owner removes a collaborator, or a collaborator leaves. What they added stays."""
    target = get_user(session, username)
    if user.id != target.id:
        check_owner(session, collection, user)
    elif not may_see(session, collection, user):
        raise NotFound(NO_SUCH_COLLECTION)
    removed = session.execute(delete(CollectionCollaborator).where(
        CollectionCollaborator.collection_id == collection.id, CollectionCollaborator.user_id == target.id))
    if not removed.rowcount:  # type: ignore[attr-defined]
        raise NotFound("%(name)s does not help with this collection.", code="not_collaborator", name=target.username)
