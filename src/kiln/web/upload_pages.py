"""Uploading, editing and deleting media (the processing panel is in panels.py)."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from kiln.accounts.models import User
from kiln.errors import InvalidInput, KilnError, PermissionDenied
from kiln.i18n import N_, _, interpolate, ngettext
from kiln.media import services as media_service
from kiln.media.services import MediaFields
from kiln.processing import ledger
from kiln.runtime import Runtime
from kiln.social import collections as collection_service
from kiln.web.deps import (
    CSRF_COOKIE,
    DB,
    RT,
    CsrfFailed,
    LoggedIn,
    RowId,
    check_csrf,
    flash,
    reclaim_database,
    release_database,
    same_origin,
    site_url,
    wants_json,
)
from kiln.web.templating import render
from kiln.web.uploads import STREAMED, UploadForm, read_upload

# Every route but the upload checks CSRF from the parsed form; the upload checks it without reading
# the body first (upload_csrf), so it must not have check_csrf, which parses the whole form.
router = APIRouter(include_in_schema=False)
CsrfChecked = [Depends(check_csrf)]
CSRF_MESSAGE = N_("This form expired or came from another site. Reload the page and try again.")
MAX_PAGE_FILES = 50
OptText = Annotated[str | None, Form()]
FullText = Annotated[str, Form()]


@router.get("/upload", response_class=HTMLResponse)
def upload_form(request: Request, rt: RT, user: LoggedIn) -> Response:
    """Someone who may not upload yet (email not confirmed) or at all is told so instead of being
    shown a form that would refuse them."""
    try:
        media_service.check_can_upload(user)
    except PermissionDenied as exc:
        return render(request, "upload.html", refused=exc.code, message=exc.message)
    return _form_page(request, rt, user)


def _form_page(request: Request, rt: Runtime, user: User, status: int = 200, **context: object) -> Response:
    """The upload form, which says the sender's size limit (and the longest title, a template global)."""
    session = getattr(request.state, "db", None)  # the request's session: "Add to collection" lists
    return render(request, "upload.html", status=status, limit=media_service.upload_limit(rt.settings, user),
                  collections=collection_service.addable(session, user) if session is not None else [],
                  chosen_collection=request.query_params.get("collection", ""), **context)


async def upload_csrf(request: Request) -> None:
    """The CSRF check of the upload form, without reading the body: the cookie, the origin and an
    X-CSRF-Token header now; a token sent as a form field is checked when the first file part starts
    (the form sends it first), so a forged upload is refused before its file is read."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = request.headers.get("x-csrf-token")
    if not cookie or not same_origin(request) or (sent is not None and not hmac.compare_digest(cookie, sent)):
        raise CsrfFailed(CSRF_MESSAGE)


def _csrf_field_check(request: Request) -> Callable[[dict[str, str]], None] | None:
    if request.headers.get("x-csrf-token") is not None:
        return None  # checked already

    def check(fields: dict[str, str]) -> None:
        if not hmac.compare_digest(request.cookies.get(CSRF_COOKIE, ""), fields.get("csrf_token", "")):
            raise CsrfFailed(CSRF_MESSAGE)

    return check


@router.post("/upload", dependencies=[Depends(upload_csrf)], max_body_size=STREAMED)
async def upload(request: Request, session: DB, rt: RT, user: LoggedIn) -> Response:
    """The body is read only once the sender is known and allowed, and only up to their limit."""
    media_service.check_can_upload(user)
    limit = media_service.upload_limit(rt.settings, user)
    csrf_check = _csrf_field_check(request)
    if csrf_check is not None and not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise CsrfFailed(CSRF_MESSAGE)  # no header and no form part that could carry the token
    await release_database(request)  # no connection and no slot while the body streams in (minutes)
    try:
        form = await read_upload(request, rt.settings, limit, max_files=MAX_PAGE_FILES, stores=rt.stores,
                                 before_file=csrf_check)
    except (InvalidInput, media_service.TooLarge) as exc:
        await reclaim_database(request)
        return _refused(request, rt, user, exc)
    try:
        await reclaim_database(request)
        if csrf_check is not None:
            csrf_check(form.fields)  # a form without files still proves where it came from
        return await run_in_threadpool(_take, request, session, rt, user, form)
    finally:
        form.discard()


def _refused(request: Request, rt: Runtime, user: User, error: KilnError) -> Response:
    if wants_json(request):
        return JSONResponse({"error": error.as_dict()}, status_code=error.status)
    return _form_page(request, rt, user, status=error.status, errors=[error.message])


def _take(request: Request, session: Session, rt: Runtime, user: User, form: UploadForm) -> Response:
    fields = MediaFields(title=form.fields.get("title"), description=form.fields.get("description"),
                         alt_text=form.fields.get("alt_text"), tags=form.fields.get("tags"),
                         license=form.fields.get("license"),
                         visibility=form.fields.get("visibility"))
    if not form.files:
        return _refused(request, rt, user, InvalidInput("Choose at least one file to upload.", code="no_file"))
    try:
        target = collection_service.upload_target(session, user, form.fields.get("collection_id"))
    except KilnError as exc:
        return _refused(request, rt, user, exc)
    if len(form.files) > 1 and fields.alt_text:
        return _refused(request, rt, user, InvalidInput(
            "A description for people who cannot see the picture is about one picture: upload the files one at "
            "a time, or describe each afterwards on its edit page.", code="alt_text_for_many"))
    titles = None
    if len(form.files) > 1 and fields.title and fields.title.strip():  # one title for many files: number them
        try:
            titles = media_service.numbered_titles(fields.title, len(form.files))
        except InvalidInput as exc:
            return _refused(request, rt, user, exc)
    accepted, errors = [], []
    for number, upload_file in enumerate(form.files, 1):
        per_file = MediaFields(**vars(fields))
        if titles is not None:
            per_file.title = titles[number - 1]
        try:
            accepted.append(media_service.submit_spooled(rt, session, user, upload_file.spooled,
                                                         upload_file.filename, per_file))
        except KilnError as exc:
            errors.append((exc, upload_file.filename))
    collection_service.add_uploads(session, user, target, accepted)
    if wants_json(request):
        if errors:
            error, name = errors[0]
            return JSONResponse({"error": {"code": error.code, "message": media_service.rejected_message(error, name)}},
                                status_code=error.status)
        return JSONResponse({"media": [media_service.media_json(rt, e, site_url(request)) for e in accepted]},
                            status_code=202)
    if errors:
        messages = [media_service.rejected_message(error, name) for error, name in errors]
        if accepted:
            messages.insert(0, interpolate(ngettext("%(n)s file was accepted and is being processed.",
                                                    "%(n)s files were accepted and are being processed.",
                                                    len(accepted)), {"n": len(accepted)}))
        return _form_page(request, rt, user, status=errors[0][0].status if not accepted else 200, errors=messages)
    flash(request, interpolate(ngettext(
        "Uploaded %(n)s file. It appears in your gallery as soon as processing finishes.",
        "Uploaded %(n)s files. They appear in your gallery as soon as processing finishes.", len(accepted)),
        {"n": len(accepted)}), "success")
    return RedirectResponse("/panel", status_code=303)


@router.get("/m/{media_id}/edit", response_class=HTMLResponse)
def edit_form(request: Request, media_id: RowId, session: DB, user: LoggedIn) -> Response:
    media = media_service.get_media(session, media_id)
    media_service.check_owner(user, media)
    return render(request, "edit.html", media=media, original=media_service.original_mode(media),
                  can_strip=media_service.can_strip(media))


@router.post("/m/{media_id}/edit", dependencies=CsrfChecked)
def edit(request: Request, media_id: RowId, session: DB, rt: RT, user: LoggedIn, title: FullText = "",
         description: FullText = "", alt_text: FullText = "", tags: FullText = "", license: FullText = "",
         show_exif: OptText = None, original: OptText = None, visibility: OptText = None,
         comments_enabled: OptText = None) -> Response:
    """The form sends every field, so an empty one means cleared (an empty title is refused)."""
    media = media_service.get_media(session, media_id)
    try:
        media_service.update(rt, session, user, media, MediaFields(
            title=title, description=description, alt_text=alt_text, tags=tags, license=license,
            show_exif=show_exif == "on", comments_enabled=comments_enabled == "on",
            visibility=visibility))
        if original is not None:
            media_service.publish_original(rt, session, user, media, original)
    except KilnError as exc:
        session.rollback()
        return render(request, "edit.html", status=exc.status, media=media, error=exc.message,
                      original=media_service.original_mode(media), can_strip=media_service.can_strip(media))
    flash(request, _("Saved."), "success")
    return RedirectResponse(f"/u/{media.owner.username}/m/{media.id}", status_code=303)


@router.get("/m/{media_id}/delete", response_class=HTMLResponse)
def delete_form(request: Request, media_id: RowId, session: DB, user: LoggedIn) -> Response:
    media = media_service.get_media(session, media_id)
    media_service.check_owner(user, media)
    return render(request, "delete.html", media=media)


@router.post("/m/{media_id}/delete", dependencies=CsrfChecked)
def delete(request: Request, media_id: RowId, session: DB, rt: RT, user: LoggedIn) -> Response:
    media = media_service.get_media(session, media_id)
    owner = media.owner.username
    media_service.delete(rt, session, user, media)
    flash(request, interpolate(_("Deleted “%(title)s”."), {"title": media.title}))
    return RedirectResponse(f"/u/{owner}", status_code=303)


@router.get("/m/{media_id}/status")
def status(request: Request, media_id: RowId, session: DB, rt: RT, user: LoggedIn) -> Response:
    """Live status for the panel and the upload page's script."""
    media = media_service.get_media(session, media_id)
    media_service.check_owner(user, media)
    return JSONResponse(media_service.media_json(rt, media, site_url(request), ledger.steps_of(session, media_id)))
