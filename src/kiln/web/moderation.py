"""The moderation queue: /admin/moderation (open reports grouped by target), a case page with the
action form, the list of removed things an admin can restore, and the /api/v1/admin operations
(kiln.moderation.reports, .actions and .removal do the work)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from kiln.accounts.models import User
from kiln.errors import InvalidInput, NotFound
from kiln.i18n import N_, _
from kiln.media import services as media_service
from kiln.media.models import MediaEntry
from kiln.media.visibility import private_route
from kiln.moderation import actions, removal
from kiln.moderation import reports as service
from kiln.moderation.people import MAX_DAYS, REASON_MAX, REVOCABLE
from kiln.runtime import Runtime
from kiln.social.models import Collection
from kiln.storage.base import Key
from kiln.web.api import ERRORS, api_csrf
from kiln.web.deps import DB, RT, LoggedIn, RowId, Writer, check_csrf, flash
from kiln.web.reports import ReportOut, labels
from kiln.web.templating import render

pages = APIRouter(include_in_schema=False, dependencies=[Depends(check_csrf)])
api = APIRouter(prefix="/api/v1/admin", tags=["moderation"], dependencies=[Depends(api_csrf)])
Sort = Annotated[Literal["newest", "most"], Query(description="newest: the newest report first; most: the most "
                                                              "reported target first")]
OUTCOME_LABELS = {"dismissed": N_("Dismissed"), "removed": N_("Removed"), "warned": N_("Warned"),
                  "revoked": N_("Privilege taken away"), "banned": N_("Banned")}


async def require_moderator(user: LoggedIn) -> User:
    removal.check_moderator(user)
    return user


Moderator = Annotated[User, Depends(require_moderator)]


def _thumbnail(media: MediaEntry | None) -> str | None:
    """The thumbnail through the app's checked route (it shows reported items to moderators)."""
    rendition = media.rendition("thumbnail") if media is not None else None
    return private_route(media, rendition) if media is not None and rendition is not None else None


def _delete_after_commit(rt: Runtime, session: Session, old_keys: list[Key]) -> None:
    session.commit()
    for key in old_keys:
        rt.stores.public.delete(key)


def _names() -> dict[str, dict[str, str]]:
    return {**labels(), "outcomes": {k: _(v) for k, v in OUTCOME_LABELS.items()}}


# Pages -------------------------------------------------------------------------------------------------

@pages.get("/admin/moderation", response_class=HTMLResponse)
def queue(request: Request, session: DB, user: Moderator, sort: Annotated[str, Query(max_length=10)] = "newest"
          ) -> HTMLResponse:
    cases = service.open_cases(session, sort if sort in service.SORTS else "newest")
    return render(request, "moderation.html", cases=cases, sort=sort, names=_names(), thumbnail=_thumbnail)


@pages.get("/admin/moderation/removed", response_class=HTMLResponse)
def removed_page(request: Request, session: DB, rt: RT, user: Moderator) -> HTMLResponse:
    return render(request, "moderation_removed.html", media=removal.removed_media(session),
                  collections=removal.removed_collections(session), thumbnail=_thumbnail,
                  grace_days=rt.settings.moderation.removal_grace_days)


@pages.get("/admin/moderation/{report_id}", response_class=HTMLResponse)
def case_page(request: Request, report_id: RowId, session: DB, user: Moderator) -> HTMLResponse:
    report = service.get_report(session, report_id)
    case = service.case_of(session, report)
    owner_id = case.target.owner.id if case.target and case.target.owner else report.target_owner_id
    return render(request, "moderation_case.html", report=report, case=case, names=_names(),
                  history=service.history(session, owner_id), thumbnail=_thumbnail, revocable=REVOCABLE,
                  reason_max=REASON_MAX, max_days=MAX_DAYS)


OptForm = Annotated[str, Form(max_length=20)]


@pages.post("/admin/moderation/{report_id}")
def case_action(request: Request, report_id: RowId, session: DB, rt: RT, user: Moderator,
                action: Annotated[list[str] | None, Form(max_length=5)] = None,
                reason: Annotated[str, Form(max_length=REASON_MAX * 4)] = "", days: OptForm = "",
                privilege: OptForm = "") -> Response:
    """The case page's form: "dismiss", or one or more actions ticked, with one reason."""
    report = service.get_report(session, report_id)
    decision = actions.Decision(tuple(action or ()), reason, _days(days), privilege or None)
    old_keys = actions.act(rt, session, user, report, decision, via="web")
    _delete_after_commit(rt, session, old_keys)
    flash(request, _("Done: the case is resolved and its reporters are told."), "success")
    return RedirectResponse("/admin/moderation", status_code=303)


def _days(value: str) -> int | None:
    text = value.strip()
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_DAYS:
        raise InvalidInput("Give a number of days from 1 to %(max)s, or none for good.", code="bad_days",
                           max=MAX_DAYS)
    return int(text)


@pages.post("/admin/moderation/removed/media/{media_id}/restore")
def restore_media(request: Request, media_id: RowId, session: DB, user: Moderator,
                  reason: Annotated[str, Form(max_length=REASON_MAX * 4)] = "") -> Response:
    media = media_service.get_media(session, media_id)
    removal.restore_media(session, user, media, reason=reason, via="web")
    session.commit()
    flash(request, _("Restored: everyone who could see it before can see it again."), "success")
    return RedirectResponse("/admin/moderation/removed", status_code=303)


@pages.post("/admin/moderation/removed/collections/{collection_id}/restore")
def restore_collection(request: Request, collection_id: RowId, session: DB, user: Moderator,
                       reason: Annotated[str, Form(max_length=REASON_MAX * 4)] = "") -> Response:
    collection = session.get(Collection, collection_id)
    if collection is None:
        raise NotFound("There is no such collection.")
    removal.restore_collection(session, user, collection, reason=reason, via="web")
    session.commit()
    flash(request, _("Restored: everyone who could see it before can see it again."), "success")
    return RedirectResponse("/admin/moderation/removed", status_code=303)


# API ---------------------------------------------------------------------------------------------------

class ReporterReport(ReportOut):
    reporter: str | None = Field(description="The reporter's username, `@name@host` for a report from another "
                                 "server (null once their account is gone)")


class CaseOut(BaseModel):
    target_type: str
    target_id: int
    label: str = Field(description="The title, username or start of the comment")
    owner: str | None = Field(description="Whom the case is about (a username)")
    exists: bool = Field(description="False once the target is gone")
    count: int = Field(description="How many open reports")
    reports: list[ReporterReport]


class CaseList(BaseModel):
    items: list[CaseOut]


Action = Literal["dismiss", "remove", "warn", "revoke", "ban"]


class ActionIn(BaseModel):
    action: Action | list[Action] = Field(description="One action, or several taken together (dismiss alone)")
    reason: str = Field(min_length=1, max_length=REASON_MAX, description="Why; the person acted on is told it")
    days: int | None = Field(None, ge=1, le=MAX_DAYS, description="For ban and revoke: how long (none: for good)")
    privilege: Literal["commenter", "uploader", "reporter"] | None = Field(None, description="For revoke")


class ActionOut(BaseModel):
    report: ReportOut


@api.get("/reports", response_model=CaseList, responses=ERRORS, summary="Open reports, grouped by target")
def api_reports(session: DB, user: Moderator, sort: Sort = "newest") -> dict[str, Any]:
    """For moderators and admins."""
    return {"items": [service.case_json(c) for c in service.open_cases(session, sort)]}


@api.post("/reports/{report_id}/actions", response_model=ActionOut, responses={**ERRORS, 409: ERRORS[404]},
          summary="Act on a report's case")
def api_act(report_id: RowId, body: ActionIn, session: DB, rt: RT, user: Writer) -> dict[str, Any]:
    """Dismiss the case, or remove the content, warn, take a privilege away or ban its owner (several
    actions at once as a list). Resolves every open report about the same target (a ban: also those
    about the person's other things) and tells each reporter the outcome."""
    removal.check_moderator(user)  # here, not as a dependency: an id out of range answers 422 first
    report = service.get_report(session, report_id)
    chosen = tuple(body.action) if isinstance(body.action, list) else (body.action,)
    decision = actions.Decision(chosen, body.reason, body.days, body.privilege)
    old_keys = actions.act(rt, session, user, report, decision, via="api")
    _delete_after_commit(rt, session, old_keys)
    session.refresh(report)
    return {"report": service.report_json(report)}


router = APIRouter()
router.include_router(pages)
router.include_router(api)
