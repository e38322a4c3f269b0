"""Delivering activities to other servers' inboxes: each delivery is an outbox effect recorded in the
transaction that causes it, run after the commit, signed with the sending account's key, and retried
with backoff up to days when the other server fails or does not answer in time, per destination host
(kiln.federation.hosts: a dead server's deliveries wait for it). A permanent refusal (a 4xx other than
401, 408 and 429) marks the delivery failed at once.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from kiln.accounts.models import User
from kiln.config import Settings
from kiln.errors import KilnError
from kiln.federation import actors, fetch, hosts, keys, moderation, signatures
from kiln.processing import outbox

if TYPE_CHECKING:
    from kiln.runtime import Runtime

log = logging.getLogger(__name__)
EFFECT = "federation_deliver"
# 4xx answers that say "later" rather than "never".
TRY_AGAIN = frozenset({401, 408, 429})


class DeliveryFailed(KilnError):
    code = "delivery_failed"
    status = 502


def deliver_later(session: Session, sender: User, inbox: str, activity: dict[str, Any]) -> None:
    """Send ``activity`` as ``sender`` to ``inbox`` once the session's transaction commits. The sender's
    key pair is made now if it has none, so the delivery itself only reads."""
    keys.key_of(session, sender)
    host = urlsplit(inbox).hostname or "?"
    outbox.record(session, EFFECT, {"user_id": sender.id, "inbox": inbox, "activity": activity},
                  summary=f"{activity.get('type')} → {host}")


def _deliver(rt: Runtime, payload: dict[str, Any]) -> None:
    from kiln.federation.models import ActorKey

    settings = rt.settings
    if not settings.federation.enabled:
        return
    signer = payload.get("signer")
    if isinstance(signer, dict):  # an account's own Delete: sent after the account (and its key) went
        key_id, private_pem = str(signer["key_id"]), str(signer["private_pem"])
    else:
        with rt.sessions() as session:
            user, key = session.get(User, payload["user_id"]), session.get(ActorKey, payload["user_id"])
            if user is None or key is None:  # the account was deleted meanwhile: nothing to send as
                return
            key_id, private_pem = actors.key_id(settings, user.username), key.private_pem
    body = json.dumps(payload["activity"]).encode("utf-8")
    inbox = payload["inbox"]
    host = hosts.host_of(inbox)
    with rt.sessions() as session:
        if moderation.rule_for(session, inbox) == "block":
            raise outbox.Refused("Deliveries to %(host)s are blocked by the administrators.", host=host)
    hosts.before_try(rt, host)
    try:
        headers = signatures.sign("POST", inbox, body, key_id, signatures.load_private(private_pem))
    except ValueError as exc:  # an inbox address that cannot be sent to: never will be
        raise outbox.Refused("The inbox address %(inbox)s cannot be sent to.", inbox=inbox[:200]) from exc
    try:
        status = fetch.post(inbox, body, headers, settings.federation)
    except Exception as exc:
        hosts.failed(rt, host, f"{type(exc).__name__}: {exc}")
        raise
    if 200 <= status < 300:
        hosts.answered(rt, host)
        return
    if 400 <= status < 500 and status not in TRY_AGAIN:
        hosts.answered(rt, host)  # alive, but it will not take this one
        log.warning("%s refused the delivery (%s); not trying again", inbox, status)
        raise outbox.Refused("The other server refused this for good (it answered %(status)s).", status=status)
    hosts.failed(rt, host, f"HTTP {status}")
    raise DeliveryFailed("The other server answered %(status)s.", status=status)


def account_deleted(session: Session, settings: Settings, user: User) -> None:
    """Called in the transaction that deletes ``user``, before their follows go: each remote
    follower's server, and the server of each account elsewhere they follow, is sent a ``Delete`` of
    the actor, signed with the account's key, which is carried in the delivery itself (the account and
    its key are gone when it runs; the outbox drops it once the delivery is done). The actor's address
    answers 410 from then on."""
    from kiln.federation import publishing
    from kiln.federation.models import ActorKey, Tombstone

    key = session.get(ActorKey, user.id)
    if not settings.federation.enabled or key is None:  # never federated: nobody elsewhere knows it
        return
    me = actors.actor_id(settings, user.username)
    if publishing.tombstone(session, me) is None:
        session.add(Tombstone(uri=me))
    activity = {"@context": actors.AS_CONTEXT, "id": f"{me}#delete", "type": "Delete", "actor": me, "object": me,
                "to": [actors.PUBLIC]}
    signer = {"key_id": actors.key_id(settings, user.username), "private_pem": key.private_pem}
    for inbox in sorted(set(publishing.inboxes(session, user.id)) | set(_followed_inboxes(session, user.id))):
        outbox.record(session, EFFECT, {"user_id": user.id, "inbox": inbox, "activity": activity, "signer": signer},
                      summary=f"Delete → {urlsplit(inbox).hostname or '?'}")


def _followed_inboxes(session: Session, user_id: int) -> list[str]:
    """The servers of the accounts elsewhere ``user_id`` follows (each told of the deletion too, so
    that they stop counting a follower that is gone)."""
    from sqlalchemy import select

    from kiln.federation.models import RemoteActor
    from kiln.social.models import Follow

    rows = session.execute(select(RemoteActor.inbox, RemoteActor.shared_inbox)
                           .join(Follow, Follow.followee_uri == RemoteActor.uri).where(Follow.follower_id == user_id))
    return [shared or inbox for inbox, shared in rows]


outbox.register_handler(EFFECT, _deliver)
