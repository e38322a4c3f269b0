"""Serving the local public store (renditions), with byte ranges, ETags and long caching.

A front web server can serve DATA/media/public at /media directly instead (docs/deploy.md)."""

from __future__ import annotations

import os

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from kiln.errors import NotFound
from kiln.storage import PUBLIC_MEDIA_PATH
from kiln.storage.base import InvalidKey
from kiln.web.deps import RT

router = APIRouter(include_in_schema=False)
SAFE_TYPES = {".jpg": "image/jpeg", ".webp": "image/webp", ".png": "image/png", ".gif": "image/gif",
              ".mp4": "video/mp4", ".webm": "video/webm", ".m4a": "audio/mp4", ".ogg": "audio/ogg",
              ".opus": "audio/ogg", ".mp3": "audio/mpeg", ".pdf": "application/pdf",
              ".txt": "text/plain; charset=utf-8", ".json": "application/json", ".glb": "model/gltf-binary",
              ".flac": "audio/flac", ".wav": "audio/wav", ".aiff": "audio/aiff"}
# Rendition keys name their spec, so the bytes behind a URL never change.
HEADERS = {"Cache-Control": "public, max-age=31536000, immutable",
           "Content-Security-Policy": "default-src 'none'; sandbox", "X-Content-Type-Options": "nosniff"}


@router.get(PUBLIC_MEDIA_PATH + "/{path:path}")
def public_file(path: str, request: Request, rt: RT) -> Response:
    parts = [p for p in path.split("/") if p]
    try:
        if not rt.stores.public.is_local or not parts or not rt.stores.public.exists(parts):
            raise NotFound("There is no such file.")
        local = rt.stores.public.local_path(parts)
        stat = os.stat(local)
    except (InvalidKey, FileNotFoundError) as exc:
        raise NotFound("There is no such file.") from exc
    media_type = SAFE_TYPES.get(local.suffix.lower(), "application/octet-stream")
    response = FileResponse(local, media_type=media_type, headers=HEADERS, stat_result=stat)
    etag = response.headers["etag"]
    sent = request.headers.get("if-none-match", "")
    if etag in (tag.strip() for tag in sent.split(",")):
        return Response(status_code=304, headers={**HEADERS, "ETag": etag})
    return response
