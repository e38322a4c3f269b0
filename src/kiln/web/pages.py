"""Public pages: the front page, user galleries, media pages and tag pages."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from kiln.accounts.services import get_user
from kiln.errors import NotFound
from kiln.media import services as media_service
from kiln.media.models import Tag
from kiln.media.visibility import src_for, visible
from kiln.web.deps import DB, RT, CurrentUser, RowId
from kiln.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def front(request: Request, session: DB, rt: RT, user: CurrentUser, before: str | None = None) -> HTMLResponse:
    page = media_service.page(session, media_service.published_query(), before, rt.settings.per_page)
    return render(request, "index.html", page=page, heading="Latest media", feed_url="/feeds/atom")


@router.get("/u/{username}", response_class=HTMLResponse)
def gallery(request: Request, username: str, session: DB, rt: RT, user: CurrentUser,
            before: str | None = None) -> HTMLResponse:
    owner = get_user(session, username)
    page = media_service.page(session, media_service.published_query(owner_id=owner.id), before,
                              rt.settings.per_page)
    return render(request, "gallery.html", owner=owner, page=page, feed_url=f"/feeds/u/{owner.username}/atom")


@router.get("/u/{username}/m/{media_id}", response_class=HTMLResponse)
def media_page(request: Request, username: str, media_id: RowId, session: DB, rt: RT,
               user: CurrentUser) -> HTMLResponse:
    media = session.get(media_service.MediaEntry, media_id)
    if media is None or media.owner.username != username or not visible(media, user):
        raise NotFound("There is no such media. It may have been deleted.")
    newer, older = media_service.neighbours(session, media)
    # media_src sends a private item's renditions through the app's checked route.
    return render(request, "media.html", media=media, newer=newer, older=older,
                  medium=media.rendition("medium"), media_src=src_for(rt, [media]))


@router.get("/tag/{slug}", response_class=HTMLResponse)
def tag_page(request: Request, slug: str, session: DB, rt: RT, user: CurrentUser,
             before: str | None = None) -> HTMLResponse:
    tag = session.scalar(select(Tag).where(Tag.slug == slug))
    if tag is None:
        raise NotFound(f"No media is tagged '{slug}'.")
    page = media_service.page(session, media_service.published_query(tag=slug), before, rt.settings.per_page)
    return render(request, "index.html", page=page, heading=f"Tagged “{tag.name}”",
                  feed_url=f"/feeds/tag/{slug}/atom")
