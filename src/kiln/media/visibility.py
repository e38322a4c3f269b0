"""Who may see a media item, and where a viewer fetches its renditions.

public: listed everywhere. unlisted: reachable by its link, absent from every listing. private: the
owner and admins only; everyone else (moderators included) gets 404, never 403, so existence is not
revealed. A private item's renditions are served only through the app (``/m/{id}/r/{name}``), which
checks access; their stored keys carry a token rotated when the item becomes private, so the public
URLs fetched before stop working on every storage backend.

An item removed by the moderators (``MediaEntry.removed``, kiln.moderation.removal) is seen by admins
only, whatever its visibility: its owner is told it was removed and why, but not shown it. Removal
rotates the key token as becoming private does, and its renditions are then served only through the
app's checked route.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

from sqlalchemy.orm import Session, object_session

from kiln.accounts.models import User
from kiln.errors import InvalidInput, NotFound
from kiln.media.models import VISIBILITIES, MediaEntry, MediaState, Rendition, new_key_token
from kiln.runtime import Runtime
from kiln.storage.base import Key


def check_visibility(value: str) -> str:
    if value not in VISIBILITIES:
        raise InvalidInput("Choose public, unlisted or private.", code="bad_visibility")
    return value


def is_owner_or_admin(media: MediaEntry, viewer: User | None) -> bool:
    return viewer is not None and (viewer.id == media.owner_id or viewer.is_admin)


def visible(media: MediaEntry, viewer: User | None) -> bool:
    """Processed public and unlisted media is for everyone; private and unfinished items for the
    owner and admins only; removed items for admins only. Nothing of someone who blocked the viewer is
    (kiln.social.blocks)."""
    if media.removed is not None:
        return viewer is not None and viewer.is_admin
    if viewer is not None and viewer.hiding and _blocks_viewer(media, viewer):
        return False
    if media.state == MediaState.PROCESSED and media.visibility != "private":
        return True
    return is_owner_or_admin(media, viewer)


def _blocks_viewer(media: MediaEntry, viewer: User) -> bool:
    from kiln.social.blocks import blocks_viewer  # social builds on media, not the reverse

    return blocks_viewer(media.owner_id, viewer, object_session(viewer) or object_session(media))


def change_visibility(rt: Runtime, media: MediaEntry, value: str) -> list[Key]:
    """Set the visibility (the caller commits). Becoming private rotates the key token and copies
    every rendition to a key with the new token; returns the old keys, which the caller deletes
    only after the commit, so a crash leaves stray copies (``kiln storage gc``), never a row
    pointing at nothing."""
    check_visibility(value)
    becoming_private = value == "private" and media.visibility != "private"
    media.visibility = value
    if not becoming_private:
        return []
    return rotate_keys(rt, media)


def served_privately(media: MediaEntry) -> bool:
    """Whether the item's renditions go through the app's checked route (private or removed)."""
    return media.visibility == "private" or media.removed is not None


def rotate_keys(rt: Runtime, media: MediaEntry) -> list[Key]:
    """A new key token, and every rendition copied to a key with it (the caller commits, then deletes
    the old keys it returns): URLs fetched before stop working."""
    media.key_token = new_key_token()
    old_keys: list[Key] = []
    for rendition in media.renditions:
        new_key = media.rendition_key(rendition.key[-1])
        with rt.stores.public.open(rendition.key) as fh:
            rt.stores.public.save(new_key, fh)
        old_keys.append(list(rendition.key))
        rendition.key = new_key
    return old_keys


def private_route(media: MediaEntry, rendition: Rendition) -> str:
    return f"/m/{media.id}/r/{rendition.name}"


def rendition_src(rt: Runtime, media: MediaEntry, rendition: Rendition, base: str = "") -> str:
    """The URL a viewer fetches a rendition from: the store's URL, or the app's checked route for
    a private item (only its owner and admins are ever shown one). Relative URLs are made absolute
    with ``base`` (the site's address) when it is given."""
    if served_privately(media):
        return base + private_route(media, rendition)
    url = rt.stores.public.url(rendition.key)
    return url if "://" in url else base + url


def src_for(rt: Runtime, items: Iterable[MediaEntry], share: str | None = None) -> Callable[[Any], str]:
    """A ``media_src(key)`` for templates that sends the renditions of the private items among
    ``items`` to the app's route (carrying the collection share link ``share`` they are seen
    through, if any); other keys go to the public store."""
    tail = f"?share={quote(share, safe='')}" if share else ""
    private = {tuple(r.key): private_route(m, r) + tail for m in items if served_privately(m)
               for r in m.renditions}

    def media_src(key: Any) -> str:
        return private.get(tuple(key)) or rt.stores.public.url(key)

    return media_src


def private_rendition(session: Session, media_id: int, name: str, viewer: User | None,
                      share: str | None = None) -> Rendition:
    """The rendition behind ``/m/{id}/r/{name}``, for a viewer allowed to see the item; 404 otherwise.
    ``share`` is a collection's share link token (``?share=``): it must be live, and then also shows
    the items it opens (kiln.social.collections); a dead one answers 404 whatever the item."""
    media = session.get(MediaEntry, media_id)
    rendition = media.rendition(name) if media is not None else None
    if media is None or rendition is None or not (visible_with_share(session, media, viewer, share)
                                                  or _reported_to_moderator(session, media, viewer)):
        raise NotFound("There is no such file.")
    return rendition


def _reported_to_moderator(session: Session, media: MediaEntry, viewer: User | None) -> bool:
    """Moderators see a reported item's files (private or removed since) to judge the case."""
    from kiln.moderation.reports import is_reported  # moderation builds on media, not the reverse

    return viewer is not None and viewer.has("moderator") and is_reported(session, "media", media.id)


def visible_with_share(session: Session, media: MediaEntry, viewer: User | None, share: str | None) -> bool:
    """``visible``, asked with a collection's share link token (or None). A token that is not live
    (revoked, expired, mistyped) hides everything, so a dead link answers 404 everywhere."""
    if share is None or media.removed is not None:
        return visible(media, viewer)
    from kiln.social.shares import live_share, shared_item  # social builds on media, not the reverse

    if live_share(session, share) is None or (viewer is not None and viewer.hiding and _blocks_viewer(media, viewer)):
        return False  # a block wins over a share link too
    return visible(media, viewer) or shared_item(session, media, share)
