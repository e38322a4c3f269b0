"""Follow approval: an account may choose to approve its followers on other servers
(``User.approve_followers``). Their ``Follow`` then waits as a ``FollowRequest`` and the account is
told; approving it makes the follow and sends the ``Accept``, declining it sends a ``Reject``. An
``Undo`` of the Follow withdraws the request. Local followers are not affected.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kiln.accounts.models import User
from kiln.config import Settings
from kiln.db.base import rowcount
from kiln.errors import NotFound
from kiln.federation import actors, delivery
from kiln.federation.models import FollowRequest, RemoteActor
from kiln.social.models import Follow
from kiln.social.notify import notify


def ask(session: Session, followee: User, follower: RemoteActor, activity: dict[str, Any]) -> str:
    """Keep a Follow of an account that approves its followers (asked again: the newest Follow is kept,
    nobody told twice)."""
    known = session.scalar(select(FollowRequest).where(FollowRequest.followee_id == followee.id,
                                                       FollowRequest.actor_id == follower.id))
    follow: dict[str, Any] = {k: activity[k] for k in ("id", "type", "actor", "object") if k in activity}
    if known is not None:
        known.activity = follow
        return "follow_requested"
    try:
        with session.begin_nested():
            session.add(FollowRequest(followee_id=followee.id, actor_id=follower.id, activity=follow))
    except IntegrityError:  # the same request at the same moment
        return "follow_requested"
    notify(session, followee, "follow_request", remote_actor_id=follower.id)
    return "follow_requested"


def withdraw(session: Session, followee: User, actor_uri: str) -> bool:
    """An ``Undo`` of a Follow still waiting: the request goes."""
    actor_ids = select(RemoteActor.id).where(RemoteActor.uri == actor_uri)
    return rowcount(session.execute(delete(FollowRequest).where(FollowRequest.followee_id == followee.id,
                                                                FollowRequest.actor_id.in_(actor_ids)))) > 0


def waiting(session: Session, user: User) -> list[FollowRequest]:
    return list(session.scalars(select(FollowRequest).where(FollowRequest.followee_id == user.id)
                                .order_by(FollowRequest.id.desc())))


def _request(session: Session, user: User, request_id: int) -> FollowRequest:
    request = session.get(FollowRequest, request_id)
    if request is None or request.followee_id != user.id:
        raise NotFound("There is no such follow request. It may have been answered or withdrawn.")
    return request


def answer(session: Session, settings: Settings, user: User, request_id: int, approve: bool) -> RemoteActor:
    """Approve (the follow is made and an ``Accept`` sent) or decline (a ``Reject`` is sent) a
    request of ``user``'s. The caller commits; the answer is delivered after the commit."""
    request = _request(session, user, request_id)
    actor = request.actor
    if approve and session.scalar(select(Follow.id).where(Follow.followee_id == user.id,
                                                          Follow.follower_uri == actor.uri)) is None:
        session.add(Follow(followee_id=user.id, follower_uri=actor.uri))
    me = actors.actor_id(settings, user.username)
    kind = "Accept" if approve else "Reject"
    reply = {"@context": actors.AS_CONTEXT, "id": f"{me}#{kind.lower()}s/request-{request.id}", "type": kind,
             "actor": me, "object": request.activity}
    delivery.deliver_later(session, user, actor.inbox, reply)
    session.delete(request)
    return actor
