"""Publishing to followers elsewhere: a public or unlisted item, once processed, goes to each remote
follower's server as ``Create{Note}`` with the item's pictures or playable file in ``attachment[]`` (the
form Mastodon and PixelFed display), and the same Note is served at the item's page address. Later
changes follow it: an edit sends ``Update{Note}``; deleting, removing or making the item private sends
``Delete`` with a ``Tombstone`` (a deleted or removed item's address answers 410 from then on, a
private one's 404 as always); making it public again, or
restoring it, sends ``Create`` again.

The chain is durable: the transaction that changes the item records one outbox effect (``on_published``,
``on_changed``, ``on_deleted``); that effect, after the commit, looks at the item as it is *then* and
records one signed delivery per destination inbox (a server's shared inbox once for all its followers),
each retried on its own.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from markupsafe import Markup, escape
from sqlalchemy import bindparam, select
from sqlalchemy import delete as sa_delete
from sqlalchemy.orm import Session

from kiln.accounts.models import User
from kiln.config import Settings
from kiln.db.base import utcnow
from kiln.federation import actors, delivery
from kiln.federation.models import RemoteActor, Tombstone
from kiln.media.models import MediaEntry, MediaState, Rendition
from kiln.media.visibility import visible
from kiln.processing import outbox
from kiln.social.models import Follow

if TYPE_CHECKING:
    from kiln.runtime import Runtime
    from kiln.storage import Stores

EFFECT = "federation_publish"
CHANGE_EFFECT = "federation_change"
PLAYABLE = ("video/", "audio/")
AUDIENCES = ("public", "unlisted")


def note_id(settings: Settings, media: MediaEntry) -> str:
    return item_address(settings, media.owner.username, media.id)


def item_address(settings: Settings, username: str, media_id: int) -> str:
    return f"{settings.link_base()}/u/{username}/m/{media_id}"


def federated(media: MediaEntry) -> bool:
    """Whether other servers may be sent or shown this item (its Note at ``/ap/u/NAME/m/ID``, and
    wherever else it is listed, as an album's items): processed, public or unlisted, not removed (the
    one visibility rule, asked as an anonymous visitor), its owner an account others may find
    (``actors.findable``: not banned, not waiting for approval)."""
    return (media.state == MediaState.PROCESSED and media.visibility in AUDIENCES and visible(media, None)
            and actors.findable(media.owner))


def audience(media: MediaEntry | None) -> str | None:
    """What other servers were (or would be) shown of ``media``: "public", "unlisted", or None."""
    return media.visibility if media is not None and federated(media) else None


def on_published(session: Session, settings: Settings, media: MediaEntry) -> None:
    """Called in the transaction that publishes ``media``: its delivery to followers starts after the commit.
    An owner nobody elsewhere follows costs one indexed look, not an effect to run (most items, on most
    sites: the engine's per-item cost, docs/processing.md)."""
    if settings.federation.enabled and media.visibility in AUDIENCES and _followed_elsewhere(session, media.owner_id):
        outbox.record(session, EFFECT, {"media_id": media.id}, summary=f"federate item {media.id}")


def _followed_elsewhere(session: Session, owner_id: int) -> bool:
    return session.scalar(_FOLLOWED_ELSEWHERE, {"owner_id": owner_id}) is not None


# Built once: asked for every item published (building it cost more than running it).
_FOLLOWED_ELSEWHERE = (select(Follow.id).where(Follow.followee_id == bindparam("owner_id"),
                                               Follow.follower_uri.is_not(None)).limit(1))


def on_changed(session: Session, media: MediaEntry, before: str | None) -> None:
    """Called in the transaction that edits, removes, restores or changes the visibility of ``media``,
    with its ``audience`` from before the change: after the commit, followers are sent an ``Update``, a
    ``Delete`` or a ``Create``, whichever the item as it is then calls for (nothing for an item never
    shown elsewhere, nor an unfinished one; nothing when federation is off)."""
    if before is None and media.published is None:
        return
    outbox.record(session, CHANGE_EFFECT, {"media_id": media.id, "owner_id": media.owner_id, "before": before},
                  summary=f"federate the change of item {media.id}")


def on_deleted(session: Session, media: MediaEntry) -> None:
    """Called in the transaction that deletes ``media`` (before the row goes)."""
    if audience(media) is not None:
        on_changed(session, media, audience(media))


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _absolute(settings: Settings, url: str) -> str:
    return url if "://" in url else settings.link_base() + url


def _attachment(settings: Settings, stores: Stores, media: MediaEntry, rendition: Rendition) -> dict[str, Any]:
    kind = "Image" if rendition.mime_type.startswith("image/") else "Document"
    found: dict[str, Any] = {"type": kind, "mediaType": rendition.mime_type,
                             "url": _absolute(settings, stores.public.url(list(rendition.key))), "name": media.alt}
    if rendition.width and rendition.height:
        found.update(width=rendition.width, height=rendition.height)
    blurhash = (media.info or {}).get("blurhash")
    if isinstance(blurhash, str) and kind == "Image":
        found["blurhash"] = blurhash
    return found


def attachments(settings: Settings, stores: Stores, media: MediaEntry) -> list[dict[str, Any]]:
    """A playable rendition for video and audio (the widest), else the page's picture (``medium``)."""
    playable = sorted((r for r in media.renditions if r.mime_type.startswith(PLAYABLE)),
                      key=lambda r: (r.width or 0, r.size_bytes), reverse=True)
    picture = media.rendition("medium") or media.rendition("thumbnail")
    chosen = playable[:1] or ([picture] if picture is not None else [])
    return [_attachment(settings, stores, media, r) for r in chosen]


def _addressed(settings: Settings, media: MediaEntry) -> dict[str, list[str]]:
    """Public: to everyone, followers in cc. Unlisted: to followers, Public in cc only (shown to whoever
    has the link, left out of public timelines)."""
    followers = f"{actors.actor_id(settings, media.owner.username)}/followers"
    if media.visibility == "unlisted":
        return {"to": [followers], "cc": [actors.PUBLIC]}
    return {"to": [actors.PUBLIC], "cc": [followers]}


# A Note's terms beyond ActivityStreams' own, named as Mastodon names them: without them a JSON-LD
# reader (bovine, for one) takes "Hashtag", "sensitive" and "blurhash" for unknown terms.
NOTE_CONTEXT = [actors.AS_CONTEXT, {"Hashtag": "as:Hashtag", "sensitive": "as:sensitive",
                                    "toot": "http://joinmastodon.org/ns#", "blurhash": "toot:blurhash"}]


def note(settings: Settings, stores: Stores, media: MediaEntry) -> dict[str, Any]:
    from kiln.media.text import render_markdown

    me = actors.actor_id(settings, media.owner.username)
    page = note_id(settings, media)
    content = Markup("<p><strong>{}</strong></p>").format(escape(media.title)) + render_markdown(media.description)
    document = {"@context": NOTE_CONTEXT, "id": page, "type": "Note", "attributedTo": me,
                "content": str(content), "url": page, "published": _iso(media.published or media.created),
                **_addressed(settings, media), "sensitive": False,
                "attachment": attachments(settings, stores, media),
                "tag": [{"type": "Hashtag", "name": f"#{tag.slug}", "href": f"{settings.link_base()}/tag/{tag.slug}"}
                        for tag in media.tags]}
    if media.updated and media.published and media.updated > media.published:
        document["updated"] = _iso(media.updated)
    return document


def create(settings: Settings, stores: Stores, media: MediaEntry, kind: str = "Create") -> dict[str, Any]:
    """The item's Note wrapped in a ``Create`` (or an ``Update``, ``kind``)."""
    document = note(settings, stores, media)
    inner = {k: v for k, v in document.items() if k != "@context"}
    stamp = f"#{kind.lower()}" if kind == "Create" else f"#{kind.lower()}-{int(utcnow().timestamp())}"
    return {"@context": NOTE_CONTEXT, "id": f"{document['id']}{stamp}", "type": kind,
            "actor": document["attributedTo"], "published": document["published"], "to": document["to"],
            "cc": document["cc"], "object": inner}


def delete(settings: Settings, owner: User, address: str) -> dict[str, Any]:
    """``Delete`` of a Note, its object a ``Tombstone`` (as Mastodon sends it)."""
    me = actors.actor_id(settings, owner.username)
    return {"@context": actors.AS_CONTEXT, "id": f"{address}#delete-{int(utcnow().timestamp())}", "type": "Delete",
            "actor": me, "to": [actors.PUBLIC], "cc": [f"{me}/followers"],
            "object": {"id": address, "type": "Tombstone"}}


def tombstone(session: Session, address: str) -> dt.datetime | None:
    """When the Note at ``address`` was deleted, or None when it was not."""
    return session.scalar(select(Tombstone.deleted).where(Tombstone.uri == address))


def inboxes(session: Session, owner_id: int) -> list[str]:
    """Where the owner's remote followers receive: each server's shared inbox once, else each inbox."""
    rows = session.execute(select(RemoteActor.inbox, RemoteActor.shared_inbox)
                           .join(Follow, Follow.follower_uri == RemoteActor.uri)
                           .where(Follow.followee_id == owner_id))
    return sorted({shared or inbox for inbox, shared in rows})


def fan_out(rt: Runtime, session: Session, payload: dict[str, Any]) -> None:
    """The effect ``on_published`` records: one delivery per destination (only writes rows: safe to run
    twice, though a second run would send the Create again; the outbox runs it once)."""
    media = session.get(MediaEntry, payload["media_id"])
    if media is None or not federated(media):
        return
    _send(session, media.owner, inboxes(session, media.owner_id), create(rt.settings, rt.stores, media))


def _send(session: Session, owner: User, destinations: list[str], activity: dict[str, Any]) -> None:
    for inbox in destinations:
        delivery.deliver_later(session, owner, inbox, activity)


def send_change(rt: Runtime, session: Session, payload: dict[str, Any]) -> None:
    """The effect ``on_changed`` records: Update, Delete or Create, by the item's audience before the
    change and now."""
    if not rt.settings.federation.enabled:
        return
    owner = session.get(User, payload["owner_id"])
    if owner is None:  # the account went too: nobody to send as
        return
    media = session.get(MediaEntry, payload["media_id"])
    before, now = payload.get("before"), audience(media)
    address = item_address(rt.settings, owner.username, payload["media_id"])
    destinations = inboxes(session, owner.id)
    if now is None:
        if before is not None:
            # Deleted or removed: its address says 410 Gone from now on. Made private: 404, as for
            # anything private (a 410 would tell everyone it still exists).
            if (media is None or media.removed is not None) and tombstone(session, address) is None:
                session.add(Tombstone(uri=address))
            _send(session, owner, destinations, delete(rt.settings, owner, address))
        return
    assert media is not None
    session.execute(sa_delete(Tombstone).where(Tombstone.uri == address))
    kind = "Update" if before is not None else "Create"
    _send(session, owner, destinations, create(rt.settings, rt.stores, media, kind))


outbox.register_local_handler(EFFECT, fan_out)
outbox.register_local_handler(CHANGE_EFFECT, send_change)
