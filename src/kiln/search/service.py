"""Searching: words and filters in, a keyset page of media out, only what the viewer may see.

Which items may appear is decided here, from each item's live state, exactly as listings decide it:
public, published and not removed, and not from anyone hidden from the viewer (blocks and mutes); a
logged-in person also finds their own unlisted and private items. The index (kiln.search.backends)
only says which items hold the words, so an item made private a moment ago is gone from every search
at once, whether or not its row has been rewritten yet.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Select, and_, or_, select
from sqlalchemy.orm import Session

from kiln.accounts.models import User
from kiln.errors import InvalidInput
from kiln.media import licenses
from kiln.media.models import MediaEntry, MediaState, Tag, media_tags
from kiln.media.services import GridPage
from kiln.search.text import Term, parse_query
from kiln.social import blocks

if TYPE_CHECKING:
    from kiln.runtime import Runtime

SORTS = ("relevance", "newest", "oldest", "favourites")
MAX_PER_PAGE = 100


def license_slug(lic: licenses.License) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", lic.english_abbreviation.lower()).strip("-")


LICENSE_SLUGS = {license_slug(lic): lic.url for lic in licenses.LICENSES}


@dataclass(frozen=True)
class Search:
    """What a person asked for, checked: ``q`` (words), filters, the order."""

    q: str = ""
    kind: str | None = None
    owner: str | None = None
    tag: str | None = None
    license: str | None = None  # a slug of LICENSE_SLUGS
    since: dt.date | None = None
    until: dt.date | None = None
    sort: str = "relevance"

    @property
    def terms(self) -> list[Term]:
        return parse_query(self.q)

    @property
    def asked(self) -> bool:
        """Whether there is anything to look for (words or a filter)."""
        return bool(self.terms) or any((self.kind, self.owner, self.tag, self.license, self.since, self.until))

    @property
    def order(self) -> str:
        """The order used: relevance needs words; without them, newest first."""
        return "newest" if self.sort == "relevance" and not self.terms else self.sort

    def params(self, **changes: Any) -> dict[str, str]:
        """The query parameters that ask for this search (for links: pages, feeds, other orders)."""
        chosen = replace(self, **changes) if changes else self
        values = {"q": chosen.q, "kind": chosen.kind, "owner": chosen.owner, "tag": chosen.tag,
                  "license": chosen.license, "since": chosen.since and chosen.since.isoformat(),
                  "until": chosen.until and chosen.until.isoformat(),
                  "sort": None if chosen.sort == "relevance" else chosen.sort}
        return {k: v for k, v in values.items() if v}


def _date(value: str | None) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput("Dates are written as year-month-day, such as 2026-12-31 (not “%(value)s”).",
                           code="bad_date", value=value.strip()[:40]) from None


def make_search(q: str | None = None, kind: str | None = None, owner: str | None = None, tag: str | None = None,
                license: str | None = None, since: str | None = None, until: str | None = None,
                sort: str | None = None) -> Search:
    """A Search from request parameters; a refusal that says what is wrong otherwise."""
    from kiln.mediatypes import kinds

    kind = (kind or "").strip() or None
    if kind is not None and kind not in kinds():
        raise InvalidInput("There is no kind of media called “%(kind)s”; choose one of %(kinds)s.",
                           code="bad_kind", kind=kind[:40], kinds=", ".join(sorted(kinds())))
    lic = (license or "").strip().lower() or None
    if lic is not None and lic not in LICENSE_SLUGS:
        raise InvalidInput("There is no licence called “%(license)s”; choose one of %(licenses)s.",
                           code="bad_license", license=lic[:60], licenses=", ".join(LICENSE_SLUGS))
    sort = (sort or "").strip() or "relevance"
    if sort not in SORTS:
        raise InvalidInput("Results can be sorted by %(sorts)s.", code="bad_sort", sorts=", ".join(SORTS))
    first, last = _date(since), _date(until)
    if first and last and first > last:
        raise InvalidInput("The “from” date is after the “to” date.", code="bad_dates")
    return Search(q=(q or "").strip()[:200], kind=kind, owner=(owner or "").strip().lower()[:30] or None,
                  tag=(tag or "").strip().lower()[:64] or None, license=lic, since=first, until=last, sort=sort)


# Finding -------------------------------------------------------------------------------------------

def _visible(session: Session, viewer: User | None) -> Select:
    shown = and_(MediaEntry.visibility == "public")
    if viewer is not None:
        shown = or_(MediaEntry.visibility == "public", MediaEntry.owner_id == viewer.id)
    query = select(MediaEntry.id).where(MediaEntry.state == MediaState.PROCESSED, MediaEntry.removed.is_(None), shown)
    return blocks.leave_out(session, viewer, query, MediaEntry.owner_id)


def _filtered(query: Select, search: Search) -> Select:
    if search.kind:
        query = query.where(MediaEntry.kind == search.kind)
    if search.owner:
        query = query.where(MediaEntry.owner_id == select(User.id).where(User.username == search.owner)
                            .scalar_subquery())
    if search.tag:
        query = query.where(MediaEntry.id.in_(select(media_tags.c.media_id).join(Tag, Tag.id == media_tags.c.tag_id)
                                              .where(Tag.slug == search.tag)))
    if search.license is not None:
        query = query.where(MediaEntry.license == LICENSE_SLUGS[search.license])
    if search.since:
        query = query.where(MediaEntry.published >= dt.datetime.combine(search.since, dt.time(), dt.UTC))
    if search.until:
        query = query.where(MediaEntry.published < dt.datetime.combine(search.until + dt.timedelta(days=1), dt.time(),
                                                                       dt.UTC))
    return query


_CURSOR = re.compile(r"(-?[0-9.e+-]{1,32})_([0-9]{1,10})", re.ASCII)


def _decode(cursor: str | None, order: str) -> tuple[float, int] | None:
    if not cursor:
        return None
    found = _CURSOR.fullmatch(cursor)
    try:
        if found is None:
            raise ValueError(cursor)
        value, media_id = float(found.group(1)), int(found.group(2))
        if value != value or abs(value) > 1e17 or not 0 < media_id < 2**31:
            raise ValueError(cursor)
    except ValueError as exc:
        raise InvalidInput("That page link is broken; start from the first page.", code="bad_cursor") from exc
    return value, media_id


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _encode(value: Any, media_id: int) -> str:
    """``VALUE_ID``: a score as Python writes a float (it reads back the same), a date as whole
    microseconds, a count as itself."""
    if isinstance(value, dt.datetime):
        value = (value if value.tzinfo else value.replace(tzinfo=dt.UTC)) - _EPOCH
        return f"{value // dt.timedelta(microseconds=1)}_{media_id}"
    if isinstance(value, int):
        return f"{value}_{media_id}"
    return f"{float(value)!r}_{media_id}"


def _key(order: str, score: ColumnElement[float] | None) -> tuple[Any, bool]:
    """The column pages are ordered by, and whether descending."""
    if order == "relevance" and score is not None:
        return score, True
    if order == "favourites":
        return MediaEntry.favourite_count, True
    return MediaEntry.published, order != "oldest"


def find(rt: Runtime, session: Session, viewer: User | None, search: Search, cursor: str | None = None,
         per_page: int = 24) -> GridPage:
    """One page of the items matching ``search`` that ``viewer`` may see, in the asked order."""
    from kiln.search.upkeep import backend

    if not search.asked:
        return GridPage(session, [], None)
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    order = search.order
    query = _filtered(_visible(session, viewer), search)
    score = None
    terms = search.terms
    if terms:
        query, score = backend(rt).matching(query, terms)
    column, descending = _key(order, score)
    after = _decode(cursor, order)
    if after is not None:
        value, media_id = after
        bound: Any = value
        if column is MediaEntry.published:
            try:
                bound = _EPOCH + dt.timedelta(microseconds=int(value))
            except OverflowError as exc:
                raise InvalidInput("That page link is broken; start from the first page.", code="bad_cursor") from exc
        elif column is MediaEntry.favourite_count:
            bound = int(value)
        if descending:
            query = query.where(or_(column < bound, and_(column == bound, MediaEntry.id < media_id)))
        else:
            query = query.where(or_(column > bound, and_(column == bound, MediaEntry.id > media_id)))
    key = column.label("page_key")  # selected once and ordered by its label: a score is computed once a row
    ordering = (key.desc(), MediaEntry.id.desc()) if descending else (key.asc(), MediaEntry.id.asc())
    rows = list(session.execute(query.add_columns(key).order_by(*ordering).limit(per_page + 1)))
    more = len(rows) > per_page
    rows = rows[:per_page]
    next_cursor = _encode(rows[-1][1], rows[-1][0]) if more and rows else None
    return GridPage(session, [row[0] for row in rows], next_cursor)


# Browsing ------------------------------------------------------------------------------------------

def most_favourited(session: Session, viewer: User | None, since: dt.datetime, limit: int) -> list[int]:
    """Public items most favourited since ``since`` (favourites made in that time), most first; ties
    go to the newer item. The same visibility rules as everything else (never an owner's own private
    items here: the page is the same for everyone)."""
    from sqlalchemy import func

    from kiln.social.models import Favourite

    recent = func.count(Favourite.user_id).label("recent")
    query = (select(MediaEntry.id, recent).join(Favourite, Favourite.media_id == MediaEntry.id)
             .where(Favourite.created >= since, MediaEntry.state == MediaState.PROCESSED,
                    MediaEntry.visibility == "public", MediaEntry.removed.is_(None))
             .group_by(MediaEntry.id).order_by(recent.desc(), MediaEntry.id.desc()).limit(limit))
    query = blocks.leave_out(session, viewer, query, MediaEntry.owner_id)
    return [media_id for media_id, _ in session.execute(query)]
