"""A person's data as one zip, streamed: ``plan`` reads the rows in one short transaction (the
caller ends it), then ``zip_stream`` sends the JSON documents and each original, read from whichever
store holds it, a chunk at a time. Nothing is built on disk or held whole in memory.

The zip is made with zipstream-ng, stored without compression (media files are compressed
already), so its length is known before the first byte (``Content-Length``, a download that can
show its progress), and with zip64 records when it passes 4 GiB.

What it holds::

    profile.json        the account: name, display name, address, about, links, settings
    profile/avatar.webp the profile picture, where there is one
    media.json          every item: title, description, alt text, tags, licence, visibility,
                        dates, size, sha256, and the file it is stored as in the zip
    media/ID/NAME       each original as it was uploaded
    media/ID/description.md   the description, where there is one
    comments.json       the comments they wrote (still shown)
    collections.json    their collections, items in order with notes
    favourites.json     the items they favourited that they may still see
    following.json      whom they follow
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from zipstream import ZIP_STORED, ZipStream

from kiln.accounts.models import User
from kiln.errors import KilnError
from kiln.media.licenses import get_license
from kiln.media.models import MediaEntry
from kiln.media.services import media_url
from kiln.media.visibility import visible
from kiln.mediatypes import extension_for
from kiln.moderation import audit
from kiln.runtime import Runtime
from kiln.social.models import Collection, CollectionItem, Comment, Favourite, Follow
from kiln.storage.base import CHUNK, NoSuchFile


class ExportBroken(KilnError):
    code = "export_broken"
    status = 503


@dataclass(frozen=True)
class Original:
    arcname: str
    store: str
    key: list[str]
    size: int
    sha256: str


@dataclass
class Plan:
    """Everything the zip will hold, read from the database: small JSON documents, and where each
    original is (read only while the zip is sent)."""

    username: str
    documents: dict[str, bytes] = field(default_factory=dict)
    originals: list[Original] = field(default_factory=list)
    avatar: list[str] | None = None  # the largest square of the profile picture, in the public store

    @property
    def filename(self) -> str:
        return f"kiln-{self.username}-export.zip"


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _json(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, indent=2).encode()


_UNSAFE_NAME = re.compile(r'[\\/:*?"<>|\x00-\x1f]')


def _file_name(media: MediaEntry) -> str:
    """The original's name in the zip: the name it was uploaded with, else "original.EXT"."""
    name = _UNSAFE_NAME.sub("_", media.original_name or "").strip(" .")
    return name or "original" + extension_for(media.mime_type)


def _profile(user: User) -> dict[str, Any]:
    return {"username": user.username, "display_name": user.display_name, "email": user.email, "bio": user.bio,
            "links": user.links or [], "default_license": user.default_license, "locale": user.locale,
            "created": _iso(user.created), "comments_enabled": user.comments_enabled,
            "notification_mail": user.notify_mail or {}}


def _media(rt: Runtime, session: Session, user: User, base: str, plan: Plan) -> None:
    items = []
    for media in session.scalars(select(MediaEntry).where(MediaEntry.owner_id == user.id)
                                 .order_by(MediaEntry.id)).unique():
        arcname = f"media/{media.id}/{_file_name(media)}"
        plan.originals.append(Original(arcname, media.original_store, list(media.original_key), media.size_bytes,
                                       media.sha256))
        if media.description:
            plan.documents[f"media/{media.id}/description.md"] = media.description.encode()
        lic = get_license(media.license)
        items.append({
            "id": media.id, "url": media_url(base, media), "kind": media.kind, "state": media.state,
            "title": media.title, "description": media.description, "alt_text": media.alt_text,
            "tags": [t.name for t in media.tags], "license": {"url": lic.url, "name": lic.english_abbreviation},
            "visibility": media.visibility, "comments_enabled": media.comments_enabled,
            "created": _iso(media.created), "updated": _iso(media.updated), "published": _iso(media.published),
            "original_name": media.original_name, "mime_type": media.mime_type, "size_bytes": media.size_bytes,
            "sha256": media.sha256, "width": media.width, "height": media.height, "info": media.info or {},
            "file": arcname,
        })
    plan.documents["media.json"] = _json(items)


def _comments(session: Session, user: User, base: str) -> list[dict[str, Any]]:
    rows = session.execute(select(Comment, MediaEntry).join(MediaEntry, MediaEntry.id == Comment.media_id)
                           .where(Comment.author_id == user.id, Comment.deleted.is_(None)).order_by(Comment.id))
    return [{"id": c.id, "media_id": m.id, "media_title": m.title, "media_url": media_url(base, m),
             "reply_to": c.parent_id, "body": c.body, "created": _iso(c.created), "edited": _iso(c.edited)}
            for c, m in rows]


def _collections(session: Session, user: User, base: str) -> list[dict[str, Any]]:
    out = []
    for collection in session.scalars(select(Collection).where(Collection.owner_id == user.id)
                                      .order_by(Collection.id)):
        items = session.scalars(select(CollectionItem).where(CollectionItem.collection_id == collection.id)
                                .order_by(CollectionItem.position, CollectionItem.id))
        out.append({
            "id": collection.id, "title": collection.title, "description": collection.description,
            "visibility": collection.visibility, "created": _iso(collection.created),
            "url": f"{base}/c/{collection.id}",
            "items": [{"position": number, "media_id": item.media_id, "title": item.media.title,
                       "mine": item.media.owner_id == user.id, "note": item.note, "added": _iso(item.added),
                       "url": media_url(base, item.media)}
                      for number, item in enumerate(items, start=1) if visible(item.media, user)],
        })
    return out


def _favourites(session: Session, user: User, base: str) -> list[dict[str, Any]]:
    rows = session.execute(select(Favourite, MediaEntry).join(MediaEntry, MediaEntry.id == Favourite.media_id)
                           .where(Favourite.user_id == user.id).order_by(Favourite.created))
    return [{"media_id": m.id, "title": m.title, "owner": m.owner.username, "url": media_url(base, m),
             "favourited": _iso(f.created)} for f, m in rows if visible(m, user)]


def _following(session: Session, user: User, base: str) -> list[dict[str, Any]]:
    rows = session.execute(select(Follow, User).join(User, User.id == Follow.followee_id)
                           .where(Follow.follower_id == user.id).order_by(Follow.id))
    local = [{"username": u.username, "url": f"{base}/u/{u.username}", "since": _iso(f.created)} for f, u in rows]
    elsewhere = session.scalars(select(Follow).where(Follow.follower_id == user.id, Follow.followee_uri.is_not(None),
                                                     Follow.accepted.is_(True)).order_by(Follow.id))
    return local + [{"username": None, "url": f.followee_uri, "since": _iso(f.created)} for f in elsewhere]


def plan(rt: Runtime, session: Session, user: User, base: str) -> Plan:
    """Read what the zip will hold. Only reads; the caller ends the transaction before streaming."""
    base = base.rstrip("/")
    out = Plan(user.username)
    out.documents["profile.json"] = _json(_profile(user))
    if user.avatar:
        out.avatar = list(max(user.avatar.items(), key=lambda pair: int(pair[0]))[1])
    _media(rt, session, user, base, out)
    out.documents["comments.json"] = _json(_comments(session, user, base))
    out.documents["collections.json"] = _json(_collections(session, user, base))
    out.documents["favourites.json"] = _json(_favourites(session, user, base))
    out.documents["following.json"] = _json(_following(session, user, base))
    return out


def record_export_by_other(session: Session, actor: User | None, user: User, export: Plan, via: str) -> None:
    """Someone else (an admin, a ``kiln`` command) took a copy of ``user``'s data: that goes in the
    audit log (``user.export``). The caller commits, before streaming."""
    audit.record(session, actor, "user.export", "user", user.id, target_label=user.username,
                 details={"files": len(export.originals)}, via=via)


def _read(rt: Runtime, original: Original) -> Iterator[bytes]:
    """The original's bytes, opened only when the zip reaches it (one store connection at a time).
    A file shorter or longer than its row says would make a broken zip: stop instead."""
    sent = 0
    with rt.stores.by_name(original.store).open(original.key) as source:
        while chunk := source.read(CHUNK):
            sent += len(chunk)
            if sent > original.size:
                break
            yield chunk
    if sent != original.size:
        raise ExportBroken("The file %(name)s is not the size it was uploaded with; the export stopped.",
                           name=original.arcname)


def zip_stream(rt: Runtime, export: Plan) -> ZipStream:
    """The zip, not yet made: iterating over it reads and sends one piece at a time. ``len()`` of
    it is the zip's size in bytes."""
    stream = ZipStream(compress_type=ZIP_STORED, sized=True)
    for name, data in export.documents.items():
        stream.add(data, name)
    for original in export.originals:
        stream.add(_read(rt, original), original.arcname, size=original.size)
    if export.avatar is not None:
        try:  # its size is asked of the store here, after the transaction that read the rows
            size = rt.stores.public.size(export.avatar)
        except NoSuchFile:
            return stream
        name = "profile/avatar" + PurePosixPath(export.avatar[-1]).suffix
        picture = Original(name, "public", export.avatar, size, "")
        stream.add(_read(rt, picture), picture.arcname, size=size)
    return stream
