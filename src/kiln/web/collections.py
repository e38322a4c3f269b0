"""Collections (albums): their pages, forms and Atom feeds; the media page's "In collections" and
"Add to collection"; the API is in collections_api.py. Who sees what: kiln.social.collections."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from kiln.accounts.models import User
from kiln.db.base import utcnow
from kiln.errors import InvalidInput, KilnError
from kiln.i18n import _, interpolate
from kiln.media import services as media_service
from kiln.media.models import MediaEntry
from kiln.media.visibility import src_for
from kiln.runtime import Runtime
from kiln.social import blocks, shares
from kiln.social import collections as service
from kiln.social.models import Collection, ShareLink
from kiln.typed import clean_typed
from kiln.web import collections_api, unfurl
from kiln.web.deps import DB, RT, CurrentUser, LoggedIn, RowId, ShareToken, check_csrf, flash, site_url
from kiln.web.fragments import kept
from kiln.web.templating import render

pages = APIRouter(include_in_schema=False, dependencies=[Depends(check_csrf)])
Text = Annotated[str, Form(max_length=25000)]
Short = Annotated[str, Form(max_length=200)]
FormId = Annotated[int, Form(ge=1, le=2**31 - 1)]
FEED_ITEMS = 100
MAX_EXPIRY_DAYS = 3650


def share_query(share: str | None) -> str:
    return f"?share={quote(share, safe='')}" if share else ""


def media_context(request: Request, session: Session, rt: Runtime, media: MediaEntry,
                  user: User | None) -> dict[str, Any]:
    """What this module adds to the media page: the collections it is in that the viewer may see
    listed, and, for its owner, the collections they may add it to."""
    own = user is not None and user.id == media.owner_id
    found = kept(request, ("containing", media.id), lambda: service.containing_all(session, media.id))
    hidden = blocks.hidden(session, user).people  # collections of people hidden from the viewer are left out
    return {"in_collections": [c for c in service.containing(session, media, user, found) if c.owner_id not in hidden],
            "addable_collections": service.addable(session, user) if own and user is not None else []}


def _no_store(response: Response, share: ShareLink | None) -> Response:
    """A page seen through a share link is for its holder only, and must not outlive the link."""
    if share is not None:
        response.headers["Cache-Control"] = "private, no-store"
    return response


@pages.get("/c/{collection_id}", response_class=HTMLResponse)
def collection_page(request: Request, collection_id: RowId, session: DB, rt: RT, user: CurrentUser,
                    share: ShareToken = None, before: str | None = None) -> Response:
    removed = session.get(Collection, collection_id)
    if removed is not None and removed.removed is not None and user is not None and user.id == removed.owner_id \
            and not user.is_admin:  # its owner is told why (kiln.moderation.removal), and shown nothing else
        return render(request, "removed.html", status=410, title=removed.title, reason=removed.removed_reason,
                      collection=True)
    collection, link = shares.viewable(session, collection_id, user, share)
    page = service.items_page(session, collection, user, link, before, rt.settings.per_page)
    media = [item.media for item in page.items]
    member = service.is_member(session, collection, user)
    response = render(request, "collection.html", collection=collection, page=page, share=share if link else None,
                      share_query=share_query(share if link else None), member=member,
                      own=user is not None and user.id == collection.owner_id,
                      cover=service.cover(session, collection, user, link),
                      collaborators=service.collaborators(session, collection),
                      media_src=src_for(rt, media, share if link else None),
                      feed_url=f"/feeds/c/{collection.id}/atom{share_query(share if link else None)}",
                      card=unfurl.collection_card(request, session, rt, collection, user))
    return _no_store(response, link)


@pages.get("/u/{username}/collections", response_class=HTMLResponse)
def user_collections(request: Request, username: str, session: DB, rt: RT, user: CurrentUser,
                     before: str | None = None) -> Response:
    owner = blocks.get_person(session, username, user)
    rows, nxt = service.user_collections(session, owner, user, before, rt.settings.per_page)
    covers = {c.id: service.cover(session, c, user) for c in rows}
    return render(request, "collections.html", owner=owner, collections=rows, next_cursor=nxt, covers=covers,
                  own=user is not None and user.id == owner.id,
                  media_src=src_for(rt, [m for m in covers.values() if m is not None]))


@pages.get("/collections/new", response_class=HTMLResponse)
def new_form(request: Request, user: LoggedIn) -> Response:
    return render(request, "collection_new.html")


@pages.post("/collections/new")
def create(request: Request, session: DB, user: LoggedIn, title: Short = "", description: Text = "",
           visibility: Short = "public", media_id: Annotated[int | None, Form(ge=1, le=2**31 - 1)] = None) -> Response:
    """Make a collection (from the media page: with that item in it)."""
    try:
        collection = service.create(session, user, title, description, visibility)
        if media_id is not None:
            service.add_item(session, user, collection, media_service.get_media(session, media_id))
    except InvalidInput as exc:
        session.rollback()
        return render(request, "collection_new.html", status=exc.status, error=exc.message, title=title,
                      description=description, visibility=visibility)
    session.commit()
    flash(request, interpolate(_("Collection “%(title)s” made."), {"title": collection.title}), "success")
    return RedirectResponse(f"/c/{collection.id}", status_code=303)


def _manage_page(request: Request, session: Session, rt: Runtime, collection: Collection, user: User,
                 status: int = 200, **context: Any) -> Response:
    items = service.visible_items(session, collection, user)
    return render(request, "collection_edit.html", status=status, collection=collection, items=items,
                  hidden=len(service.all_items(session, collection)) - len(items),
                  collaborators=service.collaborators(session, collection),
                  shares=shares.shares(session, collection), share_state=shares.share_state,
                  base=site_url(request), media_src=src_for(rt, [i.media for i in items]), **context)


@pages.get("/c/{collection_id}/edit", response_class=HTMLResponse)
def edit_form(request: Request, collection_id: RowId, session: DB, rt: RT, user: LoggedIn) -> Response:
    collection = service.get_collection(session, collection_id)
    service.check_owner(session, collection, user)
    return _manage_page(request, session, rt, collection, user)


@pages.post("/c/{collection_id}/edit")
def edit(request: Request, collection_id: RowId, session: DB, rt: RT, user: LoggedIn, title: Short = "",
         description: Text = "", visibility: Short = "public", cover: Short = "") -> Response:
    collection = service.get_collection(session, collection_id)
    try:
        cover_id = int(cover) if cover.isascii() and cover.isdigit() and len(cover) < 10 else None
        service.update(session, user, collection, title=title, description=description, visibility=visibility,
                       cover_media_id=cover_id, clear_cover=cover_id is None)
    except InvalidInput as exc:
        session.rollback()
        return _manage_page(request, session, rt, service.get_collection(session, collection_id), user,
                            status=exc.status, error=exc.message)
    session.commit()
    flash(request, _("Saved."), "success")
    return RedirectResponse(f"/c/{collection_id}/edit", status_code=303)


@pages.post("/c/{collection_id}/order")
async def arrange(request: Request, collection_id: RowId, session: DB, rt: RT, user: LoggedIn) -> Response:
    """The form without JavaScript: a position number and a note per item (``pos_ID``, ``note_ID``)."""
    form = await request.form()
    numbers: dict[int, str] = {}
    notes: dict[int, str] = {}
    for key, value in form.multi_items():
        kind, _sep, raw_id = key.partition("_")
        if kind in ("pos", "note") and raw_id.isascii() and raw_id.isdigit() and len(raw_id) < 10 \
                and isinstance(value, str):
            (numbers if kind == "pos" else notes)[int(raw_id)] = value
    return await _run(request, _arrange, session, rt, user, collection_id, numbers, notes)


async def _run(request: Request, fn: Any, *args: Any) -> Response:
    return await run_in_threadpool(fn, request, *args)


def _arrange(request: Request, session: Session, rt: Runtime, user: User, collection_id: int,
             numbers: dict[int, str], notes: dict[int, str]) -> Response:
    collection = service.get_collection(session, collection_id)
    service.check_owner(session, collection, user)
    order = service.order_from_numbers(service.visible_items(session, collection, user), numbers)
    try:
        service.reorder(session, user, collection, order, notes)
    except InvalidInput as exc:
        session.rollback()
        return _manage_page(request, session, rt, service.get_collection(session, collection_id), user,
                            status=exc.status, error=exc.message)
    session.commit()
    flash(request, _("Order and notes saved."), "success")
    return RedirectResponse(f"/c/{collection_id}/edit#items", status_code=303)


@pages.post("/c/{collection_id}/delete")
def delete(request: Request, collection_id: RowId, session: DB, user: LoggedIn, confirm: Short = "") -> Response:
    collection = service.get_collection(session, collection_id)
    service.check_owner(session, collection, user, admin_too=True)
    if confirm != "yes":
        flash(request, _("Tick the box to confirm that the collection should be deleted."), "error")
        return RedirectResponse(f"/c/{collection_id}/edit#delete", status_code=303)
    owner, title = collection.owner.username, collection.title
    service.remove_collection(session, user, collection)
    session.commit()
    flash(request, interpolate(_("Deleted the collection “%(title)s”; its items are still there."),
                               {"title": title}))
    return RedirectResponse(f"/u/{owner}/collections", status_code=303)


@pages.post("/collections/items")
def add_item(request: Request, session: DB, user: LoggedIn, collection_id: FormId, media_id: FormId,
             note: Text = "") -> Response:
    """The media page's "Add to a collection" (its owner's)."""
    collection = service.get_collection(session, collection_id)
    media = media_service.get_media(session, media_id)
    service.add_item(session, user, collection, media, note)
    session.commit()
    flash(request, interpolate(_("Added to “%(title)s”."), {"title": collection.title}), "success")
    return RedirectResponse(f"/u/{media.owner.username}/m/{media.id}", status_code=303)


@pages.post("/c/{collection_id}/items/{media_id}/remove")
def remove_item(request: Request, collection_id: RowId, media_id: RowId, session: DB, user: LoggedIn) -> Response:
    collection = service.get_collection(session, collection_id)
    service.remove_item(session, user, collection, media_id)
    session.commit()
    flash(request, _("Removed from the collection."), "success")
    back = f"/c/{collection_id}/edit#items" if user.id == collection.owner_id else f"/c/{collection_id}"
    return RedirectResponse(back, status_code=303)


@pages.post("/c/{collection_id}/collaborators")
def invite(request: Request, collection_id: RowId, session: DB, rt: RT, user: LoggedIn,
           username: Short = "") -> Response:
    collection = service.get_collection(session, collection_id)
    service.check_owner(session, collection, user)
    try:
        invitee = service.invite(session, user, collection, username)
    except KilnError as exc:
        session.rollback()
        return _manage_page(request, session, rt, service.get_collection(session, collection_id), user,
                            status=exc.status, error=exc.message)
    session.commit()
    flash(request, interpolate(_("%(name)s can now add their media to this collection."),
                               {"name": invitee.username}), "success")
    return RedirectResponse(f"/c/{collection_id}/edit#collaborators", status_code=303)


@pages.post("/c/{collection_id}/collaborators/{username}/remove")
def remove_collaborator(request: Request, collection_id: RowId, username: str, session: DB,
                        user: LoggedIn) -> Response:
    collection = service.get_collection(session, collection_id)
    service.remove_collaborator(session, user, collection, username)
    session.commit()
    if user.id != collection.owner_id:
        flash(request, _("You left the collection."), "success")
        return RedirectResponse(f"/c/{collection_id}", status_code=303)
    flash(request, _("Collaborator removed."), "success")
    return RedirectResponse(f"/c/{collection_id}/edit#collaborators", status_code=303)


def expiry(days: str) -> dt.datetime | None:
    """A link's expiry ``days`` from now (empty: never)."""
    days = (days or "").strip()
    if not days:
        return None
    if not (days.isascii() and days.isdigit() and 1 <= int(days[:5]) <= MAX_EXPIRY_DAYS):
        raise InvalidInput("A link lasts from 1 to %(n)s days, or leave it empty for no expiry.",
                           code="bad_expiry", n=MAX_EXPIRY_DAYS)
    return utcnow() + dt.timedelta(days=int(days))


@pages.post("/c/{collection_id}/shares")
def make_share(request: Request, collection_id: RowId, session: DB, rt: RT, user: LoggedIn, label: Short = "",
               days: Short = "") -> Response:
    """The new link is shown once, on the page this answers with (only its hash is kept)."""
    collection = service.get_collection(session, collection_id)
    service.check_owner(session, collection, user)
    try:
        _row, token = shares.make_share(session, user, collection, label, expiry(days))
    except InvalidInput as exc:
        session.rollback()
        return _manage_page(request, session, rt, service.get_collection(session, collection_id), user,
                            status=exc.status, error=exc.message)
    session.commit()
    new_link = f"{site_url(request)}/c/{collection_id}{share_query(token)}"
    return _manage_page(request, session, rt, service.get_collection(session, collection_id), user,
                        new_link=new_link)


@pages.post("/c/{collection_id}/shares/{link_id}/revoke")
def revoke_share(request: Request, collection_id: RowId, link_id: RowId, session: DB, user: LoggedIn) -> Response:
    collection = service.get_collection(session, collection_id)
    shares.revoke_share(session, user, collection, link_id)
    session.commit()
    flash(request, _("Link revoked: it now leads nowhere."), "success")
    return RedirectResponse(f"/c/{collection_id}/edit#shares", status_code=303)


feeds = APIRouter(include_in_schema=False)


@feeds.get("/feeds/c/{collection_id}/atom")
def collection_feed(request: Request, collection_id: RowId, session: DB, rt: RT, user: CurrentUser,
                    share: ShareToken = None) -> Response:
    """The collection's items in its order (the first hundred the viewer may see)."""
    collection, link = shares.viewable(session, collection_id, user, share)
    items = [item.media for item in service.visible_items(session, collection, user, link, FEED_ITEMS)
             if item.media.published is not None]
    base = site_url(request)
    tail = share_query(share if link else None)
    src = src_for(rt, items, share if link else None)

    def file_url(rendition: Any) -> str | None:
        if rendition is None:
            return None
        url = src(rendition.key)
        return url if "://" in url else base + url

    def media_url(media: MediaEntry) -> str:
        return media_service.media_url(base, media) + (tail if media.visibility != "public" else "")

    body = request.app.state.templates.get_template("feed.xml").render(
        title=interpolate(_("%(title)s, a collection on %(site)s"), {"title": collection.title,
                                                                     "site": rt.settings.site_name}),
        site_name=rt.settings.site_name, items=items, base=base, page_url=f"{base}/c/{collection.id}{tail}",
        feed_url=f"{base}/feeds/c/{collection.id}/atom{tail}",
        updated=max([collection.updated, *(m.published for m in items if m.published)]),
        media_url=media_url, file_url=file_url, main_of=media_service.main_rendition)
    response = Response(clean_typed(body), media_type="application/atom+xml; charset=utf-8")
    return _no_store(response, link)


router = APIRouter()
router.include_router(pages)
router.include_router(feeds)
router.include_router(collections_api.router)
