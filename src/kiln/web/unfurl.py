"""Links that unfurl: the OpenGraph and Twitter-card tags of media, collection and profile pages, and the
embeddable player page (``/m/{id}/embed``). The oEmbed endpoint that describes the same items is
kiln.web.oembed; docs/sharing.md says what a user and an operator see.

Only what anybody may see unfurls, asked of the one visibility function with no viewer
(``visible(media, None)``): public and unlisted items (an unlisted item's link is the thing its owner
hands out), never private, unfinished or removed ones, whoever is looking at the page. A collection
unfurls when it is public or unlisted and not removed. A page seen through a collection's share link
(``?share=``) gets the tags of the items that unfurl on their own and nothing for what only the link
opens: a preview service would keep the private pictures and spread them further than the link, and the
tags point at the item's own address, never at one carrying the share token.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import escape
from sqlalchemy.orm import Session

from kiln.accounts.models import User
from kiln.errors import NotFound
from kiln.i18n import N_
from kiln.media.models import MediaEntry, Rendition
from kiln.media.services import main_rendition, media_url, rendition_url
from kiln.media.text import plain_summary
from kiln.media.visibility import rendition_src, visible
from kiln.runtime import Runtime
from kiln.social.models import Collection
from kiln.web.deps import DB, RT, CurrentUser, RowId, site_url
from kiln.web.fragments import kept
from kiln.web.security import content_security_policy
from kiln.web.templating import render

router = APIRouter(include_in_schema=False)
NO_SUCH_MEDIA = N_("There is no such media. It may have been deleted.")
EMBED_WIDTH = 640  # the widest an embedded player is offered at (a page may ask for less: oEmbed maxwidth)
BAR_HEIGHT = 40  # the embed page's line under the player: the title, a link to the item's page
AUDIO_SIZE = (480, 160)  # an audio player: a picture strip and the browser's controls
OG_TYPES = {"video": "video.other", "audio": "music.song"}


@dataclass(frozen=True)
class Picture:
    url: str
    width: int | None
    height: int | None
    mime_type: str
    alt: str = ""


@dataclass(frozen=True)
class Card:
    """What a link preview shows of a page: the values of its OpenGraph and Twitter-card tags."""
    og_type: str
    title: str
    description: str
    url: str
    image: Picture | None = None
    video: Picture | None = None  # og:video (the file itself, for players that play files)
    audio: Picture | None = None
    player: Picture | None = None  # the embed page (twitter:player, the oEmbed iframe)
    oembed: str | None = None  # the oEmbed discovery link


def unfurls(media: MediaEntry) -> bool:
    """Whether the item may be described to anybody: what a visitor with no account may see."""
    return visible(media, None)


def shown_to(media: MediaEntry, viewer: User | None) -> bool:
    """Whether the embed page and oEmbed show the item to this request: it unfurls, and nothing hides it
    from a logged-in visitor (someone its owner blocked gets 404, as everywhere). Framed on another site
    the page usually gets no login cookie at all (they are SameSite=Lax): it is then anybody's view."""
    return unfurls(media) and (viewer is None or visible(media, viewer))


def picture_of(rt: Runtime, media: MediaEntry, base: str, names: tuple[str, ...] = ("medium", "thumbnail")
               ) -> Picture | None:
    """The first of ``names`` the item has, as an absolute picture (the medium image or a poster)."""
    for name in names:
        found = media.rendition(name)
        if found is not None:
            return _as_picture(rt, media, found, base, media.alt)
    return None


def _as_picture(rt: Runtime, media: MediaEntry, rendition: Rendition, base: str, alt: str = "") -> Picture:
    return Picture(rendition_src(rt, media, rendition, base), rendition.width, rendition.height,
                   rendition.mime_type.split(";")[0], alt)


def embed_size(media: MediaEntry) -> tuple[int, int]:
    """The embed page's natural size: its picture or video at up to ``EMBED_WIDTH`` wide, and the bar."""
    if media.kind == "audio":
        return AUDIO_SIZE[0], AUDIO_SIZE[1] + BAR_HEIGHT
    shown = main_rendition(media) if media.kind == "video" else None
    shown = shown or media.rendition("medium") or media.rendition("thumbnail")
    width, height = (shown.width or 0, shown.height or 0) if shown is not None else (0, 0)
    if not width or not height:
        width, height = EMBED_WIDTH, EMBED_WIDTH * 9 // 16
    if width > EMBED_WIDTH:
        width, height = EMBED_WIDTH, max(1, round(height * EMBED_WIDTH / width))
    return width, height + BAR_HEIGHT


def embed_url(base: str, media: MediaEntry) -> str:
    return f"{base}/m/{media.id}/embed"


def embed_code(base: str, media: MediaEntry, width: int, height: int) -> str:
    """The iframe another site pastes to show the item (the share box's embed code, oEmbed's html)."""
    return (f'<iframe src="{escape(embed_url(base, media))}" width="{width}" height="{height}" '
            f'title="{escape(media.title)}" frameborder="0" allowfullscreen loading="lazy"></iframe>')


def share_box(base: str, media: MediaEntry) -> dict[str, str] | None:
    """The media page's "copy link" and "copy embed code" texts, for an item that unfurls."""
    if not unfurls(media):
        return None
    return {"link": media_url(base, media), "embed": embed_code(base, media, *embed_size(media))}


def media_card(rt: Runtime, base: str, media: MediaEntry) -> Card | None:
    """The tags of an item's page, or None when it does not unfurl. Reads the item's renditions."""
    if not unfurls(media):
        return None
    page = media_url(base, media)
    video = audio = None
    main = main_rendition(media)
    if media.kind == "video" and main is not None:
        video = _as_picture(rt, media, main, base)
    elif media.kind == "audio" and main is not None:
        audio = _as_picture(rt, media, main, base)
    width, height = embed_size(media)
    player = Picture(embed_url(base, media), width, height, "text/html") if video or audio else None
    return Card(og_type=OG_TYPES.get(media.kind, "article"), title=media.title,
                description=plain_summary(media.description), url=page, image=picture_of(rt, media, base),
                video=video, audio=audio, player=player,
                oembed=f"{base}/oembed?url={quote(page, safe='')}&format=json")


def kept_media_card(request: Request, rt: Runtime, media: MediaEntry) -> Card | None:
    """``media_card``, made once per generation and site address (a Host header chooses the address
    when base_url is unset, so it is part of the key: one visitor's Host never reaches another)."""
    base = site_url(request)
    return kept(request, ("unfurl-card", media.id, base), lambda: media_card(rt, base, media))


def collection_card(request: Request, session: Session, rt: Runtime, collection: Collection,
                    viewer: User | None) -> Card | None:
    """A public or unlisted collection's tags, with the cover anybody may see (left out when its owner
    is hidden from ``viewer``: a page never shows someone what their blocks hide); None for the others."""
    from kiln.social import blocks  # social builds on media, web on both
    from kiln.social import collections as service

    if collection.removed is not None or collection.visibility == "private":
        return None
    base = site_url(request)
    cover = service.cover(session, collection, None)
    if cover is not None and cover.owner_id in blocks.hidden(session, viewer).people:
        cover = None
    return Card(og_type="website", title=collection.title, description=plain_summary(collection.description),
                url=f"{base}/c/{collection.id}", image=picture_of(rt, cover, base) if cover is not None else None)


def profile_card(request: Request, rt: Runtime, owner: User) -> Card:
    """A person's profile: their name, bio and largest avatar (their page lists only public items)."""
    base = site_url(request)
    name = owner.display_name or owner.username
    key = (getattr(owner, "avatar", None) or {}).get("256")
    image = None
    if key:
        url = rendition_url(rt, list(key), base)
        image = Picture(url, 256, 256, mimetypes.guess_type(key[-1])[0] or "image/jpeg", name)
    return Card(og_type="profile", title=name, description=plain_summary(owner.bio or ""),
                url=f"{base}/u/{owner.username}", image=image)


@router.get("/m/{media_id}/embed", response_class=HTMLResponse)
def embed_page(request: Request, media_id: RowId, session: DB, rt: RT, user: CurrentUser) -> Response:
    """The player (or the picture), the title and a link back, for other sites to frame: the only page
    whose policy lets any site frame it. It has no login UI and sets no cookie; an item that does not
    unfurl (or is hidden from the visitor, see ``shown_to``) answers as a missing one does."""
    media = session.get(MediaEntry, media_id)
    if media is None or not shown_to(media, user):
        raise NotFound(NO_SUCH_MEDIA)
    base = site_url(request)
    response = render(request, "embed.html", media=media, page_url=media_url(base, media), **_embed_parts(media),
                      media_src=lambda key: rt.stores.public.url(key))
    response.headers["Content-Security-Policy"] = content_security_policy(rt.settings, framed_by="*")
    return response


def _embed_parts(media: MediaEntry) -> dict[str, Any]:
    videos = sorted((r for r in media.renditions if r.name.startswith("video-") and r.name != "video-av1"
                     and r.height and r.mime_type.startswith("video/")), key=lambda r: r.height or 0, reverse=True)
    return {"videos": videos, "audio": media.rendition("audio") if media.kind == "audio" else None,
            "picture": media.rendition("medium") or media.rendition("thumbnail")}
