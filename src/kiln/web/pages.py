"""Public pages: the front page, user galleries, media pages, tag pages, the tag index, the icon."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse
from sqlalchemy import select

from kiln.accounts.services import get_user
from kiln.errors import NotFound
from kiln.i18n import N_, _, interpolate
from kiln.media import services as media_service
from kiln.media.models import MediaEntry, Tag
from kiln.media.visibility import src_for, visible_with_share
from kiln.web import collections, comments, social
from kiln.web.deps import DB, RT, CurrentUser, RowId, ShareToken
from kiln.web.templating import STATIC_DIR, render

router = APIRouter(include_in_schema=False)
UNFINISHED_SHOWN = 24  # unfinished items at the top of an owner's own gallery; the panel lists them all


@router.get("/", response_class=HTMLResponse)
def front(request: Request, session: DB, rt: RT, user: CurrentUser, before: str | None = None) -> HTMLResponse:
    page = media_service.page(session, media_service.published_query(), before, rt.settings.per_page, grid=True)
    return render(request, "index.html", page=page, heading=_("Latest media"), feed_url="/feeds/atom")


@router.get("/u/{username}", response_class=HTMLResponse)
def gallery(request: Request, username: str, session: DB, rt: RT, user: CurrentUser,
            before: str | None = None) -> HTMLResponse:
    """Visitors see the owner's public items. The owner sees everything they have: unlisted and
    private items (each with a badge) and, on the first page, what is not published yet. That view
    is only ever rendered for a logged-in request, which the anonymous page cache never stores."""
    owner = get_user(session, username)
    own = user is not None and user.id == owner.id
    query = media_service.own_query(owner.id) if own else media_service.published_query(owner_id=owner.id)
    page = media_service.page(session, query, before, rt.settings.per_page, grid=True)
    pending = media_service.unfinished(session, owner.id, UNFINISHED_SHOWN) if own and not before else []
    # media_src sends the renditions of private items through the app's checked route.
    return render(request, "gallery.html", owner=owner, page=page, own=own, unfinished=pending,
                  unfinished_limit=UNFINISHED_SHOWN, media_src=src_for(rt, [*page.items, *pending] if own else []),
                  feed_url=f"/feeds/u/{owner.username}/atom", **social.profile_context(session, owner, user))


@router.get("/u/{username}/m/{media_id}", response_class=HTMLResponse)
def media_page(request: Request, username: str, media_id: RowId, session: DB, rt: RT,
               user: CurrentUser, share: ShareToken = None) -> HTMLResponse:
    """``share``: seen through a collection's share link (kiln.social.collections), never cached."""
    media = session.get(MediaEntry, media_id)
    if media is None or media.owner.username != username or not visible_with_share(session, media, user, share):
        raise NotFound(N_("There is no such media. It may have been deleted."))
    newer, older = media_service.neighbours(session, media)
    extras: dict[str, Any] = {}
    for module in (collections, comments, social):  # what people do with the item
        extras.update(module.media_context(request, session, rt, media, user))
    # media_src sends a private item's renditions through the app's checked route.
    response = render(request, "media.html", media=media, newer=newer, older=older,
                      medium=media.rendition("medium"), media_src=src_for(rt, [media], share), **extras)
    if share is not None:
        response.headers["Cache-Control"] = "private, no-store"
    return response


@router.get("/tag/{slug}", response_class=HTMLResponse)
def tag_page(request: Request, slug: str, session: DB, rt: RT, user: CurrentUser,
             before: str | None = None) -> HTMLResponse:
    tag = session.scalar(select(Tag).where(Tag.slug == slug))
    if tag is None:
        raise NotFound("No media is tagged '%(tag)s'.", tag=slug)
    page = media_service.page(session, media_service.published_query(tag=slug), before, rt.settings.per_page,
                             grid=True)
    return render(request, "index.html", page=page, heading=interpolate(_("Tagged “%(tag)s”"), {"tag": tag.name}),
                  tag=tag, feed_url=f"/feeds/tag/{slug}/atom")


@router.get("/tags", response_class=HTMLResponse)
def tags_index(request: Request, session: DB, user: CurrentUser, sort: str = "uses") -> HTMLResponse:
    """Every tag on public media with its count, most used first (``?sort=name``: A to Z). The same
    for every visitor, so the anonymous page cache keeps it."""
    by_name = sort == "name"
    return render(request, "tags.html", tags=media_service.tag_counts(session, by_name=by_name), by_name=by_name)


@router.get("/favicon.ico")
def favicon() -> FileResponse:
    """Browsers ask for /favicon.ico whatever a page links (pages link the fingerprinted icons)."""
    return FileResponse(STATIC_DIR / "favicon.ico", media_type="image/vnd.microsoft.icon",
                        headers={"Cache-Control": "public, max-age=86400"})
