"""Favourites: anyone logged in marks an item they may see; its owner hears of it (once: favouriting
again after taking it back, while the first notification is unread, tells nobody anything new).

``MediaEntry.favourite_count`` is kept in step by an SQL increment in the same transaction as the
row, so two people favouriting at once both count; ``media.updated`` is left as it was. Both
operations are idempotent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, delete, exists, or_, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from kiln.accounts.models import User
from kiln.db.base import recall, remember, rowcount
from kiln.errors import NotAuthenticated, NotFound, PermissionDenied
from kiln.media import services as media_service
from kiln.media.models import MediaEntry, MediaState
from kiln.media.visibility import visible
from kiln.social import blocks
from kiln.social.models import Favourite, Notification
from kiln.social.notify import notify

PER_PAGE = 30


def _check(media: MediaEntry, user: User | None) -> User:
    if user is None:
        raise NotAuthenticated("Log in to keep favourites.")
    if user.banned_now:
        raise PermissionDenied("This account is banned.", code="banned")
    if not visible(media, user):
        raise NotFound("There is no such media. It may have been deleted.")
    return user


def _count(session: Session, media_id: int, delta: int) -> None:
    # updated=updated: the column's onupdate would otherwise stamp the item as edited.
    session.execute(update(MediaEntry).where(MediaEntry.id == media_id)
                    .values(favourite_count=MediaEntry.favourite_count + delta, updated=MediaEntry.updated))


def favourite(session: Session, user: User | None, media: MediaEntry) -> bool:
    """Mark ``media`` as a favourite of ``user``; True when it was not one before. Commits."""
    user = _check(media, user)
    blocks.check_may_interact(session, user, media.owner_id, media.owner.username, "favourite")
    dialect_insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    added = session.execute(dialect_insert(Favourite).values(user_id=user.id, media_id=media.id)
                            .on_conflict_do_nothing().returning(Favourite.media_id)).first() is not None
    if added:
        _count(session, media.id, +1)
        told = session.scalar(select(Notification.id).where(
            Notification.user_id == media.owner_id, Notification.type == "favourite",
            Notification.actor_id == user.id, Notification.media_id == media.id, Notification.read.is_(None)))
        if told is None:
            notify(session, media.owner, "favourite", actor_id=user.id, media_id=media.id)
    session.commit()
    return added


def unfavourite(session: Session, user: User | None, media: MediaEntry) -> bool:
    """Take the favourite back; True when it was one. Commits."""
    user = _check(media, user)
    removed = rowcount(session.execute(delete(Favourite).where(Favourite.user_id == user.id,
                                                               Favourite.media_id == media.id))) > 0
    if removed:
        _count(session, media.id, -1)
    session.commit()
    return removed


def is_favourite(session: Session, user: User | None, media: MediaEntry) -> bool:
    if user is None:
        return False
    known = recall(session, _KNOWN, (user.id, media.id))
    if known is not None:
        return bool(known)
    return session.execute(_IS_FAVOURITE, {"user_id": user.id, "media_id": media.id}).first() is not None


def favourited_with(media_id: Any) -> Any:
    """Whether the viewer (the parameter ``viewer``) favourited the item ``media_id`` (a column): a
    column for the media page to read with the item, ``remember_favourited`` then keeps it for ``is_favourite``."""
    return exists().where(Favourite.user_id == bindparam("viewer"), Favourite.media_id == media_id)


def remember_favourited(session: Session, user_id: int, media_id: int, favourited: bool) -> None:
    remember(session, _KNOWN, (user_id, media_id), favourited)


_KNOWN = "kiln_favourited"


# Built once: every logged-in media page asks it (an ORM get of a missing row costs several times more).
_IS_FAVOURITE = select(Favourite.user_id).where(Favourite.user_id == bindparam("user_id"),
                                                Favourite.media_id == bindparam("media_id"))


def favourited_ids(session: Session, user: User | None, media_ids: Iterable[int]) -> set[int]:
    """Which of ``media_ids`` ``user`` has favourited, in one query (for lists)."""
    ids = list(media_ids)
    if user is None or not ids:
        return set()
    return set(session.scalars(select(Favourite.media_id).where(Favourite.user_id == user.id,
                                                                 Favourite.media_id.in_(ids))))


# Keyset pages: newest favourite first, cursors as media_service writes them ---------------------------
def encode_cursor(when: dt.datetime, row_id: int) -> str:
    return f"{int(when.timestamp() * 1_000_000)}-{row_id}"


def _after(cursor: str | None, key_id: Any) -> ColumnElement[bool] | None:
    after = media_service.decode_cursor(cursor)
    if after is None:
        return None
    when, row_id = after
    return or_(Favourite.created < when, and_(Favourite.created == when, key_id < row_id))


@dataclass
class FavouritesPage:
    items: list[MediaEntry]
    next_cursor: str | None


def _may_see(user: User) -> ColumnElement[bool]:
    """SQL for ``visibility.visible`` (keep the two in step)."""
    if user.is_admin:
        return true()
    return and_(MediaEntry.removed.is_(None),
                or_(and_(MediaEntry.state == MediaState.PROCESSED.value, MediaEntry.visibility != "private"),
                    MediaEntry.owner_id == user.id))


def favourites_of(session: Session, user: User, cursor: str | None, per_page: int = PER_PAGE) -> FavouritesPage:
    """``user``'s favourites that they may still see, the newest favourite first."""
    query = (select(MediaEntry, Favourite.created).join(Favourite, Favourite.media_id == MediaEntry.id)
             .where(Favourite.user_id == user.id, _may_see(user)))
    query = blocks.leave_out(session, user, query, MediaEntry.owner_id)  # people hidden from them (blocks)
    condition = _after(cursor, Favourite.media_id)
    if condition is not None:
        query = query.where(condition)
    rows = session.execute(query.order_by(Favourite.created.desc(), Favourite.media_id.desc())
                           .limit(per_page + 1)).unique().all()
    items = [row[0] for row in rows[:per_page]]
    more = len(rows) > per_page
    return FavouritesPage(items, encode_cursor(rows[per_page - 1][1], items[-1].id) if more else None)


@dataclass
class FansPage:
    people: list[tuple[User, dt.datetime]]
    next_cursor: str | None


def check_may_list_fans(media: MediaEntry, user: User | None) -> None:
    """Who favourited an item is for its owner and admins: 404 to those who may not see the item,
    403 to others."""
    if user is None:
        raise NotAuthenticated("Log in first.")
    if not visible(media, user):
        raise NotFound("There is no such media. It may have been deleted.")
    if user.id != media.owner_id and not user.is_admin:
        raise PermissionDenied("Only the owner of this item can see who favourited it.", code="not_owner")


def fans(session: Session, user: User | None, media: MediaEntry, cursor: str | None,
         per_page: int = PER_PAGE) -> FansPage:
    """The people who favourited ``media``, the newest first."""
    check_may_list_fans(media, user)
    query = (select(User, Favourite.created).join(Favourite, Favourite.user_id == User.id)
             .where(Favourite.media_id == media.id))
    condition = _after(cursor, Favourite.user_id)
    if condition is not None:
        query = query.where(condition)
    rows = session.execute(query.order_by(Favourite.created.desc(), Favourite.user_id.desc())
                           .limit(per_page + 1)).unique().all()
    people = [(row[0], row[1]) for row in rows[:per_page]]
    more = len(rows) > per_page
    return FansPage(people, encode_cursor(people[-1][1], people[-1][0].id) if more else None)
