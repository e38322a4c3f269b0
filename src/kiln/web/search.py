"""Search: the page (/search), the API (GET /api/v1/search), an Atom feed of a search and the
OpenSearch description browsers use to offer "search this site". What is found and who may see it:
kiln.search.service."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from kiln.errors import InvalidInput
from kiln.i18n import N_, _, gettext, interpolate
from kiln.media import licenses
from kiln.media import services as media_service
from kiln.media.models import MediaEntry
from kiln.media.services import GridPage
from kiln.media.visibility import src_for
from kiln.mediatypes import kinds
from kiln.search import service
from kiln.social import blocks, favourites
from kiln.web.api import ERRORS, MediaList
from kiln.web.deps import DB, RT, CurrentUser, SiteURL, site_url
from kiln.web.feeds import FEED_SIZE, atom_feed
from kiln.web.templating import render

router = APIRouter()
Text = Annotated[str | None, Query(max_length=200)]
Short = Annotated[str | None, Query(max_length=64)]


SORT_NAMES = {"relevance": N_("Best match"), "newest": N_("Newest first"), "oldest": N_("Oldest first"),
              "favourites": N_("Most favourited")}


def _form_choices() -> dict[str, Any]:
    return {"kinds": sorted((name, gettext(kind.label)) for name, kind in kinds().items()),
            "licenses": [(service.license_slug(lic), lic) for lic in licenses.LICENSES],
            "sorts": [(name, gettext(SORT_NAMES[name])) for name in service.SORTS]}


@router.get("/search", response_class=HTMLResponse, include_in_schema=False)
def search_page(request: Request, session: DB, rt: RT, user: CurrentUser, q: Text = None, kind: Short = None,
                owner: Short = None, tag: Short = None, license: Short = None, since: Short = None,
                until: Short = None, sort: Short = None, before: Short = None) -> HTMLResponse:
    """Words and filters in the address, so a search is a link to share and the back button works."""
    try:
        search = service.make_search(q=q, kind=kind, owner=owner, tag=tag, license=license, since=since, until=until,
                                     sort=sort)
        page = service.find(rt, session, user, search, before, rt.settings.per_page)
    except InvalidInput as exc:
        return render(request, "search.html", status=422, error=exc.message, search=service.Search(q=(q or "")[:200]),
                      page=None, **_form_choices())
    items = page.items
    more = f"/search?{urlencode({**search.params(), 'before': page.next_cursor})}" if page.next_cursor else None
    feed = f"/feeds/search/atom?{urlencode(search.params(sort='newest'))}" if search.asked else None
    title = (interpolate(_("“%(words)s” · Search"), {"words": search.q}) if search.q else _("Search"))
    return render(request, "search.html", search=search, page=page, items=items, more_url=more, feed_url=feed,
                  title=title, media_src=src_for(rt, items if user is not None else []),
                  order_links=[(name, gettext(SORT_NAMES[name]), "/search?" + urlencode(search.params(sort=name)))
                               for name in service.SORTS],
                  **_form_choices())


Words = Annotated[str | None, Query(max_length=200, description="Words, and \"quoted phrases\"; the last word is a "
                                                                 "prefix unless a space follows")]
KindParam = Annotated[str | None, Query(max_length=64, description="image, video, audio, pdf, text, model3d")]
OwnerParam = Annotated[str | None, Query(max_length=64, description="A username")]
TagParam = Annotated[str | None, Query(max_length=64, description="A tag's slug")]
LicenseParam = Annotated[str | None, Query(max_length=64, description="cc-by-4.0, cc0-1.0, all-rights-reserved, ...")]
SinceParam = Annotated[str | None, Query(max_length=64, description="Published on or after this day (YYYY-MM-DD)")]
UntilParam = Annotated[str | None, Query(max_length=64, description="Published on or before this day (YYYY-MM-DD)")]
SortParam = Annotated[str | None, Query(max_length=64, description="relevance (the default with words), newest, "
                                                                   "oldest, favourites")]


@router.get("/api/v1/search", response_model=MediaList, responses=ERRORS, tags=["search"])
def search_api(session: DB, rt: RT, viewer: CurrentUser, base: SiteURL, q: Words = None, kind: KindParam = None,
               owner: OwnerParam = None, tag: TagParam = None, license: LicenseParam = None, since: SinceParam = None,
               until: UntilParam = None, sort: SortParam = None,
               cursor: Annotated[str | None, Query(max_length=64)] = None,
               limit: Annotated[int, Query(ge=1, le=100)] = 30) -> dict[str, Any]:
    """Media matching words and filters, that the caller may see (public items; a caller's own
    unlisted and private ones too), keyset-paginated. Words or at least one filter are needed."""
    search = service.make_search(q=q, kind=kind, owner=owner, tag=tag, license=license, since=since, until=until,
                                 sort=sort)
    if not search.asked:
        raise InvalidInput("Say what to search for: some words (q) or a filter.", code="empty_search")
    page = service.find(rt, session, viewer, search, cursor, limit)
    # Whole rows (every rendition and tag, for the media JSON), in the page's order, in two queries.
    rows = {m.id: m for m in session.scalars(select(MediaEntry).where(MediaEntry.id.in_(page.ids))).unique()}
    items = [rows[i] for i in page.ids if i in rows]
    mine = favourites.favourited_ids(session, viewer, (m.id for m in items))
    return {"items": [media_service.media_json(rt, m, base, favourited=None if viewer is None else m.id in mine)
                      for m in items], "next": page.next_cursor}


@router.get("/feeds/search/atom", include_in_schema=False)
def search_feed(request: Request, session: DB, rt: RT, q: Text = None, kind: Short = None, owner: Short = None,
                tag: Short = None, license: Short = None, since: Short = None, until: Short = None) -> Response:
    """The newest public items matching a search (a feed reader has no login: public items only)."""
    search = service.make_search(q=q, kind=kind, owner=owner, tag=tag, license=license, since=since, until=until,
                                 sort="newest")
    ids = service.find(rt, session, None, search, per_page=FEED_SIZE).ids if search.asked else []
    title = interpolate(_("%(site)s: search for “%(words)s”"), {"site": rt.settings.site_name, "words": search.q})
    params = urlencode(search.params())
    return atom_feed(request, rt, session, select(MediaEntry).where(MediaEntry.id.in_(ids)), title,
                 f"/search?{params}", f"/feeds/search/atom?{params}")


EXPLORE_WEEK = dt.timedelta(days=7)
EXPLORE_ITEMS = 12
EXPLORE_TAGS = 30


@router.get("/explore", response_class=HTMLResponse, include_in_schema=False)
def explore(request: Request, session: DB, rt: RT, user: CurrentUser) -> HTMLResponse:
    """What people liked this week, the most used tags, and the newest items: the same for every
    visitor (the anonymous page cache keeps it)."""
    from kiln.db.base import utcnow

    popular = GridPage(session, service.most_favourited(session, user, utcnow() - EXPLORE_WEEK, EXPLORE_ITEMS), None)
    query = blocks.leave_out(session, user, media_service.published_query(), MediaEntry.owner_id)
    newest = media_service.page(session, query, None, EXPLORE_ITEMS, grid=True)
    tags = media_service.tag_counts(session)[:EXPLORE_TAGS]
    return render(request, "explore.html", popular=popular.items, newest=newest, tags=tags,
                  more_newest=bool(newest.next_cursor), feed_url="/feeds/atom")


@router.get("/opensearch.xml", include_in_schema=False)
def opensearch(request: Request, rt: RT) -> Response:
    """The OpenSearch description: browsers offer "search Kiln" from the address bar."""
    body = request.app.state.templates.get_template("opensearch.xml").render(
        site_name=rt.settings.site_name, base=site_url(request))
    return Response(body, media_type="application/opensearchdescription+xml",
                    headers={"Cache-Control": "public, max-age=86400"})
