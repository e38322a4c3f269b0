"""Pages and API operations around signing up: the moderators' queues of registration requests
(/admin/registrations) and of held comments (/admin/comments/held), and invite links (/invites,
/api/v1/invites). kiln.accounts.signup and kiln.moderation.held say who may do what."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from kiln.accounts import signup
from kiln.accounts.models import Invite, User
from kiln.errors import InvalidInput, PermissionDenied
from kiln.i18n import _, interpolate
from kiln.moderation import held
from kiln.moderation.people import may_moderate
from kiln.web.api import ERRORS, api_csrf
from kiln.web.deps import DB, RT, LoggedIn, RowId, SiteURL, Writer, check_csrf, flash
from kiln.web.templating import render

pages = APIRouter(include_in_schema=False, dependencies=[Depends(check_csrf)])
api = APIRouter(prefix="/api/v1", tags=["invites"], dependencies=[Depends(api_csrf)])
Reason = Annotated[str, Form(max_length=10_000)]


def require_moderator(user: LoggedIn) -> User:
    if not may_moderate(user):
        raise PermissionDenied("Only moderators and administrators can do this.", code="not_moderator")
    return user


Moderator = Annotated[User, Depends(require_moderator)]


# Registration requests ------------------------------------------------------------------------------

@pages.get("/admin/registrations", response_class=HTMLResponse)
def registrations(request: Request, session: DB, rt: RT, user: Moderator) -> Response:
    return render(request, "admin_registrations.html", requests=signup.requests_waiting(session),
                  mode=rt.settings.registration, question=rt.settings.registration_question)


@pages.post("/admin/registrations/{request_id}/approve")
def approve_registration(request: Request, request_id: RowId, session: DB, rt: RT, user: Moderator,
                         reason: Reason = "") -> Response:
    person = signup.approve(session, rt.settings, user, request_id, reason=reason)
    session.commit()
    flash(request, interpolate(_("%(name)s is approved and will get a mail saying so."),
                               {"name": person.username}), "success")
    return RedirectResponse("/admin/registrations", status_code=303)


@pages.post("/admin/registrations/{request_id}/reject")
def reject_registration(request: Request, request_id: RowId, session: DB, rt: RT, user: Moderator,
                        reason: Reason = "") -> Response:
    name = signup.reject(session, rt.settings, user, request_id, reason=reason)
    session.commit()
    flash(request, interpolate(_("The request of %(name)s is rejected and the account deleted; they will get a "
                                 "mail saying so."), {"name": name}), "success")
    return RedirectResponse("/admin/registrations", status_code=303)


# Held comments --------------------------------------------------------------------------------------

@pages.get("/admin/comments/held", response_class=HTMLResponse)
def held_comments(request: Request, session: DB, rt: RT, user: Moderator) -> Response:
    return render(request, "admin_held_comments.html", comments=held.queue(session), total=held.count(session),
                  hold=rt.settings.hold_first_comments)


@pages.post("/admin/comments/held/{comment_id}/approve")
def approve_comment(request: Request, comment_id: RowId, session: DB, user: Moderator) -> Response:
    held.approve(session, user, comment_id)
    session.commit()
    flash(request, _("The comment is approved and shown."), "success")
    return RedirectResponse("/admin/comments/held", status_code=303)


@pages.post("/admin/comments/held/{comment_id}/reject")
def reject_comment(request: Request, comment_id: RowId, session: DB, user: Moderator,
                   reason: Reason = "") -> Response:
    held.reject(session, user, comment_id, reason=reason)
    session.commit()
    flash(request, _("The comment is rejected and deleted."), "success")
    return RedirectResponse("/admin/comments/held", status_code=303)


# Invite links ---------------------------------------------------------------------------------------

def invite_url(base: str, invite: Invite) -> str:
    return f"{base.rstrip('/')}/auth/register?invite={invite.code}"


def _days(value: str) -> int | None:
    """The form's "lasts" choice: a number of days, or "never"."""
    if value == "never":
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 4:
        raise InvalidInput("An invite link lasts from 1 to %(max)s days, or has no end.", code="bad_days",
                           max=signup.INVITE_MAX_DAYS)
    return int(value)


def _uses(value: str) -> int:
    if not value.isascii() or not value.isdigit() or len(value) > 5:
        raise InvalidInput("An invite link can be used from 1 to %(max)s times.", code="bad_uses",
                           max=signup.INVITE_MAX_USES)
    return int(value)


@pages.get("/invites", response_class=HTMLResponse)
def invites(request: Request, session: DB, rt: RT, user: LoggedIn, base: SiteURL) -> Response:
    return _invites_page(request, session, rt, user, base)


def _invites_page(request: Request, session: DB, rt: RT, user: User, base: str, status: int = 200,
                  **context: Any) -> Response:
    rows = signup.invites_for(session, user)
    return render(request, "invites.html", status=status, invites=rows, may_invite=signup.may_invite(rt.settings, user),
                  states={i.id: signup.invite_state(i) for i in rows}, urls={i.id: invite_url(base, i) for i in rows},
                  mode=rt.settings.registration, **context)


@pages.post("/invites")
def make_invite(request: Request, session: DB, rt: RT, user: LoggedIn, base: SiteURL,
                uses: Annotated[str, Form(max_length=10)] = "1",
                days: Annotated[str, Form(max_length=10)] = "7") -> Response:
    invite = signup.create_invite(session, rt.settings, user, uses=_uses(uses), days=_days(days))
    session.commit()
    flash(request, interpolate(_("New invite link: %(url)s"), {"url": invite_url(base, invite)}), "success")
    return RedirectResponse("/invites", status_code=303)


@pages.post("/invites/{invite_id}/revoke")
def revoke_invite(request: Request, invite_id: RowId, session: DB, user: LoggedIn) -> Response:
    signup.revoke_invite(session, user, invite_id)
    session.commit()
    flash(request, _("The invite link is withdrawn: it no longer works."), "success")
    return RedirectResponse("/invites", status_code=303)


class InviteIn(BaseModel):
    uses: int = Field(1, ge=1, le=signup.INVITE_MAX_USES, description="How many accounts the link may make")
    days: int | None = Field(7, ge=1, le=signup.INVITE_MAX_DAYS, description="Days the link works; null: no end")


class InviteOut(BaseModel):
    id: int
    url: str = Field(description="The sign-up page with the invite: give this to people")
    code: str
    created: str
    created_by: str = Field(description="The username of who made it")
    expires: str | None = Field(description="When it stops working; null: never")
    uses: int = Field(description="Accounts made with it so far")
    max_uses: int
    state: str = Field(description="active, expired, used_up or revoked")


class InviteList(BaseModel):
    items: list[InviteOut] = Field(description="Newest first: every invite for admins, one's own for others")


def invite_json(base: str, invite: Invite) -> dict[str, Any]:
    return {"id": invite.id, "url": invite_url(base, invite), "code": invite.code,
            "created": invite.created.isoformat(), "created_by": invite.creator.username,
            "expires": invite.expires.isoformat() if invite.expires else None, "uses": invite.uses,
            "max_uses": invite.max_uses, "state": signup.invite_state(invite)}


@api.get("/invites", response_model=InviteList, responses=ERRORS)
def api_invites(session: DB, user: LoggedIn, base: SiteURL) -> dict[str, Any]:
    """Invite links: all of them for admins, your own for everyone else."""
    return {"items": [invite_json(base, i) for i in signup.invites_for(session, user)]}


@api.post("/invites", status_code=201, response_model=InviteOut, responses=ERRORS)
def api_make_invite(body: InviteIn, session: DB, rt: RT, user: Writer, base: SiteURL) -> dict[str, Any]:
    """Make an invite link (admins; every confirmed account when the site's `invites_by_users` is on)."""
    invite = signup.create_invite(session, rt.settings, user, uses=body.uses, days=body.days, via="api")
    session.commit()
    return invite_json(base, invite)


@api.delete("/invites/{invite_id}", status_code=204, responses=ERRORS)
def api_revoke_invite(invite_id: RowId, session: DB, user: Writer) -> Response:
    """Withdraw an invite link: your own, or (admins) anyone's."""
    signup.revoke_invite(session, user, invite_id, via="api")
    session.commit()
    return Response(status_code=204)


router = APIRouter()
router.include_router(pages)
router.include_router(api)
