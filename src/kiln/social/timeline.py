"""The logged-in reader's Following timeline: new public items of the local accounts they follow and
the posts of the accounts they follow elsewhere (kiln.federation.posts), interleaved, newest first.

Each page costs the same few queries however deep it is: one query holding a keyset read per source
(each from where the previous page left it, ``published, id`` descending, one more row than a page,
joined by ``UNION ALL``), merged here; the posts a page shows, with their attachments, load only when it
shows some. The cursor carries both places: ``LOCAL~REMOTE``, each ``MICROSECONDS-ID`` as media cursors
are (an empty half: that source has not been read from yet).
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, Select, bindparam, literal, select, tuple_, union_all
from sqlalchemy.orm import Session

from kiln.accounts.models import User
from kiln.errors import InvalidInput
from kiln.federation.models import RemoteActor, RemoteBlock, RemotePost
from kiln.media import services as media_service
from kiln.media.models import MediaEntry
from kiln.social import blocks, follows
from kiln.social.models import Follow

CURSOR_MAX = 64


@dataclass
class Entry:
    """One line of the timeline: a local item (by id: its row loads only when the page is drawn
    without the fragment cache, kiln.media.services.GridPage) or a post from elsewhere."""

    published: dt.datetime
    media_id: int | None = None
    post: RemotePost | None = None


@dataclass
class TimelinePage:
    entries: list[Entry]
    next_cursor: str | None
    local: media_service.GridPage  # the page's local items, as the gallery grid takes them

    @property
    def posts(self) -> list[RemotePost]:
        return [e.post for e in self.entries if e.post is not None]

    @property
    def media(self) -> list[MediaEntry]:
        return self.local.items

    def media_by_id(self) -> dict[int, MediaEntry]:
        return {m.id: m for m in self.local.items}


def remote_query(user_id: int) -> Select[RemotePost]:
    """Posts of the accounts elsewhere ``user_id`` follows (their follow accepted), but for accounts
    they block."""
    blocked = select(RemoteBlock.actor_id).where(RemoteBlock.user_id == user_id, RemoteBlock.actor_id == RemoteActor.id)
    return (select(RemotePost).join(RemoteActor, RemoteActor.id == RemotePost.actor_id)
            .join(Follow, Follow.followee_uri == RemoteActor.uri)
            .where(Follow.follower_id == user_id, Follow.accepted.is_(True), ~blocked.exists()))


def _split(cursor: str | None) -> tuple[str | None, str | None]:
    if not cursor:
        return None, None
    if len(cursor) > CURSOR_MAX or cursor.count("~") > 1:
        raise InvalidInput("That page link is broken; start from the first page.", code="bad_cursor")
    if "~" not in cursor:  # a link from before posts from elsewhere were shown: both from there
        return cursor, cursor
    local, remote = cursor.split("~")
    return local or None, remote or None


def _cursor(when: dt.datetime, row_id: int) -> str:
    return f"{int(when.timestamp() * 1_000_000)}-{row_id}"


def page(session: Session, user: User, cursor: str | None, per_page: int) -> TimelinePage:
    """One page, newest first: each source read from where the cursor left it (one more row than a
    page), both in one query (``UNION ALL`` of the two keyset reads, as ``published, source, id``),
    merged by time here. Local items come as ids (the gallery grid loads their rows only when the
    page is drawn without the fragment cache); posts from elsewhere load only when the page shows some."""
    local_at, remote_at = _split(cursor)
    local_after = media_service.decode_cursor(local_at)
    remote_after = media_service.decode_cursor(remote_at)
    people = tuple(sorted(blocks.hidden(session, user).people))
    # Posts from elsewhere are read only for someone who follows anyone elsewhere (the login says): for
    # everyone else the page is one keyset read, quicker for PostgreSQL to plan than the UNION.
    shape = (local_after is not None, remote_after is not None, per_page, follows.maybe_elsewhere(session, user.id))
    statement = _statement(*shape, people) if people else _kept_statement(*shape)
    values: dict[str, Any] = {"viewer": user.id}
    if local_after is not None:
        values.update(local_when=local_after[0], local_id=local_after[1])
    if remote_after is not None:
        values.update(remote_when=remote_after[0], remote_id=remote_after[1])
    rows = session.execute(statement, values).all()
    merged = sorted(((_aware(when), source, row_id) for when, source, row_id in rows if when is not None),
                    key=lambda row: (row[0], row[1] == LOCAL, row[2]), reverse=True)
    shown = merged[:per_page]
    wanted = [row_id for _, source, row_id in shown if source == REMOTE]
    posts = {post.id: post for post in session.scalars(select(RemotePost).where(RemotePost.id.in_(wanted)))} \
        if wanted else {}
    entries = [Entry(published, media_id=row_id) if source == LOCAL else Entry(published, post=posts[row_id])
               for published, source, row_id in shown if source == LOCAL or row_id in posts]
    next_cursor = None
    if len(merged) > per_page:
        last_local = next(((p, i) for p, source, i in reversed(shown) if source == LOCAL), None)
        last_remote = next(((p, i) for p, source, i in reversed(shown) if source == REMOTE), None)
        local_next = _cursor(*last_local) if last_local else local_at
        remote_next = _cursor(*last_remote) if last_remote else remote_at
        next_cursor = f"{local_next or ''}~{remote_next or ''}"
    ids = [e.media_id for e in entries if e.media_id is not None]
    return TimelinePage(entries, next_cursor, media_service.GridPage(session, ids, next_cursor))


LOCAL, REMOTE = 0, 1  # the ``source`` column of the page's query


def _statement(local_after: bool, remote_after: bool, per_page: int, elsewhere: bool,
               people: tuple[int, ...]) -> Any:
    """The page's query for one shape (which sources continue from a cursor, whether posts from
    elsewhere are read at all), the viewer and the cursors as parameters. ``people``: those hidden from
    the viewer, left out (kiln.social.blocks)."""
    viewer = bindparam("viewer", type_=Integer)
    local_query = follows.timeline_query(viewer)  # type: ignore[arg-type]
    if people:
        local_query = local_query.where(MediaEntry.owner_id.not_in(people))
    if local_after:
        local_query = local_query.where(tuple_(MediaEntry.published, MediaEntry.id) < tuple_(
            bindparam("local_when", type_=MediaEntry.published.type), bindparam("local_id", type_=Integer)))
    remote_query_ = remote_query(viewer)  # type: ignore[arg-type]
    if remote_after:
        remote_query_ = remote_query_.where(tuple_(RemotePost.published, RemotePost.id) < tuple_(
            bindparam("remote_when", type_=RemotePost.published.type), bindparam("remote_id", type_=Integer)))
    local = (local_query.with_only_columns(MediaEntry.published, literal(LOCAL).label("source"),
                                           MediaEntry.id.label("row_id"))
             .order_by(MediaEntry.published.desc(), MediaEntry.id.desc()).limit(per_page + 1).subquery())
    remote = (remote_query_.with_only_columns(RemotePost.published, literal(REMOTE).label("source"),
                                              RemotePost.id.label("row_id"))
              .order_by(RemotePost.published.desc(), RemotePost.id.desc()).limit(per_page + 1).subquery())
    return union_all(select(local), select(remote)) if elsewhere else select(local)


# Built once per shape for the viewers who hide nobody (nearly all): building the statement and its
# cache key cost more than the query itself.
_kept_statement = functools.lru_cache(maxsize=16)(functools.partial(_statement, people=()))


def _aware(moment: dt.datetime) -> dt.datetime:
    """A time read back from a UNION (SQLite gives it without its zone) comparable with any other."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)
