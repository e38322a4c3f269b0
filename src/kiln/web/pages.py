"""Public pages: the front page, user galleries, media pages, tag pages, the tag index, the icon."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse
from markupsafe import Markup
from sqlalchemy import bindparam, select
from sqlalchemy.orm import lazyload

from kiln.config import Settings
from kiln.errors import NotFound
from kiln.federation import actors
from kiln.i18n import N_, _, gettext, interpolate
from kiln.media import services as media_service
from kiln.media.models import MediaEntry, MediaState, Tag
from kiln.media.visibility import src_for, visible_with_share
from kiln.mediatypes import kinds
from kiln.search import service as search_service
from kiln.social import blocks, favourites
from kiln.social.comments import held_of
from kiln.social.comments import may_delete as may_delete_comment
from kiln.web import collections, comments, social, unfurl
from kiln.web.deps import DB, RT, CurrentUser, RowId, ShareToken, site_url
from kiln.web.deps import csrf_token as request_csrf
from kiln.web.fragments import keep_html
from kiln.web.templating import STATIC_DIR, render, render_block

router = APIRouter(include_in_schema=False)
# The media page loads an item's renditions and tags only if it renders its body (on a kept body, never).
ONLY_THE_ROW = (lazyload(MediaEntry.renditions), lazyload(MediaEntry.tags))
# The media page's item, built once (a get with options builds its statement and cache key each time).
_MEDIA_ROW = select(MediaEntry).where(MediaEntry.id == bindparam("media_id")).options(*ONLY_THE_ROW)
_MEDIA_ROW_FAVOURITED = _MEDIA_ROW.add_columns(favourites.favourited_with(MediaEntry.id))
UNFINISHED_SHOWN = 24  # unfinished items at the top of an owner's own gallery; the panel lists them all


@router.get("/", response_class=HTMLResponse)
def front(request: Request, session: DB, rt: RT, user: CurrentUser, before: str | None = None) -> HTMLResponse:
    query = blocks.leave_out(session, user, media_service.published_query(), MediaEntry.owner_id)
    page = media_service.page(session, query, before, rt.settings.per_page, grid=True)
    return render(request, "index.html", page=page, heading=_("Latest media"), feed_url="/feeds/atom")


@router.get("/u/{username}", response_class=HTMLResponse)
def gallery(request: Request, username: str, session: DB, rt: RT, user: CurrentUser,
            before: str | None = None, kind: Annotated[str | None, Query(max_length=64)] = None,
            tag: Annotated[str | None, Query(max_length=64)] = None,
            sort: Annotated[str | None, Query(max_length=64)] = None) -> HTMLResponse:
    """Visitors see the owner's public items. The owner sees everything they have: unlisted and
    private items (each with a badge) and, on the first page, what is not published yet. That view
    is only ever rendered for a logged-in request, which the anonymous page cache never stores.
    ``kind``, ``tag`` and ``sort`` (newest, oldest, favourites) narrow and order it: the search's
    listing (kiln.search.service), with the same rules of who sees what."""
    owner = blocks.get_person(session, username, user)
    own = user is not None and user.id == owner.id
    narrowed = None
    page: media_service.Page | media_service.GridPage
    if kind or tag or sort:
        narrowed = search_service.make_search(owner=owner.username, kind=kind, tag=tag, sort=sort or "newest")
        if narrowed.sort == "relevance":
            narrowed = replace(narrowed, sort="newest")
        page = search_service.find(rt, session, user, narrowed, before, rt.settings.per_page)
        filters = {k: v for k, v in narrowed.params().items() if k != "owner"}
        more = f"?{urlencode({**filters, 'before': page.next_cursor})}" if page.next_cursor else None
    else:
        query = media_service.own_query(owner.id) if own else media_service.published_query(owner_id=owner.id)
        page = media_service.page(session, query, before, rt.settings.per_page, grid=True)
        more = None
    pending = (media_service.unfinished(session, owner.id, UNFINISHED_SHOWN)
               if own and not before and narrowed is None else [])
    # media_src sends the renditions of private items through the app's checked route.
    return render(request, "gallery.html", owner=owner, page=page, own=own, unfinished=pending, narrowed=narrowed,
                  more_url=more, kind_choices=sorted((name, gettext(k.label)) for name, k in kinds().items()),
                  unfinished_limit=UNFINISHED_SHOWN, media_src=src_for(rt, [*page.items, *pending] if own else []),
                  feed_url=f"/feeds/u/{owner.username}/atom", card=unfurl.profile_card(request, rt, owner),
                  fediverse_handle=_fediverse_handle(rt.settings, owner.username),
                  **social.profile_context(session, owner, user))


def _fediverse_handle(settings: Settings, username: str) -> str | None:
    """``@name@host`` as people on other servers write the account (WebFinger finds it), when it federates."""
    return f"@{username}@{actors.host(settings)}" if settings.federation.enabled else None


@router.get("/u/{username}/m/{media_id}", response_class=HTMLResponse)
def media_page(request: Request, username: str, media_id: RowId, session: DB, rt: RT,
               user: CurrentUser, share: ShareToken = None) -> HTMLResponse:
    """``share``: seen through a collection's share link (kiln.social.collections), never cached.

    The page's body looks the same to every visitor but the item's owner and admins, apart from the
    CSRF token, the favourite button, the comment form and the actions on comments: it is rendered once
    per generation for each such variant, with marks where the token and the actions go
    (``comments.personalise_thread`` fills them in), and its renditions, tags and neighbours are only
    read to make it."""
    if user is None:
        media = session.scalars(_MEDIA_ROW, {"media_id": media_id}).first()
    else:  # with whether they favourited it: one query instead of two
        found = session.execute(_MEDIA_ROW_FAVOURITED, {"media_id": media_id, "viewer": user.id}).first()
        media = found[0] if found is not None else None
        if found is not None:
            favourites.remember_favourited(session, user.id, media_id, found[1])
    if (media is not None and media.removed is not None and user is not None and user.id == media.owner_id
            and not user.is_admin and media.owner.username == username):
        # Its owner is told it was removed and why, and shown nothing else of it (kiln.moderation.removal).
        return render(request, "removed.html", status=410, title=media.title, reason=media.removed_reason,
                      collection=False)
    if media is None or media.owner.username != username or not visible_with_share(session, media, user, share):
        raise NotFound(N_("There is no such media. It may have been deleted."))
    extras: dict[str, Any] = {}
    for module in (collections, comments, social):  # what people do with the item
        extras.update(module.media_context(request, session, rt, media, user))
    # Link previews: only for an item anybody may see (kiln.web.unfurl), whoever is looking.
    base = site_url(request)
    card = unfurl.kept_media_card(request, rt, media) if unfurl.unfurls(media) else None

    def body(**more: Any) -> dict[str, Any]:
        newer, older = media_service.neighbours(session, media)
        # media_src sends a private item's renditions through the app's checked route.
        return {"media": media, "newer": newer, "older": older, "medium": media.rendition("medium"),
                "media_src": src_for(rt, [media], share), "share_box": unfurl.share_box(base, media), **extras, **more}

    # The viewer's own comments waiting for a moderator: never in the shared body, shown after it.
    own_held = held_of(session, media, user) if user is not None and rt.settings.hold_first_comments else []
    # A viewer with blocks or mutes (user.hiding) gets a body of their own: the kept one may show
    # comments hidden from them. Everyone else takes the kept path without a query (kiln.social.blocks).
    shared_body = (share is None and media.state == MediaState.PROCESSED and media.visibility != "private"
                   and not (user is not None and (user.id == media.owner_id or user.is_admin or user.hiding)))
    if not shared_body:
        response = render(request, "media.html", card=card, **body(own_held=own_held))
        if share is not None:
            response.headers["Cache-Control"] = "private, no-store"
        return response
    refusal = extras["comment_refusal"]
    variant = ("media-body", media.id, extras["comments_page"], user is not None, extras["favourited"],
               None if refusal is None else (type(refusal).__name__, refusal.code),
               tuple(c.id for c in extras["in_collections"]), base)
    html = keep_html(request, variant, lambda: render_block(
        request, "media.html", "content", **body(csrf_token=comments.CSRF_MARK, personalise_thread=_leave_marks)))
    moderates = may_delete_comment(None, media, user)
    kept_body = comments.personalise_thread(html, user, moderates, media.id, extras["comments_page"],
                                            request_csrf(request) if comments.CSRF_MARK in html else "")
    return render(request, "media.html", media=media, kept_body=kept_body, own_held=own_held, card=card)


def _leave_marks(html: str, *_: Any) -> Markup:
    """personalise_thread's stand-in while a shared body is made: the marks stay for each viewer's own."""
    return Markup(html)  # noqa: S704 - the thread's HTML, escaped as it was made


@router.get("/tag/{slug}", response_class=HTMLResponse)
def tag_page(request: Request, slug: str, session: DB, rt: RT, user: CurrentUser,
             before: str | None = None) -> HTMLResponse:
    tag = session.scalar(select(Tag).where(Tag.slug == slug))
    if tag is None:
        raise NotFound("No media is tagged '%(tag)s'.", tag=slug)
    query = blocks.leave_out(session, user, media_service.published_query(tag=tag), MediaEntry.owner_id)
    page = media_service.page(session, query, before, rt.settings.per_page, grid=True)
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
