"""Actors on other servers: fetched through ``kiln.federation.fetch``, kept in ``remote_actors``, and
the key that verifies a request they signed.

No fetch happens inside a database transaction: the cache is read in one short session, the network
is asked with none open, and the answer is written in another.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urldefrag, urlsplit

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from kiln.db.base import utcnow
from kiln.errors import KilnError
from kiln.federation import fetch, instance, moderation
from kiln.federation.models import URI_MAX, RemoteActor
from kiln.federation.signatures import SignatureError

if TYPE_CHECKING:
    from kiln.config import FederationSettings
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


_CONTROL = {"Cc", "Cf", "Co", "Cs", "Zl", "Zp"}
# What a WebFinger ``acct:`` user part may hold without escaping (RFC 7565: unreserved characters).
_USERNAME = re.compile(r"[A-Za-z0-9._~\-]{1,100}")


def _plain(value: Any, limit: int = 200) -> str:
    """Text shown to people and put in mail: control, format and line-breaking characters dropped."""
    if not isinstance(value, str):
        return ""
    return "".join(c for c in value[: limit * 2] if unicodedata.category(c) not in _CONTROL).strip()[:limit]


def _refuse(message: str, **params: Any) -> SignatureError:
    return SignatureError(message, code="bad_actor", **params)


def parse_actor(document: dict[str, Any], fetched_from: str, key_id: str | None = None) -> dict[str, Any]:
    """The fields Kiln keeps of an actor document fetched (after redirects) from ``fetched_from``;
    SignatureError (bad_actor) with a sentence when it is not to be believed. Every actor Kiln keeps
    comes through here: its ``id`` is the address it was fetched from, its key (``key_id`` given: that
    key) is published in it, and the key's id, the key's owner and the actor share one origin
    (scheme, host and port)."""
    uri, inbox = _uri(document.get("id")), _uri(document.get("inbox"))
    keys = document.get("publicKey")
    candidates = keys if isinstance(keys, list) else [keys]
    key = next((k for k in candidates if isinstance(k, dict) and (key_id is None or k.get("id") == key_id)), None)
    if not uri or not inbox or key is None or not isinstance(key.get("publicKeyPem"), str):
        raise _refuse("Your actor document lacks an id, an inbox or the signing key.")
    if uri != urldefrag(fetched_from)[0]:
        raise _refuse("The actor document at %(url)s names another address (%(id)s) as its id.",
                      url=fetched_from[:200], id=uri[:200])
    own = fetch.origin(uri)
    if own is None:
        raise _refuse("The actor's id is not an address Kiln can read.")
    if _uri(key.get("owner")) not in ("", uri):
        raise _refuse("The signing key belongs to another actor than the one that published it.")
    key_address = _text(key.get("id")) or uri
    if fetch.origin(key_address) != own:
        raise _refuse("The key %(key)s is not on its actor's server.", key=key_address[:200])
    endpoints = document.get("endpoints")
    shared = _uri(endpoints.get("sharedInbox")) if isinstance(endpoints, dict) else ""
    username = _plain(document.get("preferredUsername"), 100)
    return {"uri": uri, "key_id": key_address, "public_key_pem": key["publicKeyPem"][:10_000],
            "inbox": inbox, "shared_inbox": shared or None,
            "username": username if _USERNAME.fullmatch(username) else "",
            "display_name": _plain(document.get("name"), 200), "profile_url": _uri(document.get("url"))}


def _same_host(a: str, b: str) -> bool:
    return fetch.normal_host(urlsplit(a).hostname or "a") == fetch.normal_host(urlsplit(b).hostname or "b")


def fetch_actor(rt: Runtime, url: str) -> tuple[dict[str, Any], str]:
    """An actor (or key) document and the address it really came from: when the document's ``id`` is
    another address than the one it was fetched from (after redirects), it is fetched again by its
    ``id`` (parse_actor then requires the two to be equal). FetchError when it cannot. Each GET is
    signed as the site's actor (servers with authorized fetch refuse unsigned ones)."""
    settings, sign = rt.settings.federation, instance.signer(rt)

    def refuse(address: str) -> None:  # every hop, redirects included: a blocked server is not asked
        with rt.sessions() as session:
            blocked = moderation.rule_for(session, address) == "block"
        if blocked:
            raise fetch.ServerBlocked("This site has blocked %(host)s, so Kiln does not ask it.",
                                      host=moderation.host_of(address)[:200])

    document, final = fetch.get_activity(urldefrag(url)[0], settings, sign, refuse)
    claimed = _uri(document.get("id"))
    if claimed and claimed != final and urldefrag(claimed)[0] != final:
        document, final = fetch.get_activity(urldefrag(claimed)[0], settings, sign, refuse)
    return document, final


# Key fetches for inbox verification run in the web server's threads: at most this many at once in the
# process (more: 503 and Retry-After, which senders honour), and a key or a server that failed is not
# asked again for a while (the same junk signed again costs nothing).
KEY_FETCHES_AT_ONCE = 4
FAILED_FOR_SECONDS = 60.0
FAILED_REMEMBERED = 10_000
_fetching = threading.BoundedSemaphore(KEY_FETCHES_AT_ONCE)
_failed: dict[str, float] = {}  # "key " + keyId, or "host " + scheme://host:port -> until (monotonic)
_failed_lock = threading.Lock()


class KeyUnavailable(SignatureError):
    code = "key_unavailable"

    def __init__(self, message: str, *, server_failed: bool = False, **params: Any) -> None:
        super().__init__(message, **params)
        self.server_failed = server_failed


class FetchBusy(KilnError):
    code = "busy"
    status = 503
    retry_after = 30

    def __init__(self) -> None:
        super().__init__("Kiln is fetching other servers' keys for as many requests as it takes at once; "
                         "send this again in a moment.")


def _host_entry(url: str) -> str:
    found = fetch.origin(url)
    return f"host {found[0]}://{found[1]}:{found[2]}" if found else "host ?"


def _failed_lately(key_id: str) -> str | None:
    """Which of the key or its server failed less than FAILED_FOR_SECONDS ago (its entry), or None."""
    now = time.monotonic()
    with _failed_lock:
        for entry in (f"key {key_id}", _host_entry(key_id)):
            until = _failed.get(entry)
            if until is not None and until > now:
                return entry
    return None


def _remember_failure(*entries: str) -> None:
    now = time.monotonic()
    with _failed_lock:
        if len(_failed) >= FAILED_REMEMBERED:
            for entry in [e for e, until in _failed.items() if until <= now] or list(_failed)[: FAILED_REMEMBERED // 2]:
                _failed.pop(entry, None)
        for entry in entries:
            _failed[entry] = now + FAILED_FOR_SECONDS


def forget_failures() -> None:
    """Ask again at once (tests; an administrator's retry)."""
    with _failed_lock:
        _failed.clear()


def fetch_by_key(rt: Runtime, key_id: str) -> Actor:
    """Fetch the actor that owns ``key_id`` (the key's URL names the actor document, or a key document
    naming its owner on the same server), keep it, and return it. Network errors and refusals:
    SignatureError; too many fetches at once: FetchBusy (503). A key that failed (or whose server did)
    within FAILED_FOR_SECONDS is refused without asking again."""
    if _failed_lately(key_id) is not None:
        raise SignatureError("Kiln could not fetch the signing key %(key)s a moment ago, and asks again only "
                             "in a minute.", code="key_unavailable", key=key_id[:200])
    if not _fetching.acquire(blocking=False):
        raise FetchBusy()
    try:
        return _fetch_by_key(rt, key_id)
    except SignatureError as exc:  # a server that could not be asked at all: its other keys wait too
        server_failed = isinstance(exc, KeyUnavailable) and exc.server_failed
        _remember_failure(f"key {key_id}", *([_host_entry(key_id)] if server_failed else []))
        raise
    finally:
        _fetching.release()


def _fetch_by_key(rt: Runtime, key_id: str) -> Actor:
    try:
        document, final = fetch_actor(rt, key_id)
        if "inbox" not in document and isinstance(document.get("owner"), str):  # a key document
            if _uri(document.get("id")) != key_id or fetch.origin(document["owner"]) != fetch.origin(key_id):
                raise _refuse("The key document %(key)s is not the key it claims to be, or names an owner "
                              "on another server.", key=key_id[:200])
            document, final = fetch_actor(rt, document["owner"])
    except fetch.FetchError as exc:
        raise KeyUnavailable("Kiln could not fetch the signing key %(key)s: %(reason)s", key=key_id[:200],
                             reason=exc.message, server_failed=exc.code in fetch.SERVER_FAILURES) from exc
    fields = parse_actor(document, final, key_id)
    if fields["key_id"] != key_id:
        raise _refuse("The key %(key)s is not the key its actor document publishes.", key=key_id[:200])
    return store(rt, fields, key_proven=True)


def store(rt: Runtime, fields: dict[str, Any], key_proven: bool = False) -> Actor:
    """Keep (or refresh) a remote actor, in a transaction of its own. A key id belongs to one actor:
    ``key_proven`` (the key was fetched from its own address and its actor publishes it) takes it from
    any other actor kept with it (which fetches its own again when it next signs); otherwise an actor
    naming a key another one holds is refused (SignatureError, bad_actor)."""
    with rt.sessions() as session:
        holders = select(RemoteActor).where(RemoteActor.key_id == fields["key_id"], RemoteActor.uri != fields["uri"])
        if key_proven:
            for other in session.scalars(holders):
                other.key_id = ""
        elif session.scalar(holders.limit(1)) is not None:
            raise _refuse("The key %(key)s is another actor's.", key=fields["key_id"][:200])
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


def _webfinger(host: str, path: str, settings: FederationSettings) -> dict[str, Any]:
    """WebFinger over https; with private addresses allowed (tests, a private network of servers),
    over plain http when https cannot be reached."""
    try:
        return fetch.get_json(f"https://{host}{path}", settings)
    except fetch.FetchError as exc:
        if not settings.allow_private_addresses or exc.code != "unreachable":
            raise
    return fetch.get_json(f"http://{host}{path}", settings)


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
        jrd = _webfinger(host, f"/.well-known/webfinger?resource={quote(f'acct:{name}@{host}')}", settings)
        links: list[Any] = jrd["links"] if isinstance(jrd.get("links"), list) else []
        value = next((str(link["href"]) for link in links if isinstance(link, dict) and link.get("rel") == "self"
                      and isinstance(link.get("href"), str)), "")
        if not value:
            raise fetch.FetchError("%(host)s names no ActivityPub actor for that account.", host=host[:200])
    fields = parse_actor(*fetch_actor(rt, value))
    if not _same_host(fields["uri"], value):
        raise SignatureError("The actor document at %(url)s names an actor on another server.",
                             code="bad_actor", url=value[:200])
    return store(rt, fields)
