"""The site's own actor (an ``Application`` at ``/actor``, what Mastodon calls the instance actor).

Servers in Mastodon's "secure mode" (authorized fetch), GoToSocial and bovine answer an unsigned GET
of their actors 401: they want to know which server asks. Kiln signs its fetches of actors and keys
with this actor's key rather than an account's, since a fetch is the site's doing, not a person's
(and a key check while a signed request is verified has no local account to sign as). The actor
itself is served to anyone, signed or not: a server checking Kiln's signature fetches it, and must
not need a signature of its own to do so.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from kiln.config import Settings
from kiln.federation import signatures
from kiln.federation.keys import kept_pair
from kiln.federation.models import InstanceKey

if TYPE_CHECKING:
    from kiln.runtime import Runtime

PATH = "/actor"


def actor_id(settings: Settings) -> str:
    return settings.link_base() + PATH


def key_id(settings: Settings) -> str:
    return actor_id(settings) + "#main-key"


def key_pair(session: Session) -> InstanceKey:
    """The site's key pair, made now if there is none (two processes at once: the first one's stays).
    Flushes; the caller commits."""
    return kept_pair(session, InstanceKey, 1, id=1)


def document(session: Session, settings: Settings) -> dict[str, Any]:
    """The site's actor: no posts, no followers; its inbox is the shared inbox (whatever arrives there
    for it is accepted and ignored). Makes the key pair on first need (the caller commits)."""
    from kiln.federation.actors import AS_CONTEXT, SECURITY_CONTEXT, host, shared_inbox

    me = actor_id(settings)
    return {
        "@context": [AS_CONTEXT, SECURITY_CONTEXT],
        "id": me, "type": "Application", "preferredUsername": host(settings),
        "name": settings.site_name, "url": settings.link_base() + "/",
        "inbox": shared_inbox(settings), "endpoints": {"sharedInbox": shared_inbox(settings)},
        "manuallyApprovesFollowers": True,
        "publicKey": {"id": key_id(settings), "owner": me, "publicKeyPem": key_pair(session).public_pem},
    }


@dataclass(frozen=True)
class Signer:
    """Signs a GET as the site's actor: ``signer("GET", url)`` gives the headers to send (draft-cavage
    ``rsa-sha256`` over ``(request-target) host date``, the form every server that asks for signed
    fetches checks)."""

    key_id: str
    private_key: rsa.RSAPrivateKey

    def __call__(self, method: str, url: str) -> dict[str, str]:
        return signatures.sign(method, url, b"", self.key_id, self.private_key)


# Each database engine's signer, loaded once (per engine, not per address: a test database emptied and
# used again under the same address holds another key).
_signers: weakref.WeakKeyDictionary[Engine, Signer] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def signer(rt: Runtime) -> Signer:
    """The site's signer, its key read (or made) in a short transaction of its own the first time."""
    found = _signers.get(rt.engine)
    if found is not None and found.key_id == key_id(rt.settings):
        return found
    with _lock:
        with rt.sessions() as session:
            pem = key_pair(session).private_pem
            session.commit()
        made = _signers[rt.engine] = Signer(key_id(rt.settings), signatures.load_private(pem))
        return made
