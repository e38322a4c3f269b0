"""Blocks and mutes: what one person does so as not to deal with another.

**Block.** When A blocks B, B (logged in) cannot see A's media, collections or profile (every page,
file and API answer is 404, as for something that does not exist), and A's items are left out of
every listing B sees (front page, tag pages, timeline, collections, API listings) as are A's comments
on others' media. Neither can comment on, favourite or follow the other, reply to the other's
comments, or invite the other to a collection: each refusal says why (403). The follows between them,
both ways, end at once, and so does either helping with the other's collections. A block also hides
B's media and comments from A, as a mute does; A still reaches B's profile, to unblock.

**Mute.** When A mutes B, B's media and comments are left out of what A sees (listings, the
timeline, comment threads on others' media); B notices nothing and may still interact. A still
reaches B's profile and items by their links.

Admins are never hidden from: a block does not stop moderation (their own blocks and mutes
apply to what they see).

**Speed.** ``User.hiding`` counts the rows that change what a person sees (their blocks and mutes,
and blocks of them). A viewer whose count is 0 (nearly everyone) pays nothing: no query, and the
pages' shared bodies and kept fragments (kiln.web.fragments) stay theirs. For the others the sets
below are read once per request (one query) and the media page is made for them alone. The count may
stay above 0 after the other account is deleted (its rows go by cascade): that only costs the one
query.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import ColumnElement, Select, delete, literal, or_, select, union_all
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import QueryableAttribute, Session, object_session

from kiln.accounts.models import User
from kiln.accounts.services import get_user
from kiln.errors import InvalidInput, NotFound, PermissionDenied
from kiln.i18n import N_
from kiln.social.models import BLOCK_KINDS, Collection, CollectionCollaborator, Follow, UserBlock

_CACHE = "kiln.blocks"
AnySelect = TypeVar("AnySelect", bound=Select)

# What a blocked person is told when they try, by action; code "blocked".
REFUSALS = {
    "comment": N_("You cannot comment on %(name)s's media: they have blocked you."),
    "reply": N_("You cannot reply to %(name)s: they have blocked you."),
    "favourite": N_("You cannot favourite %(name)s's media: they have blocked you."),
    "follow": N_("You cannot follow %(name)s: they have blocked you."),
    "invite": N_("You cannot invite %(name)s: they have blocked you."),
}
# What the blocker is told; code "you_blocked".
YOU_BLOCKED = N_("You have blocked %(name)s: unblock them first.")


@dataclass(frozen=True)
class Hidden:
    """What is kept from one viewer: ``blockers`` (who blocked them: their things answer 404) and
    ``people`` (whose media and comments are left out of what they see: blockers, the blocked, the muted)."""

    blockers: frozenset[int] = frozenset()
    people: frozenset[int] = frozenset()
    # For refusing what two people do to each other (admins too): whom they block, who blocks them.
    blocking: frozenset[int] = frozenset()
    blocked_by: frozenset[int] = frozenset()


NOTHING = Hidden()


def hidden(session: Session | None, viewer: User | None) -> Hidden:
    """What is kept from ``viewer``: nothing, without a query, for anonymous visitors and people with
    no block or mute; otherwise one query, kept for the rest of the session's request. An admin's own
    blocks and mutes apply to what they see, but nobody's block hides anything from an admin."""
    if viewer is None or not viewer.hiding:
        return NOTHING
    session = session or object_session(viewer)
    if session is None:
        return NOTHING
    cache = session.info.setdefault(_CACHE, {})
    found = cache.get(viewer.id)
    if found is None:
        theirs = select(UserBlock.target_id, UserBlock.kind, literal(False)).where(UserBlock.user_id == viewer.id)
        of_them = (select(UserBlock.user_id, UserBlock.kind, literal(True))
                   .where(UserBlock.target_id == viewer.id, UserBlock.kind == "block"))
        own: set[int] = set()  # whom they block or mute
        blocking: set[int] = set()
        blocked_by: set[int] = set()
        for person, kind, blocks_them in session.execute(union_all(theirs, of_them)):
            if blocks_them:
                blocked_by.add(person)
            else:
                own.add(person)
                if kind == "block":
                    blocking.add(person)
        # Moderation sees everything: a block of an admin hides nothing from them.
        blockers = set() if viewer.is_admin else blocked_by
        found = cache[viewer.id] = Hidden(frozenset(blockers), frozenset(own | blockers), frozenset(blocking),
                                          frozenset(blocked_by))
    return found


def blocks_viewer(owner_id: int, viewer: User | None, session: Session | None = None) -> bool:
    """Whether ``owner_id`` has blocked ``viewer``, so that everything of theirs is 404 to the viewer
    (``kiln.media.visibility.visible`` asks this). No query when the viewer has no block at all."""
    if viewer is None or not viewer.hiding or viewer.id == owner_id:
        return False
    return owner_id in hidden(session, viewer).blockers


def get_person(session: Session, username: str, viewer: User | None) -> User:
    """``accounts.get_user``, except that to someone the person blocked they do not exist (404, the same
    answer as for a name nobody has)."""
    person = get_user(session, username)
    if blocks_viewer(person.id, viewer, session):
        raise NotFound("There is no user named '%(name)s'.", name=username)
    return person


def leave_out(session: Session | None, viewer: User | None, query: AnySelect,
              column: ColumnElement[int] | QueryableAttribute[int]) -> AnySelect:
    """``query`` without the rows whose ``column`` (an owner's or author's id) is someone hidden from
    ``viewer``; unchanged (the same query, the same kept fragments) for everyone else."""
    people = hidden(session, viewer).people
    if not people:
        return query
    return query.where(column.not_in(sorted(people)))


def check_may_interact(session: Session, actor: User, other_id: int, other_name: str, action: str) -> None:
    """Refuse (403) ``action`` (comment, reply, favourite, follow, invite) between two people when one
    has blocked the other. No query when the actor has no block at all; else the request's one."""
    if not actor.hiding or actor.id == other_id:
        return
    found = hidden(session, actor)
    if other_id in found.blocking:
        raise PermissionDenied(YOU_BLOCKED, code="you_blocked", name=other_name)
    if other_id in found.blocked_by:
        raise PermissionDenied(REFUSALS[action], code="blocked", name=other_name)


# Changing -------------------------------------------------------------------------------------------

def _forget(session: Session) -> None:
    session.info.pop(_CACHE, None)


def _count(people: list[User], delta: int) -> None:
    """An SQL increment on each person's row (two blocks at once both count). Set on the objects, not
    by a bulk UPDATE: the change counter then sees that only ``hiding`` changed, which no kept page
    shows, and leaves every cache as it is."""
    for person in people:
        person.hiding = User.hiding + delta


def _affected(user: User, target: User, kind: str) -> list[User]:
    """Whose view a row changes: a mute the muter's; a block both people's."""
    return [user, target] if kind == "block" else [user]


def add(session: Session, user: User, target: User, kind: str) -> bool:
    """``user`` blocks or mutes ``target`` (again: nothing changes). True when it is new. A block ends
    the follows between them, both ways, and either helping with the other's collections. The caller
    commits."""
    if kind not in BLOCK_KINDS:
        raise InvalidInput("Choose block or mute.", code="bad_kind")
    if user.id == target.id:
        raise InvalidInput("You cannot block or mute yourself.", code="block_self")
    if session.get(UserBlock, (user.id, target.id, kind)) is not None:
        return False
    try:
        with session.begin_nested():  # two clicks at once: the primary key settles it
            session.add(UserBlock(user_id=user.id, target_id=target.id, kind=kind))
    except IntegrityError:
        return False
    _count(_affected(user, target, kind), +1)
    if kind == "block":
        _part(session, user.id, target.id)
    session.flush()
    _forget(session)
    return True


def remove(session: Session, user: User, target: User, kind: str) -> bool:
    """Undo a block or a mute (none: nothing changes). True when one was removed. The caller commits."""
    if kind not in BLOCK_KINDS:
        raise InvalidInput("Choose block or mute.", code="bad_kind")
    gone = session.execute(delete(UserBlock).where(UserBlock.user_id == user.id, UserBlock.target_id == target.id,
                                                   UserBlock.kind == kind))
    if not gone.rowcount:  # type: ignore[attr-defined]
        return False
    _count(_affected(user, target, kind), -1)
    session.flush()
    _forget(session)
    return True


def _part(session: Session, a: int, b: int) -> None:
    """End the follows between ``a`` and ``b`` and each helping with the other's collections."""
    session.execute(delete(Follow).where(or_((Follow.follower_id == a) & (Follow.followee_id == b),
                                             (Follow.follower_id == b) & (Follow.followee_id == a))))
    for owner, helper in ((a, b), (b, a)):
        owned = select(Collection.id).where(Collection.owner_id == owner)
        session.execute(delete(CollectionCollaborator).where(CollectionCollaborator.user_id == helper,
                                                             CollectionCollaborator.collection_id.in_(owned)))


# Reading --------------------------------------------------------------------------------------------

def state(session: Session, user: User | None, target: User) -> set[str]:
    """Which of block and mute ``user`` has on ``target`` (the profile's buttons)."""
    if user is None or not user.hiding or user.id == target.id:
        return set()
    return set(session.scalars(select(UserBlock.kind).where(UserBlock.user_id == user.id,
                                                            UserBlock.target_id == target.id)))


def listing(session: Session, user: User) -> dict[str, list[UserBlock]]:
    """``user``'s blocks and mutes, newest first, by kind."""
    out: dict[str, list[UserBlock]] = {kind: [] for kind in BLOCK_KINDS}
    if not user.hiding:
        return out
    rows = session.scalars(select(UserBlock).where(UserBlock.user_id == user.id)
                           .order_by(UserBlock.created.desc())).unique()
    for row in rows:
        out[row.kind].append(row)
    return out
