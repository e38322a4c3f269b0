"""Atom 1.0 feeds for the site, each user and each tag."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select

from kiln.errors import NotFound
from kiln.i18n import _, interpolate
from kiln.media import services as media_service
from kiln.media.models import MediaEntry, Tag
from kiln.social import blocks
from kiln.typed import clean_typed
from kiln.web.deps import DB, RT, CurrentUser, site_url

router = APIRouter(include_in_schema=False)
FEED_SIZE = 20


def atom_feed(request: Request, rt, session, query, title: str, page_path: str, feed_path: str) -> Response:
    items = media_service.page(session, query, None, FEED_SIZE).items
    base = site_url(request)

    def file_url(rendition):
        return media_service.rendition_url(rt, rendition.key, base) if rendition is not None else None

    body = request.app.state.templates.get_template("feed.xml").render(
        title=title, site_name=rt.settings.site_name, items=items, base=base, page_url=base + page_path,
        feed_url=base + feed_path, updated=max((m.published for m in items if m.published), default=None),
        media_url=lambda m: media_service.media_url(base, m), file_url=file_url,
        main_of=media_service.main_rendition,
    )
    # What was stored before input was cleaned may still hold characters XML forbids.
    return Response(clean_typed(body), media_type="application/atom+xml; charset=utf-8")


@router.get("/feeds/atom")
def site_feed(request: Request, session: DB, rt: RT, user: CurrentUser) -> Response:
    title = interpolate(_("%(site)s: latest media"), {"site": rt.settings.site_name})
    query = blocks.leave_out(session, user, media_service.published_query(), MediaEntry.owner_id)
    return atom_feed(request, rt, session, query, title, "/", "/feeds/atom")


@router.get("/feeds/u/{username}/atom")
def user_feed(request: Request, username: str, session: DB, rt: RT, user: CurrentUser) -> Response:
    owner = blocks.get_person(session, username, user)  # a feed reader carries no login: only a browser is refused
    return atom_feed(request, rt, session, media_service.published_query(owner_id=owner.id),
                 interpolate(_("%(name)s on %(site)s"), {"name": owner.display_name or owner.username,
                                                        "site": rt.settings.site_name}), f"/u/{owner.username}",
                 f"/feeds/u/{owner.username}/atom")


@router.get("/feeds/tag/{slug}/atom")
def tag_feed(request: Request, slug: str, session: DB, rt: RT, user: CurrentUser) -> Response:
    tag = session.scalar(select(Tag).where(Tag.slug == slug))
    if tag is None:
        raise NotFound("No media is tagged '%(tag)s'.", tag=slug)
    return atom_feed(request, rt, session, blocks.leave_out(session, user, media_service.published_query(tag=tag),
                                                        MediaEntry.owner_id),
                 interpolate(_("Tagged “%(tag)s” on %(site)s"), {"tag": tag.name, "site": rt.settings.site_name}),
                 f"/tag/{slug}", f"/feeds/tag/{slug}/atom")
