"""Captions and subtitles of video and audio items: added and removed on the item's edit page and
through the API (see kiln.media.captions for what is checked)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Path, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from kiln.errors import KilnError, NotFound
from kiln.i18n import _, interpolate
from kiln.media import captions
from kiln.media import services as media_service
from kiln.media.visibility import visible
from kiln.web.api import ERRORS, CaptionOut, api_csrf
from kiln.web.deps import DB, RT, LoggedIn, RowId, Writer, check_csrf, flash, site_url
from kiln.web.templating import render

pages = APIRouter(include_in_schema=False, dependencies=[Depends(check_csrf)])
api = APIRouter(prefix="/api/v1", tags=["media"], dependencies=[Depends(api_csrf)])
Language = Annotated[str, Path(min_length=2, max_length=20, pattern=r"^[A-Za-z0-9-]+$")]
CaptionFile = Annotated[UploadFile, File(description="A WebVTT (.vtt) or SubRip (.srt) file, at most 512 KiB")]
LanguageField = Annotated[str, Form(max_length=20, description="The language of the captions, e.g. en, de, pt-BR")]
LabelField = Annotated[str | None, Form(max_length=200, description="The name shown in the player's menu "
                                                                    "(default: the language's own name)")]


def _read(upload: UploadFile) -> bytes:
    return upload.file.read(captions.MAX_BYTES + 1)  # one byte more than allowed tells "too large"


def _edit_page(request: Request, media: Any, status: int, error: str) -> Response:
    return render(request, "edit.html", status=status, media=media, error=error,
                  original=media_service.original_mode(media), can_strip=media_service.can_strip(media))


@pages.post("/m/{media_id}/captions")
def add_captions(request: Request, media_id: RowId, session: DB, rt: RT, user: LoggedIn, file: CaptionFile,
                 language: LanguageField, label: LabelField = None) -> Response:
    media = media_service.get_media(session, media_id)
    media_service.check_owner(user, media)
    try:
        row = captions.attach(rt, session, user, media, _read(file), file.filename or "", language, label)
    except KilnError as exc:
        session.rollback()
        return _edit_page(request, media_service.get_media(session, media_id), exc.status, exc.message)
    flash(request, interpolate(_("Captions added: %(label)s."), {"label": row.spec.get("label", "")}), "success")
    return RedirectResponse(f"/m/{media_id}/edit#captions", status_code=303)


@pages.post("/m/{media_id}/captions/{language}/delete")
def remove_captions(request: Request, media_id: RowId, language: Language, session: DB, rt: RT,
                    user: LoggedIn) -> Response:
    media = media_service.get_media(session, media_id)
    captions.remove(rt, session, user, media, language)
    flash(request, _("Captions removed."), "success")
    return RedirectResponse(f"/m/{media_id}/edit#captions", status_code=303)


def _own_media(session: DB, media_id: int, user: Any) -> Any:
    media = media_service.get_media(session, media_id)
    if not visible(media, user):
        raise NotFound("There is no such media. It may have been deleted.")
    return media


@api.post("/media/{media_id}/captions", status_code=201, responses=ERRORS, response_model=CaptionOut,
          summary="Add captions or subtitles to a video or audio item")
def api_add_captions(request: Request, media_id: RowId, session: DB, rt: RT, user: Writer, file: CaptionFile,
                     language: LanguageField, label: LabelField = None) -> dict[str, Any]:
    """One track per language: sending a language again replaces its track. The file is checked and
    rewritten as plain WebVTT; the answer gives its URL."""
    media = _own_media(session, media_id, user)
    row = captions.attach(rt, session, user, media, _read(file), file.filename or "", language, label)
    media = media_service.get_media(session, media_id)
    return captions.caption_json(rt, media, media.rendition(row.name) or row, site_url(request))


@api.delete("/media/{media_id}/captions/{language}", status_code=204, responses=ERRORS,
            summary="Remove the captions of one language")
def api_remove_captions(media_id: RowId, language: Language, session: DB, rt: RT, user: Writer) -> Response:
    media = _own_media(session, media_id, user)
    captions.remove(rt, session, user, media, language)
    return Response(status_code=204)


router = APIRouter()
router.include_router(pages)
router.include_router(api)
