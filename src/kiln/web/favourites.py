"""Favourites: the button on media pages, "my favourites", who favourited an item (its owner and admins),
and the same in the API (kiln.social.favourites does the work)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from kiln.errors import NotFound
from kiln.i18n import _
from kiln.media import services as media_service
from kiln.media.visibility import src_for, visible
from kiln.social import favourites as service
from kiln.web.api import ERRORS, MediaList, api_csrf
from kiln.web.deps import DB, RT, LoggedIn, RowId, SiteURL, Writer, check_csrf, flash
from kiln.web.templating import render

pages = APIRouter(include_in_schema=False, dependencies=[Depends(check_csrf)])
api = APIRouter(prefix="/api/v1", tags=["favourites"], dependencies=[Depends(api_csrf)])
Cursor = Annotated[str | None, Query(max_length=64)]


def _media(session: DB, media_id: int, user: Any) -> Any:
    media = media_service.get_media(session, media_id)
    if not visible(media, user):
        raise NotFound("There is no such media. It may have been deleted.")
    return media


@pages.post("/m/{media_id}/favourite")
def toggle(request: Request, media_id: RowId, session: DB, user: LoggedIn,
           favourite: Annotated[str, Form(max_length=1)] = "1") -> Response:
    """``favourite=1`` marks the item, ``favourite=0`` takes it back (the button sends the one it shows)."""
    media = _media(session, media_id, user)
    if favourite == "0":
        service.unfavourite(session, user, media)
        flash(request, _("Removed from your favourites."), "success")
    else:
        service.favourite(session, user, media)
        flash(request, _("Added to your favourites."), "success")
    return RedirectResponse(f"/u/{media.owner.username}/m/{media.id}#favourite", status_code=303)


@pages.get("/favourites", response_class=HTMLResponse)
def mine(request: Request, session: DB, rt: RT, user: LoggedIn, before: Cursor = None) -> Response:
    page = service.favourites_of(session, user, before, rt.settings.per_page)
    return render(request, "favourites.html", grid_items=page.items, next_cursor=page.next_cursor,
                  media_src=src_for(rt, page.items))


@pages.get("/m/{media_id}/favourites", response_class=HTMLResponse)
def fans(request: Request, media_id: RowId, session: DB, user: LoggedIn, before: Cursor = None) -> Response:
    media = media_service.get_media(session, media_id)
    page = service.fans(session, user, media, before)
    return render(request, "fans.html", media=media, people=page.people, next_cursor=page.next_cursor)


class FavouriteOut(BaseModel):
    favourited: bool
    favourites: int = Field(description="How many people favourited the item now")


class FanOut(BaseModel):
    username: str
    display_name: str
    favourited: str = Field(description="When")


class FanList(BaseModel):
    items: list[FanOut]
    next: str | None = Field(description="Pass as `cursor` to get the next page")


def _state(session: DB, media: Any, favourited: bool) -> dict[str, Any]:
    session.refresh(media, ["favourite_count"])
    return {"favourited": favourited, "favourites": media.favourite_count}


@api.put("/media/{media_id}/favourite", response_model=FavouriteOut, responses=ERRORS)
def api_favourite(media_id: RowId, session: DB, user: Writer) -> dict[str, Any]:
    """Favourite an item you can see. Doing it again changes nothing."""
    media = _media(session, media_id, user)
    service.favourite(session, user, media)
    return _state(session, media, True)


@api.delete("/media/{media_id}/favourite", response_model=FavouriteOut, responses=ERRORS)
def api_unfavourite(media_id: RowId, session: DB, user: Writer) -> dict[str, Any]:
    """Take a favourite back. Doing it again changes nothing."""
    media = _media(session, media_id, user)
    service.unfavourite(session, user, media)
    return _state(session, media, False)


@api.get("/favourites", response_model=MediaList, responses=ERRORS)
def api_mine(session: DB, rt: RT, user: LoggedIn, base: SiteURL, cursor: Cursor = None,
             limit: Annotated[int, Query(ge=1, le=100)] = 30) -> dict[str, Any]:
    """Your favourites that you can still see, the most recently favourited first."""
    page = service.favourites_of(session, user, cursor, limit)
    return {"items": [media_service.media_json(rt, m, base, favourited=True) for m in page.items],
            "next": page.next_cursor}


@api.get("/media/{media_id}/favourites", response_model=FanList, responses=ERRORS)
def api_fans(media_id: RowId, session: DB, user: LoggedIn, cursor: Cursor = None) -> dict[str, Any]:
    """Who favourited an item, the newest first: for its owner and admins."""
    page = service.fans(session, user, media_service.get_media(session, media_id), cursor)
    return {"items": [{"username": u.username, "display_name": u.display_name or u.username,
                       "favourited": when.isoformat()} for u, when in page.people], "next": page.next_cursor}


router = APIRouter()
router.include_router(pages)
router.include_router(api)
