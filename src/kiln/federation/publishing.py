"""Publishing to followers elsewhere: a public item, once processed, goes to each remote follower's
server as ``Create{Note}`` with the item's pictures or playable file in ``attachment[]`` (the form
Mastodon and PixelFed display), and the same Note is served at the item's page address.

The chain is durable: the processing transaction that publishes the item records one outbox effect
(``on_published``); that effect, after the commit, records one signed delivery per destination inbox
(a server's shared inbox once for all its followers), each retried on its own.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from markupsafe import Markup, escape
from sqlalchemy import select
from sqlalchemy.orm import Session

from kiln.config import Settings
from kiln.federation import actors, delivery
from kiln.federation.models import RemoteActor
from kiln.media.models import MediaEntry, MediaState, Rendition
from kiln.media.visibility import visible
from kiln.processing import outbox
from kiln.social.models import Follow

if TYPE_CHECKING:
    from kiln.runtime import Runtime
    from kiln.storage import Stores

EFFECT = "federation_publish"
PLAYABLE = ("video/", "audio/")


def note_id(settings: Settings, media: MediaEntry) -> str:
    return f"{settings.link_base()}/u/{media.owner.username}/m/{media.id}"


def federated(media: MediaEntry) -> bool:
    """Whether other servers may be sent or shown this item: processed, public, not removed (the one
    visibility rule, asked as an anonymous visitor; unlisted items are left for later)."""
    return media.state == MediaState.PROCESSED and media.visibility == "public" and visible(media, None)


def on_published(session: Session, settings: Settings, media: MediaEntry) -> None:
    """Called in the transaction that publishes ``media``: its delivery to followers starts after the commit."""
    if settings.federation.enabled and media.visibility == "public":
        outbox.record(session, EFFECT, {"media_id": media.id}, summary=f"federate item {media.id}")


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


def note(settings: Settings, stores: Stores, media: MediaEntry) -> dict[str, Any]:
    from kiln.media.text import render_markdown

    me = actors.actor_id(settings, media.owner.username)
    page = note_id(settings, media)
    content = Markup("<p><strong>{}</strong></p>").format(escape(media.title)) + render_markdown(media.description)
    return {"@context": actors.AS_CONTEXT, "id": page, "type": "Note", "attributedTo": me,
            "content": str(content), "url": page, "published": _iso(media.published or media.created),
            "to": [actors.PUBLIC], "cc": [f"{me}/followers"], "sensitive": False,
            "attachment": attachments(settings, stores, media),
            "tag": [{"type": "Hashtag", "name": f"#{tag.slug}", "href": f"{settings.link_base()}/tag/{tag.slug}"}
                    for tag in media.tags]}


def create(settings: Settings, stores: Stores, media: MediaEntry) -> dict[str, Any]:
    document = note(settings, stores, media)
    inner = {k: v for k, v in document.items() if k != "@context"}
    return {"@context": actors.AS_CONTEXT, "id": f"{document['id']}#create", "type": "Create",
            "actor": document["attributedTo"], "published": document["published"], "to": document["to"],
            "cc": document["cc"], "object": inner}


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
    destinations = inboxes(session, media.owner_id)
    if not destinations:
        return
    activity = create(rt.settings, rt.stores, media)
    for inbox in destinations:
        delivery.deliver_later(session, media.owner, inbox, activity)


outbox.register_local_handler(EFFECT, fan_out)
