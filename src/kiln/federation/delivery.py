"""Delivering activities to other servers' inboxes: each delivery is an outbox effect recorded in the
transaction that causes it, run after the commit, signed with the sending account's key, and retried
with the outbox's backoff when the other server fails or does not answer in time.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from kiln.accounts.models import User
from kiln.errors import KilnError
from kiln.federation import actors, fetch, keys, signatures
from kiln.processing import outbox

if TYPE_CHECKING:
    from kiln.runtime import Runtime

log = logging.getLogger(__name__)
EFFECT = "federation_deliver"
# Answers that say trying again will not help (the other server refuses this activity for good).
FINAL_REFUSALS = frozenset({400, 403, 404, 405, 410, 413, 422})


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
    with rt.sessions() as session:
        user, key = session.get(User, payload["user_id"]), session.get(ActorKey, payload["user_id"])
        if user is None or key is None:  # the account was deleted meanwhile: nothing to send as
            return
        username, private_pem = user.username, key.private_pem
    body = json.dumps(payload["activity"]).encode("utf-8")
    inbox = payload["inbox"]
    headers = signatures.sign("POST", inbox, body, actors.key_id(settings, username),
                              signatures.load_private(private_pem))
    status = fetch.post(inbox, body, headers, settings.federation)
    if 200 <= status < 300:
        return
    if status in FINAL_REFUSALS:
        log.warning("%s refused the delivery (%s); not trying again", inbox, status)
        return
    raise DeliveryFailed("The other server answered %(status)s.", status=status)


outbox.register_handler(EFFECT, _deliver)
