"""Serving the local public store (renditions). A front web server can serve it directly instead."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse

from kiln.errors import NotFound
from kiln.storage import PUBLIC_MEDIA_PATH
from kiln.storage.base import InvalidKey
from kiln.web.deps import RT

router = APIRouter(include_in_schema=False)
SAFE_TYPES = {".jpg": "image/jpeg", ".webp": "image/webp", ".png": "image/png", ".gif": "image/gif"}


@router.get(PUBLIC_MEDIA_PATH + "/{path:path}")
def public_file(path: str, rt: RT) -> FileResponse:
    parts = [p for p in path.split("/") if p]
    try:
        if not rt.stores.public.is_local or not parts or not rt.stores.public.exists(parts):
            raise NotFound("There is no such file.")
        local = rt.stores.public.local_path(parts)
    except InvalidKey as exc:
        raise NotFound("There is no such file.") from exc
    media_type = SAFE_TYPES.get(local.suffix.lower(), "application/octet-stream")
    # Rendition keys name their spec, so a given URL's bytes never change: cache for a year.
    return FileResponse(local, media_type=media_type, headers={
        "Cache-Control": "public, max-age=31536000, immutable",
        "Content-Security-Policy": "default-src 'none'; sandbox",
    })
