"""The profile settings on the account page: avatar, links, and whether others may comment on my media."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from kiln.i18n import _
from kiln.social import profiles
from kiln.web.deps import DB, RT, LoggedIn, check_csrf, flash

router = APIRouter(include_in_schema=False, dependencies=[Depends(check_csrf)])
LinkText = Annotated[list[str], Form(max_length=profiles.MAX_LINKS * 2)]


@router.post("/account/avatar", max_body_size=profiles.AVATAR_MAX_BYTES + 64 * 1024)
def upload_avatar(request: Request, session: DB, rt: RT, user: LoggedIn,
                  file: Annotated[UploadFile, File()]) -> Response:
    data = file.file.read(profiles.AVATAR_MAX_BYTES + 1)  # one byte more than allowed tells "too large"
    profiles.set_avatar(rt, session, user, data)
    flash(request, _("Your new picture is on your profile."), "success")
    return RedirectResponse("/account#profile", status_code=303)


@router.post("/account/avatar/delete")
def delete_avatar(request: Request, session: DB, rt: RT, user: LoggedIn) -> Response:
    profiles.remove_avatar(rt, session, user)
    flash(request, _("Your picture is removed; your initials show instead."), "success")
    return RedirectResponse("/account#profile", status_code=303)


@router.post("/account/links")
def save_links(request: Request, session: DB, user: LoggedIn, label: LinkText = [],  # noqa: B006 (FastAPI copies it)
               url: LinkText = []) -> Response:  # noqa: B006
    """Pairs of ``label`` and ``url`` fields, in order."""
    pairs = list(zip(label, url, strict=False))
    profiles.set_links(user, pairs)
    session.commit()
    flash(request, _("Links saved."), "success")
    return RedirectResponse("/account#profile", status_code=303)


@router.post("/account/comments")
def comment_setting(request: Request, session: DB, user: LoggedIn,
                    comments_enabled: Annotated[bool, Form()] = False) -> Response:
    profiles.set_comments_enabled(user, comments_enabled)
    session.commit()
    flash(request, _("Comment setting saved."), "success")
    return RedirectResponse("/account#profile", status_code=303)
