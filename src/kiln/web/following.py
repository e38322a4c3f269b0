"""Following accounts on other servers (kiln.federation.following): the form on the Following list and
the timeline, and its API operations. The account is looked up on the network with no transaction
open (the request's session is ended first)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field

from kiln.errors import KilnError
from kiln.federation import following
from kiln.i18n import _, interpolate
from kiln.web.api import ERRORS, api_csrf
from kiln.web.deps import DB, RT, LoggedIn, Writer, check_csrf, flash

pages = APIRouter(include_in_schema=False, dependencies=[Depends(check_csrf)])
api = APIRouter(prefix="/api/v1", tags=["social"], dependencies=[Depends(api_csrf)])
Account = Annotated[str, Form(min_length=1, max_length=following.ACCOUNT_MAX)]
AccountQuery = Annotated[str, Query(min_length=1, max_length=following.ACCOUNT_MAX,
                                    description="`@name@host`, or the account's ActivityPub address")]


Back = Annotated[str, Form(max_length=20)]


def _back(back: str, username: str) -> str:
    """Where the form was: the timeline, else the Following list."""
    return "/timeline" if back == "timeline" else f"/u/{username}/following"


@pages.post("/following/remote")
def follow_form(request: Request, session: DB, rt: RT, user: LoggedIn, account: Account,
                back: Back = "") -> Response:
    user_id, username = user.id, user.username
    session.rollback()  # no transaction stays open while the other server is asked
    try:
        row = following.follow(rt, user_id, account)
    except KilnError as exc:
        flash(request, exc.message, "error")
        return RedirectResponse(_back(back, username), status_code=303)
    text = (_("You follow %(name)s now.") if row is None or row.accepted else
            _("You asked to follow %(name)s; it shows here once their server accepts."))
    flash(request, interpolate(text, {"name": account.strip()}), "success")
    return RedirectResponse(_back(back, username), status_code=303)


@pages.post("/following/remote/remove")
def unfollow_form(request: Request, session: DB, rt: RT, user: LoggedIn, account: Account) -> Response:
    following.unfollow(rt, session, user, account)
    session.commit()
    flash(request, interpolate(_("You no longer follow %(name)s."), {"name": account.strip()}), "success")
    return RedirectResponse(f"/u/{user.username}/following", status_code=303)


class RemoteFollowIn(BaseModel):
    account: str = Field(min_length=1, max_length=following.ACCOUNT_MAX,
                         description="`@name@host`, or the account's ActivityPub address")


class RemoteFollowOut(BaseModel):
    account: str = Field(description="The account's ActivityPub address (its actor id)")
    following: bool = Field(description="Whether the caller follows it (its server accepted)")
    pending: bool = Field(description="Whether the follow waits for its server's Accept")


@api.put("/following/remote", response_model=RemoteFollowOut, responses=ERRORS,
         summary="Follow an account on another server")
def api_follow_remote(session: DB, rt: RT, user: Writer,
                      data: Annotated[RemoteFollowIn, Body()]) -> dict[str, Any]:
    """Looks the account up (WebFinger, then its actor document) and sends it a signed `Follow`; the
    follow waits (`pending`) until its server sends `Accept`. Asking again sends the `Follow` again.
    An account on a blocked server: 403 (`domain_blocked`); one that cannot be found: 422. For an
    account of this site use `PUT /api/v1/users/{name}/follow`."""
    user_id = user.id
    session.rollback()
    row = following.follow(rt, user_id, data.account)
    if row is None:
        raise following.CannotFollow("That account is on this site: follow it with PUT /api/v1/users/{name}/follow.",
                                     code="local_account")
    return {"account": row.followee_uri, "following": row.accepted, "pending": not row.accepted}


@api.delete("/following/remote", response_model=RemoteFollowOut, responses=ERRORS,
            summary="Stop following an account on another server")
def api_unfollow_remote(session: DB, rt: RT, user: Writer, account: AccountQuery) -> dict[str, Any]:
    """Sends `Undo{Follow}` to its server. Not followed: 404."""
    row = following.find_followed(session, user, account)
    uri = row.followee_uri or ""
    following.unfollow(rt, session, user, account)
    session.commit()
    return {"account": uri, "following": False, "pending": False}


router = APIRouter()
router.include_router(pages)
router.include_router(api)
