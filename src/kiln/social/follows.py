"""Following people, and the "Following" timeline.

A follow names its follower by local account (``follower_id``) or by an address elsewhere
(``follower_uri``), and its followee by local account (``followee_id``) or, when a local account follows
someone elsewhere (kiln.federation.following), by that actor's address (``followee_uri``): every
function here reads a follow as just a row, so a remote follower is one more row in the followers list,
and a remote account followed one more row in the following list, and each counts like any other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kiln.accounts.models import User, not_banned
from kiln.db.base import recall, remember
from kiln.errors import InvalidInput, PermissionDenied
from kiln.media.models import MediaEntry, MediaState
from kiln.social import blocks
from kiln.social.models import Collection, Follow
from kiln.social.notify import notify

_CURSOR = re.compile(r"[0-9]{1,10}", re.ASCII)
MAX_ID = 2**31 - 1


def follow(session: Session, follower: User, followee: User) -> bool:
    """``follower`` follows ``followee`` (again: nothing changes). True when this is a new follow;
    the followee hears of it (a "follow" notification). The caller commits."""
    if follower.id == followee.id:
        raise InvalidInput("You cannot follow yourself.", code="follow_self")
    if not follower.is_active:  # as for comments: a follow notifies someone, so the address must be real
        raise PermissionDenied("Confirm your email address before you follow people.", code="not_verified")
    blocks.check_may_interact(session, follower, followee.id, followee.username, "follow")
    if is_following(session, follower.id, followee.id):
        return False
    try:
        with session.begin_nested():  # two clicks at once: the unique constraint settles it
            session.add(Follow(followee_id=followee.id, follower_id=follower.id))
    except IntegrityError:
        return False
    notify(session, followee, "follow", actor_id=follower.id)
    return True


def unfollow(session: Session, follower: User, followee: User) -> bool:
    """Stop following (not following already: nothing changes). True when a follow was removed."""
    row = session.scalar(select(Follow).where(Follow.followee_id == followee.id,
                                              Follow.follower_id == follower.id))
    if row is None:
        return False
    session.delete(row)
    return True


def is_following(session: Session, follower_id: int | None, followee_id: int) -> bool:
    if follower_id is None:
        return False
    return session.scalar(select(Follow.id).where(Follow.followee_id == followee_id,
                                                  Follow.follower_id == follower_id)) is not None


@dataclass
class Person:
    """One entry of a followers or following list: a local account, or a remote address."""

    user: User | None
    uri: str | None
    # A remote follower as people write it elsewhere (@name@host) and its profile page, once Kiln has
    # fetched its actor (kiln.federation); None before that.
    handle: str | None = None
    profile_url: str | None = None
    # A follow of someone elsewhere still waiting for their server's Accept.
    pending: bool = False


@dataclass
class PeoplePage:
    people: list[Person]
    next_cursor: str | None


def _after(cursor: str | None) -> int | None:
    if not cursor:
        return None
    if not _CURSOR.fullmatch(cursor) or not 0 < int(cursor) <= MAX_ID:
        raise InvalidInput("That page link is broken; start from the first page.", code="bad_cursor")
    return int(cursor)


def _people(session: Session, query: Select[Follow, User], cursor: str | None,
            per_page: int, remote_side: str = "follower_uri") -> PeoplePage:
    """Newest follow first, keyset-paginated by the follow's id."""
    after = _after(cursor)
    if after is not None:
        query = query.where(Follow.id < after)
    rows = list(session.execute(query.order_by(Follow.id.desc()).limit(per_page + 1)))
    more = len(rows) > per_page
    rows = rows[:per_page]
    people = [Person(user, getattr(row, remote_side) if user is None else None, pending=not row.accepted)
              for row, user in rows]
    _name_remote(session, people)
    return PeoplePage(people, str(rows[-1][0].id) if more and rows else None)


def _name_remote(session: Session, people: list[Person]) -> None:
    """Fill in the handles of remote followers Kiln knows (one query, only when the page has any)."""
    uris = [p.uri for p in people if p.uri]
    if not uris:
        return
    from kiln.federation.models import RemoteActor

    known = {row.uri: row for row in session.scalars(select(RemoteActor).where(RemoteActor.uri.in_(uris)))}
    for person in people:
        row = known.get(person.uri or "")
        if row is not None:
            person.handle, person.profile_url = row.handle, row.profile_url or row.uri


def followers(session: Session, user: User, cursor: str | None, per_page: int) -> PeoplePage:
    """Who follows ``user``: local accounts and remote addresses alike."""
    query = (select(Follow, User).outerjoin(User, User.id == Follow.follower_id)
             .where(Follow.followee_id == user.id, (User.id.is_(None)) | not_banned()))
    return _people(session, query, cursor, per_page)


def following(session: Session, user: User, cursor: str | None, per_page: int,
              pending: bool = False) -> PeoplePage:
    """Whom ``user`` follows: local accounts and accounts elsewhere alike (``pending``: with the follows
    of accounts elsewhere still waiting for their Accept, which only the follower sees)."""
    query = (select(Follow, User).outerjoin(User, User.id == Follow.followee_id)
             .where(Follow.follower_id == user.id, (User.id.is_(None)) | not_banned()))
    if not pending:
        query = query.where(Follow.accepted.is_(True))
    return _people(session, query, cursor, per_page, remote_side="followee_uri")


def timeline_query(follower_id: int) -> Select[MediaEntry]:
    """New public, processed media of the people ``follower_id`` follows (never unlisted or private):
    page it with ``media.services.page``. The (followee, follower) pair is unique, so the join never
    repeats an item. Measured on 10,000 items by 500 people (docs/social.md): the planners walk
    ix_media_state_published newest first, probing the follows index per item, or, with statistics
    that favour it, each followee's ix_media_owner_state_published; never a scan of media."""
    return (select(MediaEntry).join(Follow, Follow.followee_id == MediaEntry.owner_id)
            .where(Follow.follower_id == follower_id, MediaEntry.state == MediaState.PROCESSED,
                   MediaEntry.visibility == "public", MediaEntry.removed.is_(None)))


_ELSEWHERE = "kiln_follows_elsewhere"


def elsewhere_with(user_id: Any) -> Any:
    """Whether the person follows, or asked to follow, anyone on another server: a column correlated
    with ``user_id`` (a column), for the login query to fetch with the person."""
    return exists().where(Follow.follower_id == user_id, Follow.followee_uri.is_not(None))


def remember_elsewhere(session: Session, user_id: int, value: bool) -> None:
    remember(session, _ELSEWHERE, user_id, value)


def maybe_elsewhere(session: Session, user_id: int) -> bool:
    """False when the login told that ``user_id`` follows nobody elsewhere; True otherwise (not
    known: the caller reads posts from elsewhere too, which finds what there is)."""
    return bool(recall(session, _ELSEWHERE, user_id, True))


@dataclass
class Counts:
    media: int
    collections: int
    followers: int
    following: int


def counts(session: Session, user: User) -> Counts:
    """A profile's four numbers, in one query (each an indexed count)."""
    media = (select(func.count()).select_from(MediaEntry)
             .where(MediaEntry.owner_id == user.id, MediaEntry.state == MediaState.PROCESSED,
                    MediaEntry.visibility == "public", MediaEntry.removed.is_(None)).scalar_subquery())
    collections = (select(func.count()).select_from(Collection)
                   .where(Collection.owner_id == user.id, Collection.visibility == "public",
                          Collection.removed.is_(None)).scalar_subquery())
    fans = select(func.count()).select_from(Follow).where(Follow.followee_id == user.id).scalar_subquery()
    idols = (select(func.count()).select_from(Follow)
             .where(Follow.follower_id == user.id, Follow.accepted.is_(True)).scalar_subquery())
    row = session.execute(select(media, collections, fans, idols)).one()
    return Counts(*(int(n) for n in row))
