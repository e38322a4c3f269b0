"""Serving renditions: the local public store at /media, with byte ranges, ETags and long caching
(a front web server can serve DATA/media/public there directly instead, docs/deploy.md); and a
private item's renditions at /m/{id}/r/{name}, from any backend, after checking who is asking."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response, StreamingResponse

from kiln.errors import NotFound
from kiln.media.visibility import private_rendition
from kiln.mediatypes import inline_types, served_types
from kiln.storage import PUBLIC_MEDIA_PATH
from kiln.storage.base import CHUNK, InvalidKey, NoSuchFile, Storage
from kiln.web.deps import DB, RT, CurrentUser, RowId, ShareToken

router = APIRouter(include_in_schema=False)
# The types Kiln serves and those shown inline come from the kinds' declarations (served_types,
# inline_types in kiln/mediatypes); tests/test_plugins.py checks contrib/nginx/kiln.conf says the same.
# Rendition keys name their spec, so the bytes behind a URL never change.
HEADERS = {"Cache-Control": "public, max-age=31536000, immutable",
           "Content-Security-Policy": "default-src 'none'; sandbox", "X-Content-Type-Options": "nosniff"}
# A private item's bytes must not outlive access in any cache, shared or not.
PRIVATE_HEADERS = {**HEADERS, "Cache-Control": "private, no-store"}


@router.get(PUBLIC_MEDIA_PATH + "/{path:path}")
async def public_file(path: str, request: Request, rt: RT) -> Response:
    """Never asks the database: the public store is looked up on the event loop, where ``Stores``
    answers with the assignment this process last read and never waits; the file is found on a thread."""
    parts = [p for p in path.split("/") if p]
    store = rt.stores.public
    if not store.is_local or not parts:
        raise NotFound("There is no such file.")
    try:
        local, stat = await anyio.to_thread.run_sync(_find_public, store, parts)
    except (InvalidKey, FileNotFoundError, NoSuchFile) as exc:
        raise NotFound("There is no such file.") from exc
    media_type = served_types().get(local.suffix.lower(), "application/octet-stream")
    headers = {**HEADERS, **_disposition(parts[-1], media_type)}
    response = FileResponse(local, media_type=media_type, headers=headers, stat_result=stat)
    etag = response.headers["etag"]
    sent = request.headers.get("if-none-match", "")
    if etag in (tag.strip() for tag in sent.split(",")):
        return Response(status_code=304, headers={**headers, "ETag": etag})
    return response


def _find_public(store: Storage, parts: list[str]) -> tuple[Path, os.stat_result]:
    if not store.exists(parts):
        raise NoSuchFile("There is no such file.")
    local = store.local_path(parts)
    return local, os.stat(local)


def _disposition(filename: str, media_type: str) -> dict[str, str]:
    """Originals, and anything that is not a picture, a video or a sound, are downloads: the
    browser saves them instead of showing them from Kiln's site."""
    suffix = os.path.splitext(filename)[1].lower()
    if filename.startswith("original") or suffix not in inline_types():
        return {"Content-Disposition": f'attachment; filename="{filename.split("-")[0]}{suffix}"'}
    return {}


@router.get("/m/{media_id}/r/{name}")
def checked_file(media_id: RowId, name: str, session: DB, rt: RT, user: CurrentUser,
                 share: ShareToken = None) -> Response:
    """A rendition fetched through the app: 404 to anyone who may not see the item (``share``: a
    collection's share link, which may open it; see kiln.social.collections)."""
    rendition = private_rendition(session, media_id, name, user, share)
    key = list(rendition.key)
    store = rt.stores.public
    suffix = os.path.splitext(key[-1])[1].lower()
    media_type = served_types().get(suffix, "application/octet-stream")
    return serve_stored(store, key, media_type, {**PRIVATE_HEADERS, **_disposition(key[-1], media_type)})


def serve_stored(store: Storage, key: list[str], media_type: str, headers: dict[str, str]) -> Response:
    """A stored file through the app: sent from disk for a local store, else streamed from the store;
    a missing file is 404."""
    try:
        if store.is_local:
            local = store.local_path(key)
            return FileResponse(local, media_type=media_type, headers=headers, stat_result=os.stat(local))
        size = store.size(key)
        stream = store.open(key)
    except (InvalidKey, FileNotFoundError, NoSuchFile) as exc:
        raise NotFound("There is no such file.") from exc
    return StreamingResponse(_chunks(stream), media_type=media_type,
                             headers={**headers, "Content-Length": str(size)})


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    with stream:
        while chunk := stream.read(CHUNK):
            yield chunk
