"""Following people, the "Following" timeline and profiles: pages and /api/v1 operations.

The notifications (kiln.web.notifications) and the profile settings of the account page
(kiln.web.profile_pages) are routers of their own, included here.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from kiln.accounts.models import User
from kiln.accounts.services import get_user
from kiln.federation import answers
from kiln.i18n import _, interpolate
from kiln.media import services as media_service
from kiln.media.models import MediaEntry
from kiln.runtime import Runtime
from kiln.social import blocks, follows
from kiln.social import timeline as timeline_service
from kiln.web import blocks as blocks_routes
from kiln.web import notifications, profile_pages
from kiln.web.api import ERRORS, MediaList, api_csrf
from kiln.web.deps import DB, RT, CurrentUser, LoggedIn, SiteURL, Writer, check_csrf, flash
from kiln.web.remote_posts import RemotePostOut, post_json
from kiln.web.templating import render

pages = APIRouter(include_in_schema=False, dependencies=[Depends(check_csrf)])
api = APIRouter(prefix="/api/v1", tags=["social"], dependencies=[Depends(api_csrf)])
Username = Annotated[str, Path(min_length=1, max_length=30)]
Cursor = Annotated[str | None, Query(max_length=20, description="`next` of the previous page")]
MediaCursor = Annotated[str | None, Query(max_length=64, description="`next` of the previous page")]
Limit = Annotated[int, Query(ge=1, le=100)]
PEOPLE_PER_PAGE = 50


def media_context(request: Request, session: Session, rt: Runtime, media: MediaEntry,
                  user: User | None) -> dict[str, Any]:
    """What this module adds to the media page's template context (the owner's avatar is drawn by
    the ``avatar_url`` template global from the already loaded owner: nothing to query)."""
    return {}


def profile_context(session: Session, owner: User, viewer: User | None) -> dict[str, Any]:
    """What the gallery's profile header needs: counts (one query) and whether the viewer follows."""
    return {"counts": follows.counts(session, owner),
            "following": viewer is not None and viewer.id != owner.id
            and follows.is_following(session, viewer.id, owner.id),
            "block_state": blocks.state(session, viewer, owner)}


# Pages -----------------------------------------------------------------------------------------

def _people_page(request: Request, session: Session, viewer: User | None, username: str, cursor: str | None,
                 which: str) -> HTMLResponse:
    owner = blocks.get_person(session, username, viewer)
    own = viewer is not None and viewer.id == owner.id
    listing = (follows.followers(session, owner, cursor, PEOPLE_PER_PAGE) if which == "followers" else
               follows.following(session, owner, cursor, PEOPLE_PER_PAGE, pending=own))
    heading = (interpolate(_("People who follow %(name)s"), {"name": owner.display_name or owner.username})
               if which == "followers" else
               interpolate(_("People %(name)s follows"), {"name": owner.display_name or owner.username}))
    return render(request, "people.html", owner=owner, listing=listing, heading=heading, which=which, own=own)


@pages.get("/u/{username}/followers", response_class=HTMLResponse)
def followers_page(request: Request, username: Username, session: DB, user: CurrentUser,
                   before: Cursor = None) -> HTMLResponse:
    return _people_page(request, session, user, username, before, "followers")


@pages.get("/u/{username}/following", response_class=HTMLResponse)
def following_page(request: Request, username: Username, session: DB, user: CurrentUser,
                   before: Cursor = None) -> HTMLResponse:
    return _people_page(request, session, user, username, before, "following")


@pages.post("/u/{username}/follow")
def follow_form(request: Request, username: Username, session: DB, user: LoggedIn) -> Response:
    followee = get_user(session, username)
    follows.follow(session, user, followee)
    session.commit()
    flash(request, interpolate(_("You follow %(name)s now."), {"name": followee.display_name or followee.username}),
          "success")
    return RedirectResponse(f"/u/{followee.username}", status_code=303)


@pages.post("/u/{username}/unfollow")
def unfollow_form(request: Request, username: Username, session: DB, user: LoggedIn) -> Response:
    followee = get_user(session, username)
    follows.unfollow(session, user, followee)
    session.commit()
    flash(request, interpolate(_("You no longer follow %(name)s."),
                               {"name": followee.display_name or followee.username}), "success")
    return RedirectResponse(f"/u/{followee.username}", status_code=303)


@pages.get("/timeline", response_class=HTMLResponse)
def timeline(request: Request, session: DB, rt: RT, user: LoggedIn, before: MediaCursor = None) -> HTMLResponse:
    """New public media of the people the reader follows, here and elsewhere, newest first (never
    unlisted or private items; kiln.social.timeline)."""
    page = timeline_service.page(session, user, before, rt.settings.per_page)
    favourited = answers.favourited(session, user, [post.id for post in page.posts])
    return render(request, "timeline.html", page=page, favourited=favourited)  # public items: store URLs


# API -------------------------------------------------------------------------------------------

class FollowOut(BaseModel):
    following: bool = Field(description="Whether the caller follows this person now")
    followers: int = Field(description="How many people follow this person")


class PersonOut(BaseModel):
    username: str | None = Field(description="A local account's name (null for a remote follower)")
    display_name: str | None
    url: str = Field(description="The person's profile page, or a remote follower's address")
    avatar: str | None = Field(description="The 64 px avatar's URL (null: none)")


class PeopleList(BaseModel):
    items: list[PersonOut]
    next: str | None = Field(description="Pass as `cursor` to get the next page")


class LinkOut(BaseModel):
    label: str
    url: str


class CountsOut(BaseModel):
    media: int = Field(description="Public, processed media")
    collections: int = Field(description="Public collections")
    followers: int
    following: int = Field(description="How many people this person follows")


class ProfileOut(BaseModel):
    username: str
    display_name: str
    bio: str = Field(description="Markdown")
    bio_html: str
    links: list[LinkOut]
    avatar: dict[str, str] = Field(description="Avatar URLs by size in px (\"64\", \"256\"); empty: none")
    url: str
    counts: CountsOut
    following: bool | None = Field(None, description="Whether the caller follows this person (logged-in callers)")


def _person_json(rt: Runtime, person: follows.Person, base: str) -> dict[str, Any]:
    user = person.user
    if user is None:
        return {"username": None, "display_name": person.handle, "url": person.uri or "", "avatar": None}
    key = (user.avatar or {}).get("64")
    avatar = _absolute(rt.stores.public.url(list(key)), base) if key else None
    return {"username": user.username, "display_name": user.display_name or user.username,
            "url": f"{base}/u/{user.username}", "avatar": avatar}


def _absolute(url: str, base: str) -> str:
    return url if "://" in url else base + url


def _follow_answer(session: Session, user: User, followee: User) -> dict[str, Any]:
    return {"following": follows.is_following(session, user.id, followee.id),
            "followers": follows.counts(session, followee).followers}


@api.put("/users/{name}/follow", response_model=FollowOut, responses=ERRORS, summary="Follow a person")
def api_follow(name: Username, session: DB, user: Writer) -> dict[str, Any]:
    """Following again changes nothing; you cannot follow yourself (400). The person gets a notification."""
    followee = get_user(session, name)
    follows.follow(session, user, followee)
    session.commit()
    return _follow_answer(session, user, followee)


@api.delete("/users/{name}/follow", response_model=FollowOut, responses=ERRORS, summary="Stop following a person")
def api_unfollow(name: Username, session: DB, user: Writer) -> dict[str, Any]:
    followee = get_user(session, name)
    follows.unfollow(session, user, followee)
    session.commit()
    return _follow_answer(session, user, followee)


@api.get("/users/{name}/followers", response_model=PeopleList, responses=ERRORS, summary="Who follows a person")
def api_followers(name: Username, session: DB, rt: RT, base: SiteURL, viewer: CurrentUser, cursor: Cursor = None,
                  limit: Limit = PEOPLE_PER_PAGE) -> dict[str, Any]:
    """Newest follower first; remote followers (federation) have no username and their address as `url`."""
    listing = follows.followers(session, blocks.get_person(session, name, viewer), cursor, limit)
    return {"items": [_person_json(rt, p, base) for p in listing.people], "next": listing.next_cursor}


@api.get("/users/{name}/following", response_model=PeopleList, responses=ERRORS, summary="Whom a person follows")
def api_following(name: Username, session: DB, rt: RT, base: SiteURL, viewer: CurrentUser, cursor: Cursor = None,
                  limit: Limit = PEOPLE_PER_PAGE) -> dict[str, Any]:
    listing = follows.following(session, blocks.get_person(session, name, viewer), cursor, limit)
    return {"items": [_person_json(rt, p, base) for p in listing.people], "next": listing.next_cursor}


class TimelineOut(MediaList):
    remote_posts: list[RemotePostOut] = Field(description="Posts of the accounts the caller follows on other "
                                              "servers that fall in this page")
    order: list[str] = Field(description="The page's entries newest first: `media:ID` (in `items`) and "
                                         "`remote_post:ID` (in `remote_posts`)")


@api.get("/timeline", response_model=TimelineOut, responses=ERRORS, summary="New media of the people you follow")
def api_timeline(session: DB, rt: RT, user: LoggedIn, base: SiteURL, cursor: MediaCursor = None,
                 limit: Limit = 30) -> dict[str, Any]:
    """Public, processed media of the people the caller follows, newest first (never unlisted or
    private items), in pages like GET /api/v1/media; with the posts of the accounts the caller
    follows on other servers (`remote_posts`), interleaved by time as `order` says."""
    page = timeline_service.page(session, user, cursor, limit)
    return {"items": [media_service.media_json(rt, m, base) for m in page.media],
            "remote_posts": [post_json(post, base) for post in page.posts],
            "order": [f"media:{e.media_id}" if e.post is None else f"remote_post:{e.post.id}" for e in page.entries],
            "next": page.next_cursor}


@api.get("/users/{name}", response_model=ProfileOut, responses=ERRORS, summary="A person's profile")
def api_profile(name: Username, session: DB, rt: RT, viewer: CurrentUser, base: SiteURL) -> dict[str, Any]:
    from kiln.media.text import render_markdown

    owner = blocks.get_person(session, name, viewer)
    counts = follows.counts(session, owner)
    avatar = {size: _absolute(rt.stores.public.url(list(key)), base) for size, key in (owner.avatar or {}).items()}
    return {"username": owner.username, "display_name": owner.display_name or owner.username, "bio": owner.bio,
            "bio_html": str(render_markdown(owner.bio)), "links": owner.links or [], "avatar": avatar,
            "url": f"{base}/u/{owner.username}", "counts": dataclasses.asdict(counts),
            "following": follows.is_following(session, viewer.id, owner.id) if viewer is not None else None}


router = APIRouter()
router.include_router(pages)
router.include_router(api)
router.include_router(notifications.router)
router.include_router(profile_pages.router)
router.include_router(blocks_routes.router)
