"""The old site's URLs, kept working: a permanent redirect from each path an import recorded
(``LegacyPath``) to what it is in Kiln now.

A plain ASGI middleware, inside the others (so its answers get the site's headers and may be cached
like any page). It asks the database only where Kiln itself has nothing: a GET to a path ending in
``/`` (no Kiln URL does; MediaGoblin's all do), looked up before Kiln's own slash redirect, and any GET
Kiln answers 404 (MediaGoblin's file URLs, ``/mgoblin_media/...``) or 422 (an old path without its
slash, ``/u/alice/m/harbour-dusk``, that Kiln reads as an item number that is not one). The target is
worked out when asked, from the thing as it is now: something private, removed or deleted since is
not redirected to (the request gets Kiln's 404, as if the path had never been recorded), and an item's files lead to its
current files only while it is public (an unlisted item's files carry a secret part in their names).
"""

from __future__ import annotations

import logging
from urllib.parse import quote, urlencode

import anyio
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from starlette.datastructures import URL
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kiln.accounts.models import User
from kiln.imports.models import LegacyPath
from kiln.media.models import MediaEntry
from kiln.media.visibility import visible
from kiln.runtime import Runtime
from kiln.social.models import Collection, Comment

log = logging.getLogger(__name__)
# An old file's role and the Kiln renditions that stand for it, best first.
FILE_RENDITIONS = {"thumb": ("thumbnail",), "medium": ("medium", "thumbnail")}


def _media_target(rt: Runtime, media: MediaEntry | None, role: str, base: str) -> str | None:
    if media is None or not visible(media, None):
        return None
    page = f"/u/{quote(media.owner.username)}/m/{media.id}"
    if role in FILE_RENDITIONS and media.visibility == "public":
        from kiln.media.services import rendition_url

        for name in FILE_RENDITIONS[role]:
            if (rendition := media.rendition(name)) is not None:
                return rendition_url(rt, rendition.key, base)
    return page


def target(rt: Runtime, session: Session, path: str, base: str) -> str | None:
    """Where ``path`` of the old site is now, or None (not recorded, or not for everyone to see now)."""
    row = session.get(LegacyPath, path)
    if row is None and not path.endswith("/"):  # the old site added the slash itself
        row = session.get(LegacyPath, path + "/")
    if row is None:
        return None
    if row.target_type == "user":
        user = session.get(User, row.target_id)
        if user is None or user.pending_approval:
            return None
        name = quote(user.username)
        if row.role == "feed":
            return f"/feeds/u/{name}/atom"
        if row.role == "collections":
            return f"/u/{name}/collections"
        if row.role.startswith("tag:"):
            return f"/u/{name}?{urlencode({'tag': row.role[4:]})}"
        return f"/u/{name}"
    if row.target_type == "media":
        return _media_target(rt, session.get(MediaEntry, row.target_id), row.role, base)
    if row.target_type == "comment":
        comment = session.get(Comment, row.target_id)
        if comment is None or comment.deleted is not None or comment.held:
            return None
        page = _media_target(rt, session.get(MediaEntry, comment.media_id), "page", base)
        if page is None:
            return None
        from kiln.social.comments import page_of

        before = page_of(session, comment)
        return f"{page}{f'?comments_before={before}' if before else ''}#comment-{comment.id}"
    if row.target_type == "collection":
        collection = session.get(Collection, row.target_id)
        if collection is None or collection.removed is not None or collection.visibility == "private":
            return None
        return f"/feeds/c/{collection.id}/atom" if row.role == "feed" else f"/c/{collection.id}"
    if row.target_type == "tag":
        from kiln.media.models import Tag

        tag = session.get(Tag, row.target_id)
        return None if tag is None else f"/tag/{quote(tag.slug)}"
    return None


class LegacyRedirects:
    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app, self.rt = app, runtime

    def _lookup(self, path: str, base: str) -> str | None:
        try:
            with self.rt.sessions() as session:
                return target(self.rt, session, path, base)
        except SQLAlchemyError:  # the database is away: Kiln's own answer stands
            log.warning("legacy path %s not looked up: the database did not answer", path, exc_info=True)
            return None

    async def _find(self, scope: Scope) -> str | None:
        url = URL(scope=scope)
        base = f"{url.scheme}://{url.netloc}"
        return await anyio.to_thread.run_sync(self._lookup, scope["path"][:1000], base)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if len(path) > 1 and path.endswith("/"):
            if (location := await self._find(scope)) is not None:
                await _moved(send, location)
                return
            await self.app(scope, receive, send)
            return
        replaced = False

        async def watch(message: Message) -> None:
            nonlocal replaced
            if (message["type"] == "http.response.start" and message["status"] in (404, 422)
                    and (location := await self._find(scope)) is not None):
                replaced = True
                await _moved(send, location)
                return
            if not replaced:
                await send(message)

        await self.app(scope, receive, watch)


async def _moved(send: Send, location: str) -> None:
    await send({"type": "http.response.start", "status": 301,
                "headers": [(b"location", location.encode("latin-1", "replace")), (b"content-length", b"0"),
                            (b"cache-control", b"public, max-age=3600")]})
    await send({"type": "http.response.body", "body": b""})
