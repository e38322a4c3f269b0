"""Finding people for the admin pages and the admin API: search, filter by state and privilege, and
read one page at a time with what each person stores.

A page costs a fixed number of queries whatever its length (the people, their privileges, and two
sums of file sizes for the people on the page), never one per row; it is keyset-paginated on the id
(newest accounts first), so page 200 is as fast as page 1.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, exists, func, not_, or_, select
from sqlalchemy.orm import Session, selectinload

from kiln.accounts.models import PRIVILEGES, User, UserPrivilege, not_banned
from kiln.db.base import utcnow
from kiln.errors import InvalidInput
from kiln.i18n import N_
from kiln.media.models import MediaEntry, Rendition
from kiln.moderation import audit
from kiln.moderation.models import AuditEntry

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
SEARCH_MAX = 100


def _holds(privilege: str, now: dt.datetime) -> ColumnElement[bool]:
    """SQL for ``User.has(privilege)``."""
    return exists(select(UserPrivilege.id).where(
        UserPrivilege.user_id == User.id, UserPrivilege.name == privilege,
        or_(UserPrivilege.suspended_until.is_(None), UserPrivilege.suspended_until <= now)))


def _suspended(now: dt.datetime) -> ColumnElement[bool]:
    return exists(select(UserPrivilege.id).where(UserPrivilege.user_id == User.id,
                                                 UserPrivilege.suspended_until > now))


# The states a person can be filtered by: their label (marked here, translated where shown) and the SQL
# that picks them at a time. "suspended" people have had a privilege taken away for a time that has not
# ended; they may also be "active". "pending" people signed up in approval mode and wait for a
# moderator (kiln.accounts.signup): they cannot log in, so they are not "active" (they may also be
# "unverified").
STATES: dict[str, tuple[str, Callable[[dt.datetime], ColumnElement[bool]]]] = {
    "active": (N_("Active"),
               lambda now: _holds("active", now) & not_banned(now) & User.pending_approval.is_(False)),
    "unverified": (N_("E-mail not confirmed"), lambda now: ~_holds("active", now)),
    "banned": (N_("Banned"), lambda now: not_(not_banned(now))),
    "suspended": (N_("Privilege taken away"), _suspended),
    "pending": (N_("Waiting for approval"), lambda now: User.pending_approval.is_(True)),
}


@dataclass(frozen=True)
class PeopleFilter:
    """What the users page and API narrow the list by; every field optional."""

    text: str | None = None  # a part of the username (or of the e-mail address, with ``by_email``)
    state: str | None = None  # one of STATES
    privilege: str | None = None  # one of PRIVILEGES, held now
    by_email: bool = False  # whether ``text`` also searches e-mail addresses (administrators only)

    def check(self) -> None:
        if self.state and self.state not in STATES:
            raise InvalidInput("Unknown state '%(state)s'. Known: %(known)s.", code="bad_state", state=self.state,
                               known=", ".join(STATES))
        if self.privilege and self.privilege not in PRIVILEGES:
            raise InvalidInput("Unknown privilege '%(privilege)s'. Known: %(known)s.", code="bad_privilege",
                               privilege=self.privilege, known=", ".join(PRIVILEGES))
        if self.text and len(self.text) > SEARCH_MAX:
            raise InvalidInput("A search can have at most %(max)s characters.", code="search_too_long",
                               max=SEARCH_MAX)

    def apply(self, query: Select[User], now: dt.datetime | None = None) -> Select[User]:
        self.check()
        now = now or utcnow()
        text = (self.text or "").strip().lower()
        if text:
            pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            match: ColumnElement[bool] = func.lower(User.username).like(pattern, escape="\\")
            if self.by_email:
                match = match | func.lower(User.email).like(pattern, escape="\\")
            query = query.where(match)
        if self.state:
            query = query.where(STATES[self.state][1](now))
        if self.privilege:
            query = query.where(_holds(self.privilege, now))
        return query


@dataclass(frozen=True)
class Stored:
    """What a person keeps on the site: their media items and the bytes of their originals and
    renditions (thumbnails, web versions, captions, public originals)."""

    items: int = 0
    bytes: int = 0


@dataclass(frozen=True)
class PersonRow:
    user: User
    stored: Stored


@dataclass(frozen=True)
class PeoplePage:
    rows: list[PersonRow]
    next_before: int | None  # pass as ``before`` for the next page; None: this is the last


def storage_used(session: Session, user_ids: list[int]) -> dict[int, Stored]:
    """Two grouped sums for all of ``user_ids`` (the owner index and the renditions' media index)."""
    if not user_ids:
        return {}
    originals = session.execute(
        select(MediaEntry.owner_id, func.count(MediaEntry.id), func.coalesce(func.sum(MediaEntry.size_bytes), 0))
        .where(MediaEntry.owner_id.in_(user_ids)).group_by(MediaEntry.owner_id)).all()
    renditions = dict(session.execute(
        select(MediaEntry.owner_id, func.coalesce(func.sum(Rendition.size_bytes), 0))
        .join(Rendition, Rendition.media_id == MediaEntry.id)
        .where(MediaEntry.owner_id.in_(user_ids)).group_by(MediaEntry.owner_id)).all())
    return {owner: Stored(int(count), int(size) + int(renditions.get(owner, 0)))
            for owner, count, size in originals}


def page(session: Session, where: PeopleFilter, *, before: int | None = None,
         limit: int = PAGE_SIZE) -> PeoplePage:
    """Newest accounts first; ``before``: the ``next_before`` of the previous page."""
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    query = where.apply(select(User)).options(selectinload(User.privileges))
    if before is not None:
        query = query.where(User.id < before)
    users: list[User] = list(session.scalars(query.order_by(User.id.desc()).limit(limit + 1)))
    more = len(users) > limit
    users = users[:limit]
    stored = storage_used(session, [u.id for u in users])
    return PeoplePage([PersonRow(u, stored.get(u.id, Stored())) for u in users],
                      users[-1].id if more and users else None)


def about(session: Session, user: User, limit: int = 20) -> list[AuditEntry]:
    """The newest audit entries whose subject is ``user``."""
    return audit.page(session, audit.AuditFilter(target_type="user", target_id=user.id), limit=limit)


def subject_filter(session: Session, name: str) -> dict[str, object]:
    """The AuditFilter fields for "entries about the person called ``name``": by their id while the
    account exists, else by the name the entries kept (a deleted account)."""
    user_id = session.scalar(select(User.id).where(User.username == name.strip().lower()))
    if user_id is not None:
        return {"target_type": "user", "target_id": user_id}
    return {"target_type": "user", "target_label": name.strip().lower()}
