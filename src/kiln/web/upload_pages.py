"""Uploading, editing and deleting media (the processing panel is in panels.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile as StarletteUploadFile

from kiln.errors import KilnError
from kiln.media import services as media_service
from kiln.media.services import MediaFields
from kiln.processing import ledger
from kiln.web.deps import DB, RT, LoggedIn, RowId, check_csrf, flash
from kiln.web.templating import render

router = APIRouter(include_in_schema=False, dependencies=[Depends(check_csrf)])
OptText = Annotated[str | None, Form()]
FullText = Annotated[str, Form()]


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


@router.get("/upload", response_class=HTMLResponse)
def upload_form(request: Request, user: LoggedIn) -> Response:
    return render(request, "upload.html")


@router.post("/upload")
def upload(
    request: Request, session: DB, rt: RT, user: LoggedIn,
    # A browser sends an empty string part when no file was chosen.
    file: Annotated[list[UploadFile | str] | None, File(description="One or more files")] = None,
    title: OptText = None, description: OptText = None, tags: OptText = None, license: OptText = None,
    visibility: OptText = None,
) -> Response:
    fields = MediaFields(title=title, description=description, tags=tags, license=license, visibility=visibility)
    files = [f for f in file or [] if isinstance(f, StarletteUploadFile) and (f.filename or f.size)]
    if not files:
        error = KilnError("Choose at least one file to upload.", code="no_file")
        if _wants_json(request):
            return JSONResponse({"error": error.as_dict()}, status_code=422)
        return render(request, "upload.html", status=422, errors=[error.message])
    accepted, errors = [], []
    for number, upload_file in enumerate(files, 1):
        per_file = MediaFields(**vars(fields))
        if len(files) > 1 and title:  # one title for many files: number them
            per_file.title = f"{title} ({number})"
        try:
            entry = media_service.submit(rt, session, user, upload_file.file, upload_file.filename or "",
                                         per_file)
            accepted.append(entry)
        except KilnError as exc:
            errors.append((exc, upload_file.filename or ""))
        finally:
            upload_file.file.close()
    if _wants_json(request):
        if errors:
            exc, name = errors[0]
            return JSONResponse({"error": {"code": exc.code, "message": media_service.rejected_message(exc, name)}},
                                status_code=exc.status)
        return JSONResponse({"media": [media_service.media_json(rt, e) for e in accepted]}, status_code=202)
    if errors:
        messages = [media_service.rejected_message(exc, name) for exc, name in errors]
        if accepted:
            messages.insert(0, f"{len(accepted)} file(s) were accepted and are being processed.")
        return render(request, "upload.html", status=errors[0][0].status if not accepted else 200, errors=messages)
    flash(request, f"Uploaded {len(accepted)} file{'s' if len(accepted) != 1 else ''}. "
                   "They appear in your gallery as soon as processing finishes.", "success")
    return RedirectResponse("/panel", status_code=303)


@router.get("/m/{media_id}/edit", response_class=HTMLResponse)
def edit_form(request: Request, media_id: RowId, session: DB, user: LoggedIn) -> Response:
    media = media_service.get_media(session, media_id)
    media_service.check_owner(user, media)
    return render(request, "edit.html", media=media, original=media_service.original_mode(media),
                  can_strip=media_service.can_strip(media))


@router.post("/m/{media_id}/edit")
def edit(request: Request, media_id: RowId, session: DB, rt: RT, user: LoggedIn, title: FullText = "",
         description: FullText = "", tags: FullText = "", license: FullText = "",
         show_exif: OptText = None, original: OptText = None, visibility: OptText = None) -> Response:
    """The form sends every field, so an empty one means cleared (an empty title is refused)."""
    media = media_service.get_media(session, media_id)
    try:
        media_service.update(rt, session, user, media, MediaFields(
            title=title, description=description, tags=tags, license=license, show_exif=show_exif == "on",
            visibility=visibility))
        if original is not None:
            media_service.publish_original(rt, session, user, media, original)
    except KilnError as exc:
        session.rollback()
        return render(request, "edit.html", status=exc.status, media=media, error=exc.message,
                      original=media_service.original_mode(media), can_strip=media_service.can_strip(media))
    flash(request, "Saved.", "success")
    return RedirectResponse(f"/u/{media.owner.username}/m/{media.id}", status_code=303)


@router.get("/m/{media_id}/delete", response_class=HTMLResponse)
def delete_form(request: Request, media_id: RowId, session: DB, user: LoggedIn) -> Response:
    media = media_service.get_media(session, media_id)
    media_service.check_owner(user, media)
    return render(request, "delete.html", media=media)


@router.post("/m/{media_id}/delete")
def delete(request: Request, media_id: RowId, session: DB, rt: RT, user: LoggedIn) -> Response:
    media = media_service.get_media(session, media_id)
    owner = media.owner.username
    media_service.delete(rt, session, user, media)
    flash(request, f"Deleted “{media.title}”.")
    return RedirectResponse(f"/u/{owner}", status_code=303)


@router.get("/m/{media_id}/status")
def status(request: Request, media_id: RowId, session: DB, rt: RT, user: LoggedIn) -> Response:
    """Live status for the panel and the upload page's script."""
    media = media_service.get_media(session, media_id)
    media_service.check_owner(user, media)
    return JSONResponse(media_service.media_json(rt, media, ledger.steps_of(session, media_id)))
