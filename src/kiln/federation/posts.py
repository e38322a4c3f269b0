"""Posts of accounts followed elsewhere: a ``Create`` of a Note, Article, Page, Image, Video or Audio
from an actor someone here follows (and not a reply to a Kiln item, which becomes a comment) is kept
as a ``RemotePost``; ``Update`` edits it, ``Delete`` removes it, and the actor's deletion or a block of
its server removes all of theirs (kiln.federation.receiving.forget).

Kept: only posts addressed to the public (``as:Public`` in ``to`` or ``cc``) or to the author's
followers; a post addressed to people only (a direct message) is not. Its ``content`` goes through the
comments' allow-list; its attachments are recorded as declared and copied into Kiln's storage by a
background job (kiln.federation.media_cache), after the commit.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any

from markupsafe import escape
from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session

from kiln.db.base import utcnow
from kiln.federation import media_cache, moderation
from kiln.federation.models import URI_MAX, InboxActivity, RemoteActor, RemoteAttachment, RemotePost
from kiln.media.text import html_text, sanitise_html
from kiln.social.models import Follow

if TYPE_CHECKING:
    from kiln.runtime import Runtime

POST_TYPES = ("Note", "Article", "Page", "Image", "Video", "Audio")
PUBLIC = ("https://www.w3.org/ns/activitystreams#Public", "as:Public", "Public")
CONTENT_MAX = 50_000  # characters of HTML, after the allow-list
SUMMARY_MAX = 500
ATTACHMENTS_MAX = 8
_BLURHASH = re.compile(r"[0-9A-Za-z#$%*+,\-.:;=?@\[\]^_{|}~]{6,100}")
_KINDS = {"Image": "image", "Video": "video", "Audio": "audio"}


def _uri(value: Any) -> str:
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and 0 < len(value) <= URI_MAX else ""


def _web(value: Any) -> str:
    """An http(s) address given as a string, a Link (``href``) or a list of them (the first that is one)."""
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, dict):
            item = item.get("href")
        if isinstance(item, str) and len(item) <= URI_MAX and item.startswith(("https://", "http://")):
            return item
    return ""


def _addresses(*objects: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for obj in objects:
        for field in ("to", "cc"):
            value = obj.get(field)
            found.update(v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str))
    return found


def addressed_to_many(actor_uri: str, activity: dict[str, Any], post: dict[str, Any]) -> bool:
    """Public, unlisted or followers-only: ``as:Public`` in ``to``/``cc``, or the author's followers
    (its ``/followers`` collection on its own server)."""
    named = _addresses(activity, post)
    if named & set(PUBLIC):
        return True
    home = moderation.host_of(actor_uri)
    return any(address.rstrip("/").endswith("/followers") and moderation.host_of(address) == home for address in named)


def followed(session: Session, actor_uri: str) -> bool:
    return session.scalar(select(exists().where(Follow.followee_uri == actor_uri))) or False


def _when(value: Any) -> dt.datetime:
    """The post's time, never later than now (a post dated ahead would stay on top)."""
    now = utcnow()
    if isinstance(value, str) and len(value) <= 40:
        try:
            when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return now
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        return min(when, now)
    return now


def _content(post: dict[str, Any]) -> str | None:
    """The HTML after the allow-list; a post with no ``content`` but a ``name`` (a PeerTube video, a
    PixelFed picture) shows its name. None when it is longer than Kiln keeps."""
    content = post.get("content")
    if not isinstance(content, str) or not content.strip():
        name = post.get("name")
        content = f"<p>{escape(name)}</p>" if isinstance(name, str) and name.strip() else ""
    if len(content) > CONTENT_MAX * 4:
        return None
    clean = str(sanitise_html(content)).strip()
    return clean if len(clean) <= CONTENT_MAX else None


def _number(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= 100_000 else None


def _attachments(post: dict[str, Any]) -> list[RemoteAttachment]:
    declared = post.get("attachment")
    found: list[RemoteAttachment] = []
    for item in (declared if isinstance(declared, list) else [declared])[:ATTACHMENTS_MAX * 4]:
        if not isinstance(item, dict):
            continue
        url = _web(item.get("url")) or _web(item.get("href"))
        media_type = item.get("mediaType")
        media_type = media_type.lower()[:100] if isinstance(media_type, str) else ""
        kind = media_type.split("/")[0] if media_type.split("/")[0] in ("image", "video", "audio") else \
            _KINDS.get(str(item.get("type")), "other")
        if not url:
            continue
        name = item.get("name")
        blurhash = item.get("blurhash")
        found.append(RemoteAttachment(
            position=len(found), kind=kind, media_type=media_type, url=url,
            name=html_text(name)[:1500] if isinstance(name, str) else "",
            width=_number(item.get("width")), height=_number(item.get("height")),
            blurhash=blurhash if isinstance(blurhash, str) and _BLURHASH.fullmatch(blurhash) else "",
            state="waiting" if kind != "other" else "refused"))
        if len(found) >= ATTACHMENTS_MAX:
            break
    return found


def _fill(post_row: RemotePost, post: dict[str, Any]) -> bool:
    content = _content(post)
    if content is None:
        return False
    summary = post.get("summary")
    post_row.content = content
    post_row.summary = html_text(summary)[:SUMMARY_MAX] if isinstance(summary, str) else ""
    post_row.sensitive = post.get("sensitive") is True or bool(post_row.summary)
    post_row.url = _web(post.get("url")) or (post_row.uri if post_row.uri.startswith(("https://", "http://")) else "")
    post_row.type = str(post.get("type"))[:20]
    return True


def keep(rt: Runtime, session: Session, row: InboxActivity, post: dict[str, Any]) -> str:
    """A ``Create`` of a post by its author (``receiving`` checked that ``post`` is the sender's own)."""
    actor = session.scalar(select(RemoteActor).where(RemoteActor.uri == row.actor_uri))
    if actor is None:
        return "unknown_actor"
    if not followed(session, actor.uri):
        return "not_followed"
    if not addressed_to_many(actor.uri, row.payload, post):
        return "direct"
    address = _uri(post.get("id"))
    if session.scalar(select(RemotePost.id).where(RemotePost.uri == address)) is not None:
        return "duplicate"
    post_row = RemotePost(actor_id=actor.id, uri=address, published=_when(post.get("published")))
    if not _fill(post_row, post):
        return "too_long"
    post_row.attachments = _attachments(post)
    if not post_row.content and not post_row.attachments:
        return "empty"
    session.add(post_row)
    session.flush()  # the same post twice at once: the second fails on uri's uniqueness, its retry finds the first
    media_cache.cache_later(session, post_row)
    return "post_kept"


def theirs(session: Session, row: InboxActivity, address: str) -> RemotePost | None:
    actor = session.scalar(select(RemoteActor).where(RemoteActor.uri == row.actor_uri))
    if actor is None or not address:
        return None
    return session.scalar(select(RemotePost).where(RemotePost.uri == address, RemotePost.actor_id == actor.id))


def edit(rt: Runtime, session: Session, post_row: RemotePost, post: dict[str, Any]) -> str:
    """``Update``: the post as it is now; attachments that changed are fetched again."""
    if not _fill(post_row, post):
        return "too_long"
    post_row.edited = utcnow()
    fresh = _attachments(post)
    if [(a.url, a.kind) for a in fresh] != [(a.url, a.kind) for a in post_row.attachments]:
        post_row.attachments = fresh
        session.flush()
        media_cache.cache_later(session, post_row)
    else:
        for old, new in zip(post_row.attachments, fresh, strict=True):
            old.name, old.width, old.height, old.blurhash = new.name, new.width, new.height, new.blurhash
    return "post_edited"


def forget(session: Session, actor: RemoteActor) -> None:
    """All of ``actor``'s posts go (their cached files with the next ``kiln gc``)."""
    session.execute(delete(RemotePost).where(RemotePost.actor_id == actor.id))
