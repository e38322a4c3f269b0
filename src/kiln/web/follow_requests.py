"""Follow requests from other servers (kiln.federation.requests): the page that lists them with
Approve and Decline buttons, and the switch that makes followers elsewhere wait for approval. Forms,
no JavaScript."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from kiln.federation import requests
from kiln.i18n import _, interpolate
from kiln.web.deps import DB, RT, LoggedIn, check_csrf, flash
from kiln.web.templating import render

router = APIRouter(include_in_schema=False, dependencies=[Depends(check_csrf)])
pages = router
RequestId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Switch = Annotated[str, Form(max_length=3)]
PAGE = "/account/follow-requests"


@pages.get(PAGE, response_class=HTMLResponse)
def requests_page(request: Request, session: DB, user: LoggedIn) -> HTMLResponse:
    return render(request, "follow_requests.html", waiting=requests.waiting(session, user))


@pages.post(PAGE + "/setting")
def approval_setting(request: Request, session: DB, user: LoggedIn, approve: Switch = "") -> Response:
    """On: followers on other servers wait for approval. Off: they follow at once (waiting requests stay)."""
    user.approve_followers = approve == "on"
    session.commit()
    flash(request, _("Followers on other servers now wait for your approval.") if user.approve_followers
          else _("Followers on other servers now follow you at once."), "success")
    return RedirectResponse(PAGE, status_code=303)


def _answer(request: Request, session: DB, rt: RT, user: LoggedIn, request_id: int, approve: bool) -> Response:
    actor = requests.answer(session, rt.settings, user, request_id, approve)
    session.commit()
    text = _("%(name)s now follows you.") if approve else _("You declined %(name)s's request.")
    flash(request, interpolate(text, {"name": actor.handle}), "success")
    return RedirectResponse(PAGE, status_code=303)


@pages.post(PAGE + "/{request_id}/approve")
def approve(request: Request, request_id: RequestId, session: DB, rt: RT, user: LoggedIn) -> Response:
    return _answer(request, session, rt, user, request_id, True)


@pages.post(PAGE + "/{request_id}/decline")
def decline(request: Request, request_id: RequestId, session: DB, rt: RT, user: LoggedIn) -> Response:
    return _answer(request, session, rt, user, request_id, False)
