"""Local accounts following accounts on other servers.

A follow of ``@name@host`` (or an actor's address) is a ``follows`` row whose followee is the remote
actor (``followee_uri``) and which waits (``accepted`` false) until the other server answers the signed
``Follow`` Kiln sends: ``Accept`` makes it active, ``Reject`` removes it. Unfollowing removes the row
and sends ``Undo{Follow}``. Both activities go through the outbox after the commit
(kiln.federation.delivery), never from inside a transaction; the actor is looked up (WebFinger, then
its document, kiln.federation.remote) before any transaction opens.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kiln.accounts.models import User
from kiln.errors import InvalidInput, KilnError, NotFound, PermissionDenied
from kiln.federation import actors, delivery, fetch, moderation, remote
from kiln.federation.models import URI_MAX, InboxActivity, RemoteActor
from kiln.social import follows
from kiln.social.models import Follow

if TYPE_CHECKING:
    from kiln.runtime import Runtime

ACCOUNT_MAX = 300


class CannotFollow(KilnError):
    code = "cannot_follow"
    status = 422


def _host_named(rt: Runtime, text: str) -> str:
    value = text.strip()
    if "://" in value:
        return moderation.host_of(value)
    return fetch.normal_host(value.lstrip("@").partition("@")[2])


def _local_name(rt: Runtime, text: str) -> str | None:
    """The username when ``text`` names an account of this very site (``@name@this.host`` or its address)."""
    value = text.strip()
    if "://" in value:
        return actors.username_of(rt.settings, value)
    name, _, host = value.lstrip("@").partition("@")
    return name if name and host.lower() == actors.host(rt.settings).lower() else None


def resolve(rt: Runtime, text: str) -> remote.Actor:
    """The remote account ``text`` names (``@name@host`` or an address), fetched and kept; refused
    (DomainBlocked) on a blocked server before anything is fetched from it."""
    value = (text or "").strip()
    if not value or len(value) > ACCOUNT_MAX:
        raise InvalidInput("Write an account as @name@host or give its address.", code="bad_account")
    with rt.sessions() as session:
        if moderation.rule_for(session, f"https://{_host_named(rt, value)}/") == "block":
            raise moderation.DomainBlocked("This site does not follow accounts on %(host)s.",
                                           host=_host_named(rt, value)[:200])
    try:
        found = remote.lookup(rt, value)
    except KilnError as exc:
        raise CannotFollow("Kiln could not find %(who)s: %(reason)s", who=value[:200], reason=exc.message) from exc
    with rt.sessions() as session:
        if moderation.rule_for(session, found.uri) == "block":
            raise moderation.DomainBlocked("This site does not follow accounts on %(host)s.",
                                           host=moderation.host_of(found.uri)[:200])
    return found


def _follow_activity(rt: Runtime, user: User, followee: str, activity_uri: str) -> dict[str, Any]:
    return {"@context": actors.AS_CONTEXT, "id": activity_uri, "type": "Follow",
            "actor": actors.actor_id(rt.settings, user.username), "object": followee}


def follow(rt: Runtime, user_id: int, text: str) -> Follow | None:
    """The account ``user_id`` follows the account ``text`` names. An account of this site is followed
    as always (returns None); one elsewhere gets a follow waiting for its server's ``Accept`` and a
    signed ``Follow`` sent after the commit (again: the same row, and the ``Follow`` sent again while
    no ``Accept`` came, as Mastodon does when asked twice). Opens its own sessions, never one across
    the lookup on the network; the caller must hold no transaction open meanwhile."""
    with rt.sessions() as session:
        me = session.get(User, user_id)
        if me is None or not me.is_active:
            raise PermissionDenied("Confirm your email address before you follow people.", code="not_verified")
        name = _local_name(rt, text)
        if name is not None:
            follows.follow(session, me, actors.local_actor(session, name))
            session.commit()
            return None
    if not rt.settings.federation.enabled:
        raise CannotFollow("This site does not talk to other servers.", code="federation_off")
    actor = resolve(rt, text)
    with rt.sessions() as session:
        me = session.get(User, user_id)
        assert me is not None
        row = session.scalar(select(Follow).where(Follow.follower_id == me.id, Follow.followee_uri == actor.uri))
        if row is None:
            me_uri = actors.actor_id(rt.settings, me.username)
            row = Follow(follower_id=me.id, followee_uri=actor.uri, accepted=False,
                         activity_uri=f"{me_uri}#follows/{secrets.token_hex(8)}")
            try:
                with session.begin_nested():
                    session.add(row)
            except IntegrityError:  # two clicks at once: the first row stands
                row = session.scalar(select(Follow).where(Follow.follower_id == me.id,
                                                          Follow.followee_uri == actor.uri))
                assert row is not None
        if not row.accepted:
            assert row.activity_uri is not None
            delivery.deliver_later(session, me, actor.inbox, _follow_activity(rt, me, actor.uri, row.activity_uri))
        session.commit()
        session.refresh(row)
        session.expunge(row)
        return row


def find_followed(session: Session, user: User, text: str) -> Follow:
    """``user``'s follow of the remote account ``text`` names (``@name@host`` or its address)."""
    value = (text or "").strip()[:URI_MAX]
    uri = value
    if "://" not in value:
        try:
            uri = moderation.find_actor(session, value).uri
        except NotFound:
            uri = ""
    row = (session.scalar(select(Follow).where(Follow.follower_id == user.id, Follow.followee_uri == uri))
           if uri else None)
    if row is None:
        raise NotFound("You do not follow %(who)s.", who=value[:200])
    return row


def unfollow(rt: Runtime, session: Session, user: User, text: str) -> None:
    """Stop following a remote account: the row goes and its server is sent ``Undo{Follow}`` after
    the commit (unless its server is blocked). The caller commits."""
    row = find_followed(session, user, text)
    actor = session.scalar(select(RemoteActor).where(RemoteActor.uri == row.followee_uri))
    if actor is not None and row.activity_uri and moderation.rule_for(session, actor.uri) != "block":
        me = actors.actor_id(rt.settings, user.username)
        undo = {"@context": actors.AS_CONTEXT, "id": f"{row.activity_uri}/undo", "type": "Undo", "actor": me,
                "object": _follow_activity(rt, user, actor.uri, row.activity_uri)}
        delivery.deliver_later(session, user, actor.inbox, undo)
    session.delete(row)


# Their answers (kiln.federation.inbox's handlers) -------------------------------------------------

def _answered(rt: Runtime, session: Session, row: InboxActivity) -> Follow | None:
    """The follow of the sender that an ``Accept`` or ``Reject`` answers: named by the Follow's id
    (given alone or in the object), or, for servers that send the Follow back without its id, by its
    actor (a local account) and object (the sender)."""
    answered = row.payload.get("object")
    query = select(Follow).where(Follow.followee_uri == row.actor_uri)
    address = answered.get("id") if isinstance(answered, dict) else answered
    if isinstance(address, str) and address:
        found = session.scalar(query.where(Follow.activity_uri == address[:URI_MAX]))
        if found is not None:
            return found
    if isinstance(answered, dict) and answered.get("type") == "Follow":
        follower = answered.get("actor")
        if isinstance(follower, str) and answered.get("object") in (row.actor_uri, None):
            for candidate in session.scalars(query):
                user = session.get(User, candidate.follower_id)
                if user is not None and follower == actors.actor_id(rt.settings, user.username):
                    return candidate
    return None


def accepted(rt: Runtime, session: Session, row: InboxActivity) -> str:
    follow_row = _answered(rt, session, row)
    if follow_row is None:
        return "unknown_object"
    follow_row.accepted = True
    return "follow_accepted"


def rejected(rt: Runtime, session: Session, row: InboxActivity) -> str:
    follow_row = _answered(rt, session, row)
    if follow_row is None:
        return "unknown_object"
    session.delete(follow_row)
    return "follow_rejected"
