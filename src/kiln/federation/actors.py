"""The documents Kiln serves to other servers: WebFinger, NodeInfo, each account's actor and its
collections. Every address in them is built from ``Settings.link_base()`` (``base_url``), never from a
request's Host header: an actor's id must not change with the name a request used.
"""

from __future__ import annotations

import datetime as dt
import re
from importlib import metadata
from typing import Any
from urllib.parse import unquote, urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kiln.accounts.models import User, not_banned
from kiln.accounts.services import find_user
from kiln.config import Settings
from kiln.db.base import utcnow
from kiln.errors import KilnError, NotFound
from kiln.federation import keys
from kiln.federation.fetch import ACTIVITY_JSON
from kiln.media import services as media_service
from kiln.media.models import MediaEntry
from kiln.social import follows
from kiln.social.models import Follow
from kiln.storage import Stores

AS_CONTEXT = "https://www.w3.org/ns/activitystreams"
SECURITY_CONTEXT = "https://w3id.org/security/v1"
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
_USERNAME = re.compile(r"[A-Za-z0-9_.\-]{1,30}")


class BadResource(KilnError):
    code = "bad_resource"
    status = 400


# Addresses -----------------------------------------------------------------------------------------

def actor_id(settings: Settings, username: str) -> str:
    return f"{settings.link_base()}/u/{username}"


def key_id(settings: Settings, username: str) -> str:
    return actor_id(settings, username) + "#main-key"


def shared_inbox(settings: Settings) -> str:
    return f"{settings.link_base()}/inbox"


def host(settings: Settings) -> str:
    return urlsplit(settings.link_base()).netloc


def username_of(settings: Settings, uri: str) -> str | None:
    """The username in one of Kiln's own actor ids, or None when ``uri`` is not one."""
    prefix = f"{settings.link_base()}/u/"
    if not uri.startswith(prefix):
        return None
    name = uri[len(prefix):]
    return name if _USERNAME.fullmatch(name) else None


# Who may be found --------------------------------------------------------------------------------

def findable(user: User) -> bool:
    """Whether other servers may find ``user``: not banned, not waiting for approval."""
    return not (user.banned_now or user.pending_approval)


def local_actor(session: Session, username: str) -> User:
    """The account behind ``username`` if others may find it (``findable``). Anyone else, deleted
    accounts included, is NotFound (404)."""
    user = find_user(session, username) if _USERNAME.fullmatch(username or "") else None
    if user is None or not findable(user):
        raise NotFound("There is no user named '%(name)s'.", name=(username or "")[:30])
    return user


def webfinger(session: Session, settings: Settings, resource: str) -> dict[str, Any]:
    """The JRD for ``acct:name@host`` (or an actor's own address); BadResource when it is neither."""
    resource = (resource or "").strip()
    name: str | None
    if resource.startswith("acct:"):
        account = unquote(resource[5:]).lstrip("@")
        name, sep, domain = account.rpartition("@")
        if not sep or not name or not domain:
            raise BadResource("The resource must look like acct:name@%(host)s.", host=host(settings))
        if domain.lower() != host(settings).lower():
            raise NotFound("Kiln answers only for accounts on %(host)s.", host=host(settings))
    elif resource.startswith(("https://", "http://")):
        name = username_of(settings, resource)
        if name is None:
            raise NotFound("That address is not an account of this site.")
    else:
        raise BadResource("The resource must look like acct:name@%(host)s.", host=host(settings))
    user = local_actor(session, name)
    me = actor_id(settings, user.username)
    return {"subject": f"acct:{user.username}@{host(settings)}", "aliases": [me],
            "links": [{"rel": "self", "type": ACTIVITY_JSON, "href": me},
                      {"rel": "http://webfinger.net/rel/profile-page", "type": "text/html", "href": me}]}


# NodeInfo ----------------------------------------------------------------------------------------

def nodeinfo_links(settings: Settings) -> dict[str, Any]:
    return {"links": [{"rel": "http://nodeinfo.diaspora.software/ns/schema/2.1",
                       "href": f"{settings.link_base()}/nodeinfo/2.1"}]}


def nodeinfo(session: Session, settings: Settings) -> dict[str, Any]:
    now = utcnow()

    def active_since(days: int) -> Any:
        return (select(func.count()).select_from(User)
                .where(not_banned(now), User.last_seen >= now - dt.timedelta(days=days)).scalar_subquery())

    total = select(func.count()).select_from(User).where(not_banned(now)).scalar_subquery()
    posts = select(func.count()).select_from(media_service.published_query().subquery()).scalar_subquery()
    users, month, halfyear, local_posts = session.execute(select(total, active_since(30), active_since(180),
                                                                 posts)).one()
    try:
        version = metadata.version("kiln")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        version = "0"
    return {"version": "2.1",
            "software": {"name": "kiln", "version": version},
            "protocols": ["activitypub"], "services": {"inbound": [], "outbound": ["atom1.0"]},
            "openRegistrations": settings.registration == "open",
            "usage": {"users": {"total": users, "activeMonth": month, "activeHalfyear": halfyear},
                      "localPosts": local_posts},
            "metadata": {"nodeName": settings.site_name}}


# Actors and collections --------------------------------------------------------------------------

def person(session: Session, settings: Settings, stores: Stores, user: User) -> dict[str, Any]:
    """``user`` as an ActivityPub ``Person``: makes the account's key pair on first need (the caller
    commits)."""
    from kiln.media.text import render_markdown

    me = actor_id(settings, user.username)
    key = keys.key_of(session, user)
    document: dict[str, Any] = {
        "@context": [AS_CONTEXT, SECURITY_CONTEXT],
        "id": me, "type": "Person", "preferredUsername": user.username,
        "name": user.display_name or user.username, "summary": str(render_markdown(user.bio)),
        "url": me, "inbox": f"{me}/inbox", "outbox": f"{me}/outbox",
        "followers": f"{me}/followers", "following": f"{me}/following",
        "endpoints": {"sharedInbox": shared_inbox(settings)},
        "manuallyApprovesFollowers": user.approve_followers, "discoverable": True,
        "published": user.created.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "publicKey": {"id": key_id(settings, user.username), "owner": me, "publicKeyPem": key.public_pem},
    }
    avatar = (user.avatar or {}).get("256")
    if avatar:
        url = stores.public.url(list(avatar))
        document["icon"] = {"type": "Image", "mediaType": "image/webp" if url.endswith(".webp") else "image/jpeg",
                            "url": url if "://" in url else settings.link_base() + url}
    return document


COLLECTION_PAGE = 20


def collection(session: Session, settings: Settings, user: User, which: str) -> dict[str, Any]:
    """The followers, following or outbox collection: its size and its first page (``collection_page``)."""
    me = actor_id(settings, user.username)
    if which == "followers":
        total = follows.counts(session, user).followers
    elif which == "following":
        total = session.scalar(select(func.count()).select_from(Follow).where(Follow.follower_id == user.id,
                                                                                  Follow.accepted.is_(True))) or 0
    else:
        total = session.scalar(select(func.count()).select_from(
            media_service.published_query(owner_id=user.id).subquery())) or 0
    return {"@context": AS_CONTEXT, "id": f"{me}/{which}", "type": "OrderedCollection", "totalItems": total,
            "first": f"{me}/{which}?page=1"}


def collection_page(session: Session, settings: Settings, stores: Stores, user: User, which: str,
                    before: int | None) -> dict[str, Any]:
    """One ``OrderedCollectionPage``, newest first, ``COLLECTION_PAGE`` items, older ones by ``before``
    (a row id): the outbox's ``Create`` activities of public items (what followers were sent), the
    followers' and followings' actor ids (the same people the profile's pages list)."""
    me = actor_id(settings, user.username)
    if which == "outbox":
        keys, items = _outbox_items(session, settings, stores, user, before)
    else:
        keys, items = _people_items(session, settings, user, which, before)
    page = {"@context": AS_CONTEXT, "id": f"{me}/{which}?page=1" + (f"&before={before}" if before else ""),
            "type": "OrderedCollectionPage", "partOf": f"{me}/{which}", "orderedItems": items}
    if len(keys) > COLLECTION_PAGE:
        page["next"] = f"{me}/{which}?page=1&before={keys[COLLECTION_PAGE - 1]}"
    return page


def _outbox_items(session: Session, settings: Settings, stores: Stores, user: User,
                  before: int | None) -> tuple[list[int], list[Any]]:
    from kiln.federation import publishing

    query = media_service.published_query(owner_id=user.id)
    if before is not None:
        query = query.where(MediaEntry.id < before)
    rows = list(session.scalars(query.order_by(MediaEntry.id.desc()).limit(COLLECTION_PAGE + 1)))
    return [m.id for m in rows], [{k: v for k, v in publishing.create(settings, stores, m).items()
                                   if k != "@context"} for m in rows[:COLLECTION_PAGE] if publishing.federated(m)]


def _people_items(session: Session, settings: Settings, user: User, which: str,
                  before: int | None) -> tuple[list[int], list[Any]]:
    mine = Follow.followee_id if which == "followers" else Follow.follower_id
    query = select(Follow).where(mine == user.id, Follow.accepted.is_(True))
    if before is not None:
        query = query.where(Follow.id < before)
    rows = list(session.scalars(query.order_by(Follow.id.desc()).limit(COLLECTION_PAGE + 1)))
    ids = {f.follower_id or 0 for f in rows} | {f.followee_id or 0 for f in rows}
    shown = select(User.id, User.username).where(User.id.in_(ids), not_banned(utcnow()))
    names = {user_id: name for user_id, name in session.execute(shown)}
    items = []
    for f in rows[:COLLECTION_PAGE]:
        if which == "followers":
            other = f.follower_uri or (actor_id(settings, names[f.follower_id]) if f.follower_id in names else None)
        else:
            other = f.followee_uri or (actor_id(settings, names[f.followee_id]) if f.followee_id in names else None)
        if other:
            items.append(other)
    return [f.id for f in rows], items
