"""Leaving, and taking your data: the export zip and deleting one's account, on the account page
and in the API (``kiln.accounts.export``, ``kiln.accounts.leaving``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from kiln.accounts import export, leaving
from kiln.accounts.models import User
from kiln.errors import KilnError
from kiln.i18n import _, interpolate
from kiln.runtime import Runtime
from kiln.web.api import ERRORS, ErrorOut, api_csrf
from kiln.web.auth_pages import _account_page
from kiln.web.deps import (
    DB,
    RT,
    SESSION_COOKIE,
    ClientIP,
    LoggedIn,
    SiteURL,
    Throttles,
    Writer,
    check_csrf,
    flash,
    wants_json,
)
from kiln.web.head import is_head

pages = APIRouter(include_in_schema=False, dependencies=[Depends(check_csrf)])
api = APIRouter(prefix="/api/v1", tags=["account"], dependencies=[Depends(api_csrf)])


def export_response(request: Request, rt: Runtime, session: DB, user: User, base: str,
                    actor: User | None = None) -> Response:
    """Read the rows, end the transaction, then stream: no transaction is open while files are sent.
    HEAD gets the headers alone: no original is read for a body that would be dropped. ``actor``:
    someone else taking ``user``'s data (an admin), which the audit log records in that transaction."""
    plan = export.plan(rt, session, user, base)
    if actor is not None and actor.id != user.id:
        export.record_export_by_other(session, actor, user, plan, via="web")
    session.commit()
    stream = export.zip_stream(rt, plan)
    headers = {"Content-Length": str(len(stream)), "Cache-Control": "no-store",
               "Content-Disposition": f'attachment; filename="{plan.filename}"'}
    if is_head(request):
        return Response(media_type="application/zip", headers=headers)
    return StreamingResponse(iter(stream), media_type="application/zip", headers=headers)


@api.get("/account/export", response_class=StreamingResponse, responses={
    **ERRORS, 200: {"content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
                    "description": "A zip of everything you put in: originals, their metadata as JSON, comments, "
                                   "collections, favourites and profile"}})
def export_account(request: Request, session: DB, rt: RT, user: LoggedIn, base: SiteURL) -> Response:
    """Download everything you put in as one zip, streamed. A login session or any API token of the
    account (read scope is enough: it only reads)."""
    return export_response(request, rt, session, user, base)


class DeleteAccount(BaseModel):
    password: str = Field(max_length=1024, description="Your password, to confirm")


class AccountDeletedOut(BaseModel):
    username: str
    media: int = Field(description="Items deleted, with their files")
    comments: int = Field(description="Comments on other people's media left as 'deleted comment' placeholders")
    collections: int
    held_until: str | None = Field(description="Until when nobody can register the username")


def _delete(rt: Runtime, session: DB, throttle: Throttles, ip: str, user: User, password: str,
            via: str) -> leaving.Deleted:
    """Deleting with a password counts as a login attempt (the same limits): a stolen session
    cannot guess its way to deleting the account."""
    throttle.before_login(user.username, ip)
    try:
        return leaving.delete_account(rt, session, user, user, password=password, via=via)
    except leaving.WrongPassword:
        session.rollback()
        throttle.login_failed(user.username, ip)
        raise


@api.delete("/account", response_model=AccountDeletedOut,
            responses={**ERRORS, 429: {"model": ErrorOut, "description": "Too many wrong passwords"}})
def delete_account(body: DeleteAccount, session: DB, rt: RT, user: Writer, throttle: Throttles,
                   ip: ClientIP) -> Response:
    """Delete your account for good, confirming with your password: your media and their files, your
    collections, favourites, follows, notifications and tokens go; your comments on other people's
    media stay as "deleted comment" placeholders; your username is held back for a time."""
    done = _delete(rt, session, throttle, ip, user, body.password, "api")
    out = AccountDeletedOut(username=done.username, media=done.media, comments=done.comments,
                            collections=done.collections,
                            held_until=done.held_until.isoformat() if done.held_until else None)
    response = Response(out.model_dump_json(), media_type="application/json")
    response.delete_cookie(SESSION_COOKIE)
    return response


@pages.post("/account/delete")
def delete_account_page(request: Request, session: DB, rt: RT, user: LoggedIn, throttle: Throttles, ip: ClientIP,
                        password: Annotated[str, Form(max_length=1024)] = "") -> Response:
    try:
        done = _delete(rt, session, throttle, ip, user, password, "web")
    except leaving.WrongPassword as exc:
        if wants_json(request):
            raise
        return _account_page(request, session, user, status=exc.status, error=exc.message)
    except KilnError:
        session.rollback()
        raise
    flash(request, interpolate(_("The account %(name)s is deleted, with everything it put in. Goodbye."),
                               {"name": done.username}), "success")
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


router = APIRouter()
router.include_router(pages)
router.include_router(api)
