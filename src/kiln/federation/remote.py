"""Actors on other servers: fetched through ``kiln.federation.fetch``, kept in ``remote_actors``, and
the key that verifies a request they signed.

No fetch happens inside a database transaction: the cache is read in one short session, the network
is asked with none open, and the answer is written in another.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urldefrag, urlsplit

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from kiln.db.base import utcnow
from kiln.federation import fetch
from kiln.federation.models import URI_MAX, RemoteActor
from kiln.federation.signatures import SignatureError

if TYPE_CHECKING:
    from kiln.runtime import Runtime

# A failed verification fetches the key again only when the kept copy is older than this: a flood of
# forged signatures does not become a flood of fetches.
REFETCH_AFTER = dt.timedelta(seconds=30)


@dataclass(frozen=True)
class Actor:
    """What Kiln keeps of a remote actor (a plain value: no session needed to read it)."""

    uri: str
    key_id: str
    public_key_pem: str
    inbox: str
    shared_inbox: str | None
    fetched: dt.datetime

    @classmethod
    def of(cls, row: RemoteActor) -> Actor:
        return cls(row.uri, row.key_id, row.public_key_pem, row.inbox, row.shared_inbox, row.fetched)


def cached_by_key(rt: Runtime, key_id: str) -> Actor | None:
    with rt.sessions() as session:
        row = session.scalar(select(RemoteActor).where(RemoteActor.key_id == key_id).limit(1))
        return Actor.of(row) if row is not None else None


def cached(rt: Runtime, uri: str) -> Actor | None:
    with rt.sessions() as session:
        row = session.scalar(select(RemoteActor).where(RemoteActor.uri == uri))
        return Actor.of(row) if row is not None else None


def _text(value: Any, limit: int = URI_MAX) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _uri(value: Any) -> str:
    """An address given as a string or as an object with an ``id``."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and len(value) <= URI_MAX else ""


def parse_actor(document: dict[str, Any], key_id: str | None = None) -> dict[str, Any]:
    """The fields Kiln keeps of an actor document; SignatureError when it lacks an inbox or a key
    (``key_id`` given: that key)."""
    uri, inbox = _uri(document.get("id")), _uri(document.get("inbox"))
    keys = document.get("publicKey")
    candidates = keys if isinstance(keys, list) else [keys]
    key = next((k for k in candidates if isinstance(k, dict) and (key_id is None or k.get("id") == key_id)), None)
    if not uri or not inbox or key is None or not isinstance(key.get("publicKeyPem"), str):
        raise SignatureError("Your actor document lacks an id, an inbox or the signing key.", code="bad_actor")
    if _uri(key.get("owner")) not in ("", uri):
        raise SignatureError("The signing key belongs to another actor than the one that published it.",
                             code="bad_actor")
    endpoints = document.get("endpoints")
    shared = _uri(endpoints.get("sharedInbox")) if isinstance(endpoints, dict) else ""
    return {"uri": uri, "key_id": _text(key.get("id")) or uri, "public_key_pem": key["publicKeyPem"][:10_000],
            "inbox": inbox, "shared_inbox": shared or None,
            "username": _text(document.get("preferredUsername"), 200),
            "display_name": _text(document.get("name"), 200), "profile_url": _uri(document.get("url"))}


def _same_host(a: str, b: str) -> bool:
    return (urlsplit(a).hostname or "a").lower() == (urlsplit(b).hostname or "b").lower()


def fetch_by_key(rt: Runtime, key_id: str) -> Actor:
    """Fetch the actor that owns ``key_id`` (the key's URL names the actor document, or a key document
    naming its owner), keep it, and return it. Network errors and refusals: SignatureError."""
    settings = rt.settings.federation
    try:
        document = fetch.get_json(urldefrag(key_id)[0], settings)
        if "inbox" not in document and isinstance(document.get("owner"), str):  # a key document
            document = fetch.get_json(document["owner"], settings)
    except fetch.FetchError as exc:
        raise SignatureError("Kiln could not fetch the signing key %(key)s: %(reason)s",
                             code="key_unavailable", key=key_id[:200], reason=exc.message) from exc
    fields = parse_actor(document, key_id)
    if fields["key_id"] != key_id or not _same_host(fields["uri"], key_id):
        raise SignatureError("The key %(key)s is not the key its actor document publishes.",
                             code="bad_actor", key=key_id[:200])
    return store(rt, fields)


def store(rt: Runtime, fields: dict[str, Any]) -> Actor:
    """Keep (or refresh) a remote actor, in a transaction of its own."""
    with rt.sessions() as session:
        row = session.scalar(select(RemoteActor).where(RemoteActor.uri == fields["uri"]))
        if row is None:
            row = RemoteActor(**fields)
            try:
                with session.begin_nested():
                    session.add(row)
            except IntegrityError:  # kept by a request at the same moment: refresh that one
                row = session.scalar(select(RemoteActor).where(RemoteActor.uri == fields["uri"]))
                assert row is not None
        for name, value in fields.items():
            setattr(row, name, value)
        row.fetched = utcnow()
        session.commit()
        return Actor.of(row)


def may_refetch(actor: Actor) -> bool:
    return utcnow() - actor.fetched > REFETCH_AFTER


def lookup(rt: Runtime, text: str) -> Actor:
    """Find an account elsewhere by its address or as ``@name@host`` (WebFinger), fetch its actor
    document and keep it. FetchError or SignatureError (bad_actor) with a sentence when it cannot."""
    from urllib.parse import quote

    settings = rt.settings.federation
    value = (text or "").strip()
    if "://" not in value:
        name, _, host = value.lstrip("@").partition("@")
        if not name or not host:
            raise fetch.FetchError("Write an account as @name@host or give its address.", code="bad_account")
        jrd = fetch.get_json(f"https://{host}/.well-known/webfinger?resource={quote(f'acct:{name}@{host}')}",
                             settings)
        links: list[Any] = jrd["links"] if isinstance(jrd.get("links"), list) else []
        value = next((str(link["href"]) for link in links if isinstance(link, dict) and link.get("rel") == "self"
                      and isinstance(link.get("href"), str)), "")
        if not value:
            raise fetch.FetchError("%(host)s names no ActivityPub actor for that account.", host=host[:200])
    fields = parse_actor(fetch.get_json(value, settings))
    if not _same_host(fields["uri"], value):
        raise SignatureError("The actor document at %(url)s names an actor on another server.",
                             code="bad_actor", url=value[:200])
    return store(rt, fields)
