"""Receiving activities: a request is verified, recorded and answered 202 at once (``receive``); what it
means is worked out afterwards by an outbox effect (``process``), which may record deliveries in turn.

Understood: ``Follow`` of a local account (a follow row naming the remote actor, answered with a
signed ``Accept``, the account told) and ``Undo`` of such a follow; ``Accept`` and ``Reject`` of a
local account's follow of the sender (kiln.federation.following); replies, likes, boosts, their
``Undo``, ``Update``, ``Delete`` and ``Flag`` (kiln.federation.receiving). Everything else is recorded
and ignored.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kiln.db.base import utcnow
from kiln.errors import KilnError, NotFound
from kiln.federation import actors, delivery, fetch, following, moderation, receiving, remote, requests, signatures
from kiln.federation.models import URI_MAX, InboxActivity, RemoteActor
from kiln.federation.signatures import SignatureError, SignedRequest
from kiln.processing import outbox
from kiln.social.models import Follow
from kiln.social.notify import notify

if TYPE_CHECKING:
    from kiln.runtime import Runtime

log = logging.getLogger(__name__)
EFFECT = "federation_inbox"


class BadActivity(KilnError):
    code = "bad_activity"
    status = 400


def _uri(value: Any) -> str:
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and 0 < len(value) <= URI_MAX else ""


def check_shape(activity: Any) -> tuple[str, str]:
    """(type, actor) of an activity, or BadActivity with what is wrong."""
    if not isinstance(activity, dict):
        raise BadActivity("The body must be a JSON object (an ActivityStreams activity).")
    kind = activity.get("type")
    if not isinstance(kind, str) or not 0 < len(kind) <= 50:
        raise BadActivity("The activity needs a type (a short string).")
    actor = _uri(activity.get("actor"))
    if not actor:
        raise BadActivity("The activity needs an actor (its address).")
    if "id" in activity and not (activity["id"] is None or _uri(activity["id"])):
        raise BadActivity("The activity's id must be an address.")
    return kind, actor


def _verify(rt: Runtime, request: SignedRequest, actor_uri: str) -> remote.Actor:
    """The remote actor whose key signed ``request``; SignatureError otherwise. A signature that fails
    with a kept key is tried once more with the key fetched again (the actor may have a new one)."""
    settings = rt.settings.federation
    rfc9421 = "signature-input" in request.headers
    cavage = None if rfc9421 else signatures.parse_cavage(request.headers)
    key_id = signatures.rfc9421_key_id(request.headers) if rfc9421 else cavage.key_id  # type: ignore[union-attr]
    # Only a key on the actor's own server can end in a signature Kiln accepts (parse_actor), and that
    # server has passed the block check: a key anywhere else is refused before it is fetched, so that
    # nobody can have Kiln send its signed fetches to any address they name.
    if fetch.origin(key_id) is None or fetch.origin(key_id) != fetch.origin(actor_uri):
        raise SignatureError("The activity is signed with a key (%(key)s) that is not on its actor's server.",
                             code="wrong_signer", key=key_id[:200])
    if cavage is not None:  # stale, garbled or weak: refused before any key is fetched
        signatures.check_cavage(request, cavage, now=utcnow(), max_age=settings.signature_max_age_seconds,
                                max_future=settings.signature_max_future_seconds)
    actor = remote.cached_by_key(rt, key_id)
    fresh = actor is None
    if actor is None:
        actor = remote.fetch_by_key(rt, key_id)
    while True:
        try:
            key = signatures.load_public(actor.public_key_pem)
            if cavage is not None:
                signatures.verify_cavage(request, cavage, key, now=utcnow(),
                                         max_age=settings.signature_max_age_seconds,
                                         max_future=settings.signature_max_future_seconds)
            else:
                signatures.verify_rfc9421(request, key, now=utcnow(), max_age=settings.signature_max_age_seconds,
                                          max_future=settings.signature_max_future_seconds)
            return actor
        except SignatureError as exc:
            if fresh or exc.code not in ("signature_mismatch", "bad_key") or not remote.may_refetch(actor):
                raise
        actor, fresh = remote.fetch_by_key(rt, key_id), True


def receive(rt: Runtime, request: SignedRequest, activity: Any, recipient: str | None) -> int:
    """Verify and record an activity posted to ``recipient``'s inbox (None: the shared inbox); its
    processing runs after the commit. Returns the id of the row kept."""
    kind, actor_uri = check_shape(activity)
    recipient_id = None
    with rt.sessions() as session:
        # A blocked server is refused before its key is fetched (no request goes there).
        moderation.check_accepted(session, actor_uri)
        if recipient is not None:
            recipient_id = actors.local_actor(session, recipient).id
    signer = _verify(rt, request, actor_uri)
    if signer.uri != actor_uri:
        raise SignatureError("The activity names %(actor)s as its actor, but was signed by %(signer)s.",
                             code="wrong_signer", actor=actor_uri[:200], signer=signer.uri[:200])
    with rt.sessions() as session:
        row = InboxActivity(activity_uri=_uri(activity.get("id")) or None, actor_uri=actor_uri, type=kind,
                            recipient_id=recipient_id, payload=activity)
        session.add(row)
        session.flush()
        outbox.record(session, EFFECT, {"id": row.id}, summary=f"{kind} from {actor_uri[:200]}")
        session.commit()
        return row.id


# Processing ----------------------------------------------------------------------------------------

def process(rt: Runtime, session: Session, payload: dict[str, Any]) -> None:
    """What an activity received means (an outbox effect of its own: safe to run twice)."""
    row = session.get(InboxActivity, payload["id"])
    if row is None or row.outcome:
        return
    if moderation.rule_for(session, row.actor_uri) == "block":  # blocked after it arrived
        row.outcome = "domain_blocked"
        return
    handler = HANDLERS.get(row.type)
    row.outcome = handler(rt, session, row) if handler else "ignored"


def _target(rt: Runtime, session: Session, uri: str) -> Any:
    name = actors.username_of(rt.settings, uri)
    if name is None:
        return None
    try:
        return actors.local_actor(session, name)
    except NotFound:
        return None


def _follow(rt: Runtime, session: Session, row: InboxActivity) -> str:
    followee = _target(rt, session, _uri(row.payload.get("object")))
    if followee is None:
        return "unknown_object"
    follower = session.scalar(select(RemoteActor).where(RemoteActor.uri == row.actor_uri))
    if follower is None:  # verified a moment ago, then deleted: nowhere to send the answer
        return "unknown_actor"
    if moderation.blocks(session, followee.id, follower.id):
        return "blocked"
    already = session.scalar(select(Follow.id).where(Follow.followee_id == followee.id,
                                                       Follow.follower_uri == row.actor_uri))
    if followee.approve_followers and already is None:  # waits for the account's answer
        return requests.ask(session, followee, follower, row.payload)
    known = session.scalar(select(Follow.id).where(Follow.followee_id == followee.id,
                                                   Follow.follower_uri == row.actor_uri))
    if known is None:
        added = True
        try:
            with session.begin_nested():
                session.add(Follow(followee_id=followee.id, follower_uri=row.actor_uri))
        except IntegrityError:  # the same Follow processed at the same moment: kept and told once
            added = False
        if added and not receiving.silenced(session, follower.uri):  # told once, after the savepoint
            notify(session, followee, "follow", remote_actor_id=follower.id)
    # Answered every time, also for a follow kept already: the follower asks again when no Accept came.
    me = actors.actor_id(rt.settings, followee.username)
    accept = {"@context": actors.AS_CONTEXT, "id": f"{me}#accepts/{row.id}", "type": "Accept", "actor": me,
              "object": {k: row.payload[k] for k in ("id", "type", "actor", "object") if k in row.payload}}
    delivery.deliver_later(session, followee, follower.inbox, accept)
    return "followed"


def _undo(rt: Runtime, session: Session, row: InboxActivity) -> str:
    undone = row.payload.get("object")
    if isinstance(undone, str):  # only the id: the activity it names, as received from the same actor
        earlier = session.scalar(select(InboxActivity).where(InboxActivity.activity_uri == undone,
                                                             InboxActivity.actor_uri == row.actor_uri).limit(1))
        if earlier is None:  # pruned (or never seen): a like or boost still knows its activity's id
            for kind in ("Like", "Announce"):
                outcome = receiving.unreact(session, row, {"id": undone, "type": kind})
                if outcome != "unknown_object":
                    return outcome
            return "ignored"
        undone = earlier.payload
    if isinstance(undone, dict) and undone.get("type") in ("Like", "Announce"):
        if _uri(undone.get("actor")) not in ("", row.actor_uri):
            return "not_theirs"
        return receiving.unreact(session, row, undone)
    if not isinstance(undone, dict) or undone.get("type") != "Follow":
        return "ignored"
    if _uri(undone.get("actor")) not in ("", row.actor_uri):
        return "not_theirs"
    followee = _target(rt, session, _uri(undone.get("object")))
    if followee is None:
        return "unknown_object"
    if requests.withdraw(session, followee, row.actor_uri):
        return "request_withdrawn"
    session.execute(delete(Follow).where(Follow.followee_id == followee.id, Follow.follower_uri == row.actor_uri))
    return "unfollowed"


HANDLERS: dict[str, Callable[[Runtime, Session, InboxActivity], str]] = {
    "Follow": _follow, "Undo": _undo, "Create": receiving.create, "Update": receiving.edit, "Delete": receiving.remove,
    "Like": receiving.react, "Announce": receiving.react, "Flag": receiving.flag,
    "Accept": following.accepted, "Reject": following.rejected}
outbox.register_local_handler(EFFECT, process)


PRUNE_BATCH = 1000


def prune(rt: Runtime, now: dt.datetime | None = None) -> int:
    """Delete activities received more than ``keep_activities_days`` ago and processed, except a
    ``Follow`` whose follow still holds (an ``Undo`` may name it by id alone; a Like's or Announce's
    id is kept with the reaction). In batches; returns how many went."""
    cutoff = (now or utcnow()) - dt.timedelta(days=rt.settings.federation.keep_activities_days)
    followers = select(Follow.follower_uri).where(Follow.follower_uri.is_not(None))
    removed = 0
    while True:
        with rt.sessions() as session:
            ids = list(session.scalars(select(InboxActivity.id).where(
                InboxActivity.received < cutoff, InboxActivity.outcome != "",
                ~((InboxActivity.type == "Follow") & InboxActivity.actor_uri.in_(followers)))
                .limit(PRUNE_BATCH)))
            if not ids:
                return removed
            session.execute(delete(InboxActivity).where(InboxActivity.id.in_(ids)))
            session.commit()
            removed += len(ids)
