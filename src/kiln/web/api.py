"""The JSON API, /api/v1. The same media shape as `kiln media show --json`."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hmac
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from kiln.accounts import services as accounts
from kiln.accounts.models import User
from kiln.errors import InvalidInput, NotFound, PermissionDenied
from kiln.media import services as media_service
from kiln.media.models import ALT_TEXT_MAX, MEDIA_STATES, MediaEntry
from kiln.media.services import MediaFields
from kiln.media.visibility import visible
from kiln.processing import ledger
from kiln.processing.retry import nothing_to_retry, retry_media
from kiln.processing.stats import admin_overview
from kiln.runtime import Runtime
from kiln.social import blocks, favourites
from kiln.social import collections as collection_service
from kiln.web.deps import (
    CSRF_COOKIE,
    DB,
    RT,
    SESSION_COOKIE,
    ClientIP,
    CsrfFailed,
    CurrentUser,
    RowId,
    SiteURL,
    Throttles,
    Writer,
    is_bearer,
    reclaim_database,
    release_database,
    site_url,
)
from kiln.web.panels import Admin
from kiln.web.uploads import STREAMED, UploadedFile, read_upload


async def api_csrf(request: Request) -> None:
    """A browser calling the API with its login cookie must send X-CSRF-Token; Bearer calls need not.
    Only a Bearer token exempts a request (it is then authenticated by the token alone, never by the
    cookie): any other Authorization header (``Basic junk``) leaves the cookie, and so the check, in force."""
    if request.method in ("GET", "HEAD", "OPTIONS") or is_bearer(request):
        return
    if request.cookies.get(SESSION_COOKIE):
        sent, cookie = request.headers.get("x-csrf-token", ""), request.cookies.get(CSRF_COOKIE, "")
        if not cookie or not hmac.compare_digest(sent, cookie):
            raise CsrfFailed("Send the X-CSRF-Token header (or use a Bearer token).")


VisibilityName = Literal["public", "unlisted", "private"]
router = APIRouter(prefix="/api/v1", tags=["media"], dependencies=[Depends(api_csrf)])


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorOut(BaseModel):
    error: ErrorBody


ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"model": ErrorOut} for s in (400, 401, 403, 404, 413, 415, 422)
}


class RenditionOut(BaseModel):
    url: str
    width: int | None
    height: int | None
    mime_type: str
    bytes: int


class LicenseOut(BaseModel):
    url: str
    name: str


class StepOut(BaseModel):
    name: str
    state: str
    attempts: int
    progress: float
    next_run: str | None
    error: ErrorBody | None


class CaptionOut(BaseModel):
    language: str = Field(description="BCP 47 language tag, e.g. en, de, pt-BR")
    label: str = Field(description="The name the player's menu shows")
    cues: int
    url: str = Field(description="The WebVTT file")


class MediaOut(BaseModel):
    id: int
    kind: str
    state: str = Field(description="queued, processing, processed or failed")
    visibility: str = Field(description="public, unlisted (by link only) or private (owner and admins)")
    title: str
    description: str
    alt_text: str = Field(description="What the picture shows, for people who cannot see it (empty: not written yet; "
                          "pages then use the title)")
    owner: str
    url: str
    created: str
    published: str | None
    tags: list[str]
    license: LicenseOut
    mime_type: str
    width: int | None
    height: int | None
    info: dict[str, Any] = Field(default_factory=dict, description="What the kind learned: duration, codecs, "
                                 "pages, triangles, encoding, blurhash placeholder ...")
    renditions: dict[str, RenditionOut]
    captions: list[CaptionOut] = Field(default_factory=list, description="Caption and subtitle tracks "
                                       "(video and audio), one per language")
    favourites: int = Field(0, description="How many people favourited it")
    comments: int = Field(0, description="Comments shown on it, replies included")
    comments_enabled: bool = Field(True, description="Whether the owner lets people comment on this item "
                                   "(their account setting may still turn comments off)")
    favourited: bool | None = Field(None, description="Whether you favourited it (only when logged in)")
    error: ErrorBody | None = None
    steps: list[StepOut] | None = None
    retry_at: str | None = None


class MediaList(BaseModel):
    items: list[MediaOut]
    next: str | None = Field(description="Pass as `cursor` to get the next page")


class FailureCountOut(BaseModel):
    code: str
    message: str = Field(description="The most frequent wording of this failure, as owners see it")
    items: int = Field(description="Media with a step failed for good with this code")
    failed: int = Field(description="Steps failed for good")
    retrying: int = Field(description="Steps waiting to retry after a failure with this code")


class LaneOut(BaseModel):
    name: str = Field(description="Queue name, KIND.REASON")
    waiting: int = Field(description="Items waiting in this lane according to the ledger")
    messages: int | None = Field(description="Messages in the broker's queue; null when unknown")
    broker: str = Field(description="ok, unknown (the broker did not answer) or not available (no broker)")


class StuckOut(BaseModel):
    media_id: int
    title: str
    owner: str
    kind: str
    steps: list[str]
    state: str = Field(description="The steps' state: queued, pending or running")
    since: dt.datetime | None = Field(description="When they should have moved")
    reason: str


class FailedItemOut(BaseModel):
    media_id: int
    title: str
    owner: str
    kind: str
    media_state: str
    steps: list[str] = Field(description="The failed steps, in order")
    code: str = Field(description="The error code of the first failed step")
    message: str
    attempts: int
    at: dt.datetime | None


class OutboxRowOut(BaseModel):
    id: int
    kind: str = Field(description="mail, verify_request (the worker writes the confirmation mail) or "
                      "reset_request (the worker mails a link if the address has an account)")
    summary: str = Field(description="A mail's subject and recipient (never its body)")
    state: str = Field(description="queued, running, pending (waiting to retry), done or failed")
    attempts: int
    created: dt.datetime
    next_run: dt.datetime | None = Field(description="When a waiting effect is retried")
    code: str | None = Field(description="Why it failed last: timeout, unreachable, worker_lost, error")
    message: str | None


class OutboxOut(BaseModel):
    counts: dict[str, int] = Field(description="Effects per state")
    waiting: list[OutboxRowOut] = Field(description="Queued, running or waiting to retry; oldest first (20)")
    failed: list[OutboxRowOut] = Field(description="Failed for good; newest first (20); `kiln outbox retry`")


class ProcessingOverviewOut(BaseModel):
    media: dict[str, int] = Field(description="Media per state")
    steps: dict[str, int] = Field(description="Processing steps per state")
    failures: list[FailureCountOut]
    lanes: list[LaneOut]
    stuck: list[StuckOut]
    latest_failures: list[FailedItemOut]
    outbox: OutboxOut = Field(description="Mail waiting to be sent or failed (docs/processing.md)")
    generated: dt.datetime


class TokenRequest(BaseModel):
    username: str = Field(max_length=254)
    password: str = Field(max_length=1024)
    name: str = Field("", max_length=100)
    scope: str = Field("write", pattern="^(read|write)$")


class TokenOut(BaseModel):
    token: str
    scope: str


class MediaPatch(BaseModel):
    title: str | None = Field(None, max_length=200)
    description: str | None = Field(None, max_length=20000)
    alt_text: str | None = Field(None, max_length=ALT_TEXT_MAX, description="What the picture shows, for people "
                                 "who cannot see it; an empty string removes it")
    tags: list[str] | None = Field(None, max_length=30)
    license: str | None = Field(None, max_length=100)
    show_exif: bool | None = None
    visibility: VisibilityName | None = Field(
        None, description="public, unlisted (reachable by its link, in no listing) or private (owner and admins "
        "only; the old rendition URLs stop working)")
    original: Literal["private", "public", "stripped"] | None = Field(
        None, description="Publish the original file as uploaded, without camera data and GPS, or keep it private")
    comments_enabled: bool | None = Field(None, description="Let people comment on this item")


@router.post("/tokens", response_model=TokenOut, status_code=201, tags=["auth"],
             responses={**ERRORS, 429: {"model": ErrorOut, "description": "Too many failed attempts"}})
def create_token(body: TokenRequest, session: DB, throttle: Throttles, ip: ClientIP) -> dict[str, str]:
    """Trade a username and password for a personal access token. Failures count towards the same
    limits as logins on the site (429 with Retry-After)."""
    throttle.before_login(body.username, ip)
    try:
        user = accounts.authenticate(session, body.username, body.password)
    except accounts.BadCredentials:
        throttle.login_failed(body.username, ip)
        raise
    throttle.login_succeeded(body.username)
    token = accounts.create_api_token(session, user, body.name or "API", body.scope)
    session.commit()
    return {"token": token, "scope": body.scope}


def _visible_media(session: DB, media_id: int, user: User | None) -> Any:
    media = session.get(MediaEntry, media_id)
    if media is None or not visible(media, user):
        raise NotFound("There is no media with that id.")
    return media


# The upload body is read by kiln.web.uploads as it arrives (not by FastAPI, which would read it
# whole before checking who sends it), so its schema is declared here for the OpenAPI document.
UPLOAD_BODY: dict[str, Any] = {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary",
                 "description": "The file; at most the sender's upload limit (413 beyond it)"},
        "title": {"type": "string", "maxLength": 200},
        "description": {"type": "string", "maxLength": 20000, "description": "Markdown"},
        "alt_text": {"type": "string", "maxLength": ALT_TEXT_MAX,
                     "description": "What the picture shows, for people who cannot see it"},
        "tags": {"type": "string", "maxLength": 2000, "description": "Comma-separated"},
        "license": {"type": "string", "maxLength": 100},
        "visibility": {"type": "string", "enum": ["public", "unlisted", "private"], "default": "public",
                       "description": "public, unlisted or private"},
        "collection_id": {"type": "integer", "minimum": 1, "description": "Put the item at the end of this "
                          "collection (yours, or one you were invited to)"},
    }}}}}


IDEMPOTENCY_KEY: dict[str, Any] = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 200},
    "description": "Any unique string (a UUID): sending the same upload again with the same key gives back "
                   "the item the first one made (200) instead of a duplicate."}


@router.post("/media", response_model=MediaOut, status_code=202,
             responses={**ERRORS, 200: {"model": MediaOut, "description": "The item an earlier upload with the "
                                        "same Idempotency-Key made (the body was not read)"}},
             openapi_extra={"requestBody": UPLOAD_BODY, "parameters": [IDEMPOTENCY_KEY]}, max_body_size=STREAMED)
async def upload(request: Request, session: DB, rt: RT, user: Writer) -> dict[str, Any]:
    """Upload one file. Answers as soon as it is stored; processing continues in the background.
    A file larger than the sender's upload limit is refused with 413 before it is read whole
    (at once when Content-Length says so)."""
    media_service.check_can_upload(user)
    key = _idempotency_key(request)
    # Database reads on a thread: this route runs on the event loop, which must never wait on them.
    done = None if key is None else await run_in_threadpool(media_service.upload_for_key, session, user, key)
    if done is not None:
        # A retry of an upload that was taken: the same item again, and the body is not read.
        return await run_in_threadpool(_replay, rt, session, done, site_url(request))
    limit = media_service.upload_limit(rt.settings, user)
    await release_database(request)  # no connection and no slot while the body streams in (minutes)
    form = await read_upload(request, rt.settings, limit, max_files=1, stores=rt.stores)
    try:
        await reclaim_database(request)
        fields = MediaFields(title=form.text("title", 200), description=form.text("description", 20000),
                             alt_text=form.fields.get("alt_text"),
                             tags=form.text("tags", 2000), license=form.text("license", 100, "licence"),
                             visibility=form.fields.get("visibility") or "public")
        if not form.files:
            raise InvalidInput("Send the file in the part named “file”.", code="no_file")
        upload_file = form.files[0]
        return await run_in_threadpool(_submit, session, rt, user, upload_file, fields, site_url(request), key,
                                       form.fields.get("collection_id"))
    finally:
        form.discard()


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not 1 <= len(key) <= 200 or not key.isascii() or not key.isprintable():
        raise InvalidInput("The Idempotency-Key header must be 1 to 200 printable ASCII characters.",
                           code="bad_idempotency_key")
    return key


def _replay(rt: Runtime, session: Session, media: Any, base: str) -> Any:
    body = media_service.media_json(rt, media, base, ledger.steps_of(session, media.id))
    return JSONResponse(jsonable_encoder(body), status_code=200, headers={"Idempotent-Replayed": "true"})


def _submit(session: Session, rt: Runtime, user: User, upload_file: UploadedFile,
            fields: MediaFields, base: str, key: str | None, collection_id: str | None = None) -> Any:
    target = collection_service.upload_target(session, user, collection_id)
    try:
        entry = media_service.submit_spooled(rt, session, user, upload_file.spooled, upload_file.filename,
                                             fields, idempotency_key=key)
    except IntegrityError:  # the same key sent twice at once: the other request's item is the answer
        session.rollback()
        done = media_service.upload_for_key(session, user, key) if key is not None else None
        if done is None:
            raise
        return _replay(rt, session, done, base)
    collection_service.add_uploads(session, user, target, [entry])
    return media_service.media_json(rt, entry, base, ledger.steps_of(session, entry.id))


@router.get("/media/{media_id}", response_model=MediaOut, responses=ERRORS)
def get_media(media_id: RowId, session: DB, rt: RT, user: CurrentUser, base: SiteURL) -> dict[str, Any]:
    media = _visible_media(session, media_id, user)
    return media_service.media_json(rt, media, base, ledger.steps_of(session, media_id),
                                    _favourited(session, user, media))


def _favourited(session: Session, user: User | None, media: MediaEntry) -> bool | None:
    return None if user is None else favourites.is_favourite(session, user, media)


@router.get("/media", response_model=MediaList, responses=ERRORS)
def list_media(
    session: DB, rt: RT, viewer: CurrentUser, base: SiteURL,
    user: Annotated[str | None, Query(max_length=30, description="Only this user's media")] = None,
    tag: Annotated[str | None, Query(max_length=64)] = None,
    state: Annotated[str | None, Query(description="queued, processing, processed or failed")] = None,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 30,
) -> dict[str, Any]:
    """Processed media, newest first. Owners (and admins) may also list their unfinished items by `state`."""
    owner = blocks.get_person(session, user, viewer) if user else None
    if state not in (None, "processed"):
        if state not in MEDIA_STATES:
            raise InvalidInput("Unknown state '%(state)s'. Known: %(known)s.", code="bad_state", state=state,
                               known=", ".join(MEDIA_STATES))
        if viewer is None or (not viewer.is_admin and (owner is None or owner.id != viewer.id)):
            raise PermissionDenied("Only the owner can list unfinished media; add user=<your name>.")
        offset = int(cursor) if cursor and cursor.isascii() and cursor.isdigit() and len(cursor) < 10 else 0
        items = media_service.list_for_admin(session, owner=owner, state=state, tag=tag, limit=limit,
                                             offset=offset)
        nxt = str(offset + limit) if len(items) == limit else None
    else:
        query = media_service.published_query(owner_id=owner.id if owner else None, tag=tag)
        query = blocks.leave_out(session, viewer, query, MediaEntry.owner_id)
        result = media_service.page(session, query, cursor, limit)
        items, nxt = result.items, result.next_cursor
    mine = favourites.favourited_ids(session, viewer, (m.id for m in items))  # one query for the page
    return {"items": [media_service.media_json(rt, m, base, favourited=None if viewer is None else m.id in mine)
                      for m in items], "next": nxt}


@router.patch("/media/{media_id}", response_model=MediaOut, responses=ERRORS)
def patch_media(media_id: RowId, body: MediaPatch, session: DB, rt: RT, user: Writer,
                base: SiteURL) -> dict[str, Any]:
    media = _visible_media(session, media_id, user)
    media_service.update(rt, session, user, media, MediaFields(**body.model_dump(exclude={"original"})))
    if body.original is not None:
        media_service.publish_original(rt, session, user, media, body.original)
    return media_service.media_json(rt, media, base, ledger.steps_of(session, media_id),
                                    _favourited(session, user, media))


@router.delete("/media/{media_id}", status_code=204, responses=ERRORS)
def delete_media(media_id: RowId, session: DB, rt: RT, user: Writer) -> Response:
    media = _visible_media(session, media_id, user)
    media_service.delete(rt, session, user, media)
    return Response(status_code=204)


@router.post("/media/{media_id}/retry", response_model=MediaOut, responses={**ERRORS, 409: {"model": ErrorOut}})
def retry_media_now(media_id: RowId, session: DB, rt: RT, user: Writer, base: SiteURL) -> dict[str, Any]:
    """Run the item's failed steps (and steps waiting to retry) again now. 409 when nothing is to retry."""
    media = _visible_media(session, media_id, user)
    media_service.check_owner(user, media)
    if not retry_media(rt, session, media):
        raise nothing_to_retry(media)
    media = media_service.get_media(session, media_id)
    return media_service.media_json(rt, media, base, ledger.steps_of(session, media_id))


@router.get("/admin/processing", response_model=ProcessingOverviewOut, responses=ERRORS, tags=["admin"])
def processing_overview(session: DB, rt: RT, user: Admin) -> dict[str, Any]:
    """Admins: media and steps per state, failures per code, queue depth per lane, stuck steps and
    the latest failures (the same as the /admin/processing page)."""
    return dataclasses.asdict(admin_overview(rt, session))
