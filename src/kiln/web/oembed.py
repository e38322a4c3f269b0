"""oEmbed (https://oembed.com): ``GET /oembed?url=<a media page>&format=json`` describes an item for a
site that wants to show it: a ``photo`` for pictures, a ``video`` for videos and a ``rich`` embed for the
other kinds, the last two as an iframe of the embed page (kiln.web.unfurl). Media pages name the
endpoint with ``<link rel="alternate" type="application/json+oembed">``.

Only items that unfurl are described (kiln.web.unfurl.shown_to): a private, unfinished or removed item,
an address on another site and one that names no item all answer the same 404. ``maxwidth`` and
``maxheight`` shrink the answer, keeping its shape. ``format=xml`` is answered too; another format name
gets the 501 the specification asks for. Errors are JSON (kiln.web.deps.wants_json).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session

from kiln.accounts.models import User
from kiln.errors import InvalidInput, KilnError, NotFound
from kiln.i18n import N_
from kiln.media.models import MediaEntry
from kiln.media.visibility import rendition_src
from kiln.runtime import Runtime
from kiln.web.deps import DB, RT, CurrentUser, site_url
from kiln.web.unfurl import BAR_HEIGHT, embed_code, embed_size, picture_of, shown_to

router = APIRouter(include_in_schema=False)
NOT_HERE = N_("This address is not a media page on this site that can be shown elsewhere.")
CACHE_SECONDS = 3600
# A media page (/u/NAME/m/ID) or an embed page (/m/ID/embed), below the site's own path.
_ITEM_PATH = re.compile(r"/u/(?P<owner>[^/]{1,100})/m/(?P<id>[0-9]{1,10})/?|/m/(?P<embedded>[0-9]{1,10})/embed/?",
                        re.ASCII)
_SIZE = re.compile(r"[0-9]{1,5}", re.ASCII)
_FORMAT_NAME = re.compile(r"[a-z]{1,10}", re.ASCII)


class FormatNotImplemented(KilnError):
    """The answer oEmbed asks for when a consumer wants a format the provider does not make."""
    code = "format_not_implemented"
    status = 501


def _size(name: str, raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    if not _SIZE.fullmatch(raw) or int(raw) < 1:
        raise InvalidInput("The %(name)s parameter must be a whole number of pixels, 1 or more.", code="bad_size",
                           name=name)
    return int(raw)


def item_of(session: Session, base: str, url: str, viewer: User | None = None) -> MediaEntry:
    """The item a media page (or embed page) address names, if it is on this site and shown to the
    asker (kiln.web.unfurl.shown_to: it unfurls, and no block hides it from a logged-in one)."""
    if len(url) > 2000:
        raise NotFound(NOT_HERE, code="not_here")
    ours, theirs = urlsplit(base), urlsplit(url.strip())
    same_site = (theirs.scheme in ("http", "https") and theirs.netloc.lower() == ours.netloc.lower()
                 and theirs.path.startswith(ours.path))
    found = _ITEM_PATH.fullmatch(theirs.path[len(ours.path.rstrip("/")):]) if same_site else None
    media_id = int(found["id"] or found["embedded"]) if found else 0
    media = session.get(MediaEntry, media_id) if 0 < media_id < 2**31 else None
    if media is None or not shown_to(media, viewer) or (found and found["owner"] not in (None, media.owner.username)):
        raise NotFound(NOT_HERE, code="not_here")
    return media


def fit(width: int, height: int, max_width: int | None, max_height: int | None) -> tuple[int, int]:
    """``width`` × ``height`` shrunk (never grown) to fit the limits, keeping the shape."""
    scale = min(1.0, (max_width or width) / width, (max_height or height) / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def describe(rt: Runtime, base: str, media: MediaEntry, max_width: int | None, max_height: int | None
             ) -> dict[str, Any]:
    """The oEmbed answer for an item that unfurls."""
    owner = media.owner
    answer: dict[str, Any] = {
        "version": "1.0", "title": media.title, "author_name": owner.display_name or owner.username,
        "author_url": f"{base}/u/{owner.username}", "provider_name": rt.settings.site_name,
        "provider_url": f"{base}/", "cache_age": CACHE_SECONDS,
    }
    thumbnail = picture_of(rt, media, base, ("thumbnail", "medium"))
    if thumbnail is not None and thumbnail.width and thumbnail.height:
        answer.update(thumbnail_url=thumbnail.url, thumbnail_width=thumbnail.width,
                      thumbnail_height=thumbnail.height)
    if media.kind == "image" and (photo := _photo(rt, base, media, max_width, max_height)) is not None:
        return {**answer, **photo}
    width, height = embed_size(media)
    if max_height is not None:  # the bar under the player keeps its height; the player shrinks
        inner_width, inner_height = fit(width, height - BAR_HEIGHT, max_width, max(1, max_height - BAR_HEIGHT))
        width, height = inner_width, inner_height + BAR_HEIGHT
    else:
        width, height = fit(width, height, max_width, None)
    return {**answer, "type": "video" if media.kind == "video" else "rich", "width": width, "height": height,
            "html": embed_code(base, media, width, height)}


def _photo(rt: Runtime, base: str, media: MediaEntry, max_width: int | None, max_height: int | None
           ) -> dict[str, Any] | None:
    """The largest picture within the limits (else the smallest, its size shrunk to fit)."""
    pictures = [r for r in (media.rendition("medium"), media.rendition("thumbnail"))
                if r is not None and r.width and r.height]
    if not pictures:
        return None
    fitting = [r for r in pictures if fit(r.width or 1, r.height or 1, max_width, max_height) == (r.width, r.height)]
    chosen = fitting[0] if fitting else pictures[-1]
    width, height = fit(chosen.width or 1, chosen.height or 1, max_width, max_height)
    return {"type": "photo", "url": rendition_src(rt, media, chosen, base), "width": width, "height": height}


def _xml(answer: dict[str, Any]) -> str:
    root = ET.Element("oembed")
    for key, value in answer.items():
        ET.SubElement(root, key).text = str(value)
    return '<?xml version="1.0" encoding="utf-8" standalone="yes"?>\n' + ET.tostring(root, encoding="unicode")


@router.get("/oembed")
def oembed(request: Request, session: DB, rt: RT, user: CurrentUser, url: str | None = None, format: str = "json",  # noqa: A002
           maxwidth: str | None = None, maxheight: str | None = None) -> Response:
    format = format or "json"  # noqa: A001
    if format not in ("json", "xml"):
        if _FORMAT_NAME.fullmatch(format):
            raise FormatNotImplemented("This site answers oEmbed in JSON or XML only (format=json or format=xml).")
        raise InvalidInput("The format parameter must be json or xml.", code="bad_format")
    max_width, max_height = _size("maxwidth", maxwidth), _size("maxheight", maxheight)
    if not url:
        raise InvalidInput("Give the address of a media page on this site as the url parameter.", code="missing_url")
    base = site_url(request)
    answer = describe(rt, base, item_of(session, base, url, user), max_width, max_height)
    if format == "xml":
        return Response(_xml(answer), media_type="text/xml; charset=utf-8")
    return JSONResponse(answer)
