"""ActivityPub routes (kiln.federation): WebFinger, NodeInfo, actors and their collections, notes,
albums, inboxes.

A profile's own address serves the actor to ActivityPub clients: ``Negotiation`` sends a GET of
``/u/NAME`` (its followers, following or outbox; an item's page ``/u/NAME/m/ID``, its Note; an
album's page ``/c/ID``, its collection) that asks for ``application/activity+json`` or ActivityStreams
JSON-LD to ``/ap/u/NAME...`` (``/ap/c/ID``) inside the app, before the page cache sees it, and marks
both answers ``Vary: Accept``. With ``[federation] enabled = false`` every route here is 404.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kiln.config import Settings
from kiln.errors import KilnError, NotFound
from kiln.federation import actors, albums, inbox, instance, publishing
from kiln.federation.fetch import ACTIVITY_JSON
from kiln.federation.signatures import SignedRequest, check_host
from kiln.media.models import MediaEntry
from kiln.web.deps import DB, RT, RowId

router = APIRouter(include_in_schema=False)
Username = Annotated[str, Path(min_length=1, max_length=30)]
Collection = Annotated[str, Path(pattern="^(followers|following|outbox)$")]
Resource = Annotated[str, Query(max_length=500, description="acct:name@host, or an actor's address")]
ROUTE_BODY_CAP = 4 * 1024**2 + 1  # [federation] max_inbox_bytes is checked as the body arrives
_NEGOTIATED = re.compile(r"^(/u/[^/]+(/(followers|following|outbox)|/m/[0-9]+)?|/c/[0-9]+)/?$")
NODEINFO_TYPE = 'application/json; profile="http://nodeinfo.diaspora.software/ns/schema/2.1#"'


_INBOX = re.compile(r"^(/u/[^/]+)?/inbox$")


def is_inbox(path: str) -> bool:
    """Whether ``path`` is an inbox: written to by other servers, with a signature and no cookie."""
    return _INBOX.match(path) is not None


def wants_activity(accept: str) -> bool:
    """Whether an Accept header asks for ActivityStreams (either of the two types the spec names)."""
    accept = accept.lower()
    return ACTIVITY_JSON in accept or ("application/ld+json" in accept and "activitystreams" in accept)


class Negotiation:
    """Sends ActivityPub GETs of a profile's addresses to the actor routes (see the module's docstring)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app, self.enabled = app, settings.federation.enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (not self.enabled or scope["type"] != "http" or scope["method"] not in ("GET", "HEAD")
                or not _NEGOTIATED.match(scope["path"])):
            await self.app(scope, receive, send)
            return
        accept = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"accept"), "")
        if wants_activity(accept):
            path = "/ap" + scope["path"].rstrip("/")
            scope = {**scope, "path": path, "raw_path": path.encode("utf-8")}

        async def vary_on_accept(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).add_vary_header("Accept")
            await send(message)

        await self.app(scope, receive, vary_on_accept)


def _enabled(settings: Settings) -> None:
    if not settings.federation.enabled:
        raise NotFound("Federation is turned off on this site.")


def _json(document: dict[str, Any], media_type: str = ACTIVITY_JSON, status: int = 200) -> Response:
    return Response(json.dumps(document, ensure_ascii=False), status_code=status, media_type=media_type)


def _problem(exc: KilnError) -> Response:
    retry_after = getattr(exc, "retry_after", None)
    return JSONResponse({"error": exc.as_dict()}, status_code=exc.status,
                        headers={"Retry-After": str(retry_after)} if retry_after else None)


@router.get("/.well-known/webfinger")
def webfinger(session: DB, rt: RT, resource: Resource = "") -> Response:
    try:
        _enabled(rt.settings)
        document = actors.webfinger(session, rt.settings, resource)
    except KilnError as exc:
        return _problem(exc)
    return _json(document, "application/jrd+json")


@router.get("/.well-known/nodeinfo")
def nodeinfo_links(rt: RT) -> Response:
    try:
        _enabled(rt.settings)
    except KilnError as exc:
        return _problem(exc)
    return _json(actors.nodeinfo_links(rt.settings), "application/json")


@router.get("/nodeinfo/2.1")
def nodeinfo(session: DB, rt: RT) -> Response:
    try:
        _enabled(rt.settings)
    except KilnError as exc:
        return _problem(exc)
    return _json(actors.nodeinfo(session, rt.settings), NODEINFO_TYPE)


@router.get(instance.PATH)
def instance_actor(request: Request, session: DB, rt: RT) -> Response:
    """The site's own actor (kiln.federation.instance), to anyone who asks, signed or not. A browser
    asking for a page is sent to the home page."""
    try:
        _enabled(rt.settings)
    except KilnError as exc:
        return _problem(exc)
    accept = request.headers.get("accept", "")
    if "text/html" in accept and not wants_activity(accept):
        return RedirectResponse("/", status_code=303, headers={"Vary": "Accept"})
    document = instance.document(session, rt.settings)
    session.commit()  # a key pair made on first need
    answer = _json(document)
    answer.headers["Vary"] = "Accept"  # the same address answers a browser otherwise
    return answer


@router.get("/ap/u/{username}")
def actor(username: Username, session: DB, rt: RT) -> Response:
    """The account as an ActivityPub actor (what /u/NAME answers to ActivityPub clients)."""
    try:
        _enabled(rt.settings)
        try:
            user = actors.local_actor(session, username)
        except NotFound:
            address = actors.actor_id(rt.settings, username)
            deleted = publishing.tombstone(session, address) if actors.username_of(rt.settings, address) else None
            if deleted is None:
                raise
            return _json({"@context": actors.AS_CONTEXT, "id": address, "type": "Tombstone",
                          "formerType": "Person", "deleted": deleted.isoformat(timespec="seconds")}, status=410)
        document = actors.person(session, rt.settings, rt.stores, user)
    except KilnError as exc:
        return _problem(exc)
    session.commit()  # a key pair made on first need
    return _json(document)


PageFlag = Annotated[int | None, Query(ge=1, le=1)]
Before = Annotated[int | None, Query(ge=1, le=2**31 - 1)]


@router.get("/ap/u/{username}/{collection}")
def actor_collection(username: Username, collection: Collection, session: DB, rt: RT, page: PageFlag = None,
                     before: Before = None) -> Response:
    """The collection (its size, a link to its first page), or with ``page=1`` one page of it, newest
    first, older pages by ``before``."""
    try:
        _enabled(rt.settings)
        user = actors.local_actor(session, username)
        if page is None:
            document = actors.collection(session, rt.settings, user, collection)
        else:
            document = actors.collection_page(session, rt.settings, rt.stores, user, collection, before)
    except KilnError as exc:
        return _problem(exc)
    return _json(document)


@router.get("/ap/u/{username}/m/{media_id}")
def media_note(username: Username, media_id: RowId, session: DB, rt: RT) -> Response:
    """A public or unlisted item as a Note (what its page answers to ActivityPub clients). Anything another
    server may not see (private, unfinished, removed, a banned owner's) is 404, whoever signs, or 410
    with a Tombstone when it was sent to other servers before it went."""
    try:
        _enabled(rt.settings)
        owner = actors.local_actor(session, username)
        media = session.get(MediaEntry, media_id)
        if media is None or media.owner_id != owner.id or not publishing.federated(media):
            address = publishing.item_address(rt.settings, owner.username, media_id)
            deleted = publishing.tombstone(session, address)
            if deleted is not None:  # other servers were sent it: it is gone, not unknown
                return _json({"@context": actors.AS_CONTEXT, "id": address, "type": "Tombstone",
                              "deleted": deleted.isoformat(timespec="seconds")}, status=410)
            raise NotFound("There is no such media. It may have been deleted.")
        document = publishing.note(rt.settings, rt.stores, media)
    except KilnError as exc:
        return _problem(exc)
    return _json(document)


AlbumCursor = Annotated[str | None, Query(max_length=24, description="the album page's cursor, POSITION-ID")]


@router.get("/ap/c/{collection_id}")
def album(collection_id: RowId, session: DB, rt: RT, page: PageFlag = None, before: AlbumCursor = None) -> Response:
    """A public album as an ``OrderedCollection`` of its items' Note ids (what its page answers to
    ActivityPub clients), or with ``page=1`` one page of them in the album's order, later pages by
    ``before``. Unlisted and private albums are 404 whoever signs (kiln.federation.albums)."""
    try:
        _enabled(rt.settings)
        found = albums.public_album(session, collection_id)
        if page is None:
            document = albums.collection(session, rt.settings, found)
        else:
            document = albums.collection_page(session, rt.settings, found, before)
    except KilnError as exc:
        return _problem(exc)
    return _json(document)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _TooLarge(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


class _TooLarge(KilnError):
    code = "too_large"
    status = 413

    def __init__(self, limit: int) -> None:
        super().__init__("Activities posted to an inbox are limited to %(n)s bytes.", n=limit)


async def _receive(request: Request, username: str | None) -> Response:
    rt = request.app.state.runtime
    settings: Settings = rt.settings
    try:
        _enabled(settings)
        body = await _read_body(request, settings.federation.max_inbox_bytes)
        try:
            activity = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise inbox.BadActivity("The body is not JSON.", code="bad_json") from exc
        inbox.check_shape(activity)
        query = request.url.query
        target = request.url.path + (f"?{query}" if query else "")
        scheme = settings.link_base().split("://", 1)[0]
        check_host(request.headers, actors.host(settings), scheme)
        signed = SignedRequest(request.method, target, {k.lower(): v for k, v in request.headers.items()}, body,
                               f"{scheme}://{request.headers.get('host', '')}{target}")
        await anyio.to_thread.run_sync(inbox.receive, rt, signed, activity, username)
    except KilnError as exc:
        return _problem(exc)
    return Response(status_code=202)


@router.post("/u/{username}/inbox", max_body_size=ROUTE_BODY_CAP)
async def actor_inbox(request: Request, username: Username) -> Response:
    """An account's own inbox: signed activities only (401 otherwise), answered 202 and processed later."""
    return await _receive(request, username)


@router.post("/inbox", max_body_size=ROUTE_BODY_CAP)
async def shared_inbox(request: Request) -> Response:
    """The site's shared inbox, for activities addressed to several of its accounts at once."""
    return await _receive(request, None)
