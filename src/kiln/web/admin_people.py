"""The people pages for moderators and administrators: /admin/users (search and filters) and a
person's page /admin/users/{username} with its forms (ban, unban, take away or give back a privilege,
warn; for administrators also roles, upload limits, downloading their data and deleting the
account). Every change goes through kiln.moderation.people (kiln.accounts.export and
kiln.accounts.leaving for the last two), which check who may do it and write the audit entry
(docs/admin-users.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from kiln import units
from kiln.accounts import leaving, signup
from kiln.accounts.models import PRIVILEGES, User
from kiln.errors import InvalidInput, KilnError, NotFound, PermissionDenied
from kiln.i18n import N_, _, format_datetime, interpolate
from kiln.media import services as media_service
from kiln.moderation import directory, people
from kiln.runtime import Runtime
from kiln.web import leaving as leaving_pages
from kiln.web.deps import DB, RT, LoggedIn, SiteURL, check_csrf, flash
from kiln.web.templating import render

router = APIRouter(include_in_schema=False, dependencies=[Depends(check_csrf)])


async def require_moderator(user: LoggedIn) -> User:
    if not people.may_moderate(user):
        raise PermissionDenied(N_("Only moderators and administrators can see this."), code="not_moderator")
    return user


async def require_admin(user: LoggedIn) -> User:
    if not user.is_admin:
        raise PermissionDenied(N_("Only administrators can see the audit log."), code="not_admin")
    return user


async def require_admin_for_data(user: LoggedIn) -> User:
    if not user.is_admin:
        raise PermissionDenied(N_("Only administrators can download someone's data or delete their account."),
                               code="not_admin")
    return user


Moderator = Annotated[User, Depends(require_moderator)]
DataAdmin = Annotated[User, Depends(require_admin_for_data)]
AuditReader = Annotated[User, Depends(require_admin)]
Username = Annotated[str, Path(min_length=1, max_length=64)]
FormText = Annotated[str, Form(max_length=people.REASON_MAX + 100)]
Before = Annotated[int | None, Query(ge=1, le=2**31 - 1)]


def find_person(session: Session, username: str) -> User:
    """By username only (never by e-mail address, which moderators may not search)."""
    user = session.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None:
        raise NotFound("There is no user named '%(name)s'.", name=username)
    return user


def people_filter(viewer: User, q: str | None, state: str | None, privilege: str | None) -> directory.PeopleFilter:
    """Empty form fields mean "any"; only administrators search e-mail addresses."""
    return directory.PeopleFilter(text=(q or "").strip() or None, state=state or None, privilege=privilege or None,
                                  by_email=viewer.is_admin)


# The list ---------------------------------------------------------------------------------------

@router.get("/admin/users", response_class=HTMLResponse)
def users_page(request: Request, session: DB, rt: RT, viewer: Moderator,
               q: Annotated[str | None, Query(max_length=directory.SEARCH_MAX)] = None,
               state: Annotated[str | None, Query(max_length=20)] = None,
               privilege: Annotated[str | None, Query(max_length=20)] = None, before: Before = None) -> Response:
    where = people_filter(viewer, q, state, privilege)
    result = directory.page(session, where, before=before)
    query = {"q": where.text or "", "state": where.state or "", "privilege": where.privilege or ""}
    return render(request, "admin_users.html", result=result, where=where, query=query, states=_state_labels(),
                  privileges=PRIVILEGES, site_limit=rt.settings.max_upload_bytes, first_page=before is None)


def _state_labels() -> dict[str, str]:
    return {key: _(label) for key, (label, _where) in directory.STATES.items()}


# A person's page ---------------------------------------------------------------------------------

def _refusal(viewer: User, user: User) -> str | None:
    """Why ``viewer`` may not act on ``user`` from this page (the same rules people.py enforces)."""
    if viewer.id == user.id:
        return _("This is your own account: nobody acts on their own account here.")
    if not viewer.is_admin and (user.has("moderator") or user.is_admin):
        return _("Only administrators can act on moderators and administrators.")
    return None


def _person_page(request: Request, session: Session, rt: Runtime, viewer: User, user: User, *, status: int = 200,
                 error: str | None = None) -> Response:
    stored = directory.storage_used(session, [user.id]).get(user.id, directory.Stored())
    return render(request, "admin_person.html", status=status, person=user, stored=stored, error=error,
                  entries=directory.about(session, user), refusal=_refusal(viewer, user),
                  sign_up=signup.request_of(session, user),
                  revocable=people.REVOCABLE, roles=people.ROLES, max_days=people.MAX_DAYS,
                  limit=media_service.upload_limit(rt.settings, user), site_limit=rt.settings.max_upload_bytes)


@router.get("/admin/users/{username}", response_class=HTMLResponse)
def person_page(request: Request, session: DB, rt: RT, viewer: Moderator, username: Username) -> Response:
    return _person_page(request, session, rt, viewer, find_person(session, username))


def _days(text: str | None) -> int | None:
    """The days field: empty means for good."""
    value = (text or "").strip()
    if not value:
        return None
    if not (value.isascii() and value.isdigit() and len(value) <= 6):
        raise InvalidInput("Give a number of days from 1 to %(max)s, or none for good.", code="bad_days",
                           max=people.MAX_DAYS)
    return int(value)


def _until_text(name: str, until: dt.datetime | None, *, for_a_time: str, for_good: str, **more: str) -> str:
    if until is None:
        return interpolate(for_good, {"name": name, **more})
    return interpolate(for_a_time, {"name": name, "until": format_datetime(until), **more})


def _act(request: Request, session: Session, rt: Runtime, viewer: User, username: str,
         action: Callable[[User], str]) -> Response:
    """Run ``action(user) -> message`` and commit; a refusal re-shows the page with its sentence."""
    user = find_person(session, username)
    try:
        message = action(user)
    except KilnError as exc:
        session.rollback()
        user = find_person(session, username)
        return _person_page(request, session, rt, viewer, user, status=exc.status, error=exc.message)
    session.commit()
    flash(request, message, "success")
    return RedirectResponse(f"/admin/users/{user.username}", status_code=303)


@router.post("/admin/users/{username}/ban")
def ban(request: Request, session: DB, rt: RT, viewer: Moderator, username: Username, reason: FormText = "",
        days: Annotated[str, Form(max_length=20)] = "") -> Response:
    def act(user: User) -> str:
        until = people.ban(session, viewer, user, days=_days(days), reason=reason, via="web")
        return _until_text(user.username, until, for_a_time=_("%(name)s is banned until %(until)s."),
                           for_good=_("%(name)s is banned for good."))
    return _act(request, session, rt, viewer, username, act)


@router.post("/admin/users/{username}/unban")
def unban(request: Request, session: DB, rt: RT, viewer: Moderator, username: Username,
          reason: FormText = "") -> Response:
    def act(user: User) -> str:
        people.unban(session, viewer, user, reason=reason, via="web")
        return interpolate(_("%(name)s is no longer banned."), {"name": user.username})
    return _act(request, session, rt, viewer, username, act)


Privilege = Annotated[str, Form(max_length=20)]


@router.post("/admin/users/{username}/revoke")
def revoke(request: Request, session: DB, rt: RT, viewer: Moderator, username: Username, privilege: Privilege,
           reason: FormText = "", days: Annotated[str, Form(max_length=20)] = "") -> Response:
    def act(user: User) -> str:
        until = people.revoke(session, viewer, user, privilege, days=_days(days), reason=reason, via="web")
        return _until_text(user.username, until, privilege=privilege,
                           for_a_time=_("%(name)s has lost the %(privilege)s privilege until %(until)s."),
                           for_good=_("%(name)s has lost the %(privilege)s privilege for good."))
    return _act(request, session, rt, viewer, username, act)


@router.post("/admin/users/{username}/restore")
def restore(request: Request, session: DB, rt: RT, viewer: Moderator, username: Username, privilege: Privilege,
            reason: FormText = "") -> Response:
    def act(user: User) -> str:
        people.restore_privilege(session, viewer, user, privilege, reason=reason, via="web")
        return interpolate(_("%(name)s has the %(privilege)s privilege again."),
                           {"name": user.username, "privilege": privilege})
    return _act(request, session, rt, viewer, username, act)


@router.post("/admin/users/{username}/warn")
def warn(request: Request, session: DB, rt: RT, viewer: Moderator, username: Username,
         reason: FormText = "") -> Response:
    def act(user: User) -> str:
        people.warn(session, viewer, user, reason=reason, via="web")
        return interpolate(_("%(name)s is warned."), {"name": user.username})
    return _act(request, session, rt, viewer, username, act)


@router.post("/admin/users/{username}/role")
def role(request: Request, session: DB, rt: RT, viewer: Moderator, username: Username,
         role: Annotated[str, Form(max_length=20)], change: Annotated[str, Form(max_length=10)],
         reason: FormText = "") -> Response:
    """``change``: "grant" or "take"."""
    def act(user: User) -> str:
        if change not in ("grant", "take"):
            raise InvalidInput("Choose whether to give or take away the role.", code="bad_change")
        granted = change == "grant"
        people.set_role(session, viewer, user, role, granted, reason=reason, via="web")
        text = _("%(name)s is now a %(role)s.") if granted else _("%(name)s is no longer a %(role)s.")
        return interpolate(text, {"name": user.username, "role": role})
    return _act(request, session, rt, viewer, username, act)


@router.post("/admin/users/{username}/upload-limit")
def upload_limit(request: Request, session: DB, rt: RT, viewer: Moderator, username: Username,
                 limit: Annotated[str, Form(max_length=40)] = "") -> Response:
    """``limit``: a size (500MiB, 2GiB, bytes); empty or "none": the site's."""
    def act(user: User) -> str:
        size = units.parse_size(limit) if limit.strip() else None
        people.set_upload_limit(session, viewer, user, size, via="web")
        if size is None:
            return interpolate(_("%(name)s now has the site's upload limit (%(limit)s)."),
                               {"name": user.username, "limit": units.format_size(rt.settings.max_upload_bytes)})
        return interpolate(_("%(name)s may now upload files of up to %(limit)s."),
                           {"name": user.username, "limit": units.format_size(size)})
    return _act(request, session, rt, viewer, username, act)


# Their data, and deleting the account (administrators) --------------------------------------------

@router.get("/admin/users/{username}/export")
def export_person(request: Request, session: DB, rt: RT, viewer: DataAdmin, username: Username,
                  base: SiteURL) -> Response:
    """The same zip the person downloads themselves, streamed; audited as ``user.export``."""
    return leaving_pages.export_response(request, rt, session, find_person(session, username), base, actor=viewer)


@router.post("/admin/users/{username}/delete")
def delete_person(request: Request, session: DB, rt: RT, viewer: DataAdmin, username: Username,
                  reason: FormText = "", confirm: Annotated[str, Form(max_length=200)] = "") -> Response:
    """Delete the account and everything it put in (kiln.accounts.leaving), after the username is
    typed again; the files go after the commit. A refusal re-shows the page with its sentence."""
    user = find_person(session, username)
    try:
        if confirm.strip().lower() != user.username:
            raise InvalidInput("Type the username %(name)s exactly to confirm; the account was not deleted.",
                               code="bad_confirmation", name=user.username)
        if not reason.strip():
            raise InvalidInput("Give a reason: it is kept in the audit log.", code="reason_required")
        if len(reason.strip()) > people.REASON_MAX:
            raise InvalidInput("A reason can have at most %(max)s characters.", code="reason_too_long",
                               max=people.REASON_MAX)
        done = leaving.delete_account(rt, session, viewer, user, reason=reason.strip(), via="web")
    except KilnError as exc:
        session.rollback()
        user = find_person(session, username)
        return _person_page(request, session, rt, viewer, user, status=exc.status, error=exc.message)
    text = _("The account %(name)s is deleted, with %(media)s media and %(collections)s collections.")
    flash(request, interpolate(text, {"name": done.username, "media": done.media, "collections": done.collections}),
          "success")
    return RedirectResponse("/admin/users", status_code=303)
