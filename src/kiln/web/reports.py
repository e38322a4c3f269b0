"""Reporting: the report form (/report?type=..&id=.., no JavaScript), the reporter's own reports
(/reports/mine), and the /api/v1 operations (kiln.moderation.reports says who may report what)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from kiln.errors import InvalidInput, KilnError, NotFound
from kiln.i18n import N_, _
from kiln.moderation import reports as service
from kiln.moderation.models import REPORT_CATEGORIES, REPORT_TARGETS, REPORT_TEXT_MAX
from kiln.social.notify_text import outcome_text
from kiln.web.api import ERRORS, api_csrf
from kiln.web.deps import DB, LoggedIn, Writer, check_csrf, flash
from kiln.web.templating import render

pages = APIRouter(include_in_schema=False, dependencies=[Depends(check_csrf)])
api = APIRouter(prefix="/api/v1", tags=["reports"], dependencies=[Depends(api_csrf)])
MAX_ROW_ID = 2**31 - 1
# How each category and target is named for people (translated where shown).
CATEGORY_LABELS = {"spam": N_("Spam"), "harassment": N_("Harassment"), "illegal": N_("Illegal content"),
                   "copyright": N_("Copyright"), "sensitive": N_("Sensitive, without a warning"),
                   "other": N_("Something else")}
# The report page's heading for each target.
HEADINGS = {"media": N_("Report this media item"), "comment": N_("Report this comment"),
            "collection": N_("Report this collection"), "user": N_("Report this person")}
TARGET_LABELS = {"media": N_("media item"), "comment": N_("comment"), "collection": N_("collection"),
                 "user": N_("person")}
STATE_LABELS = {"open": N_("Open"), "resolved": N_("Resolved")}
QueryText = Annotated[str, Query(max_length=20)]
FormText = Annotated[str, Form(max_length=20)]


def labels() -> dict[str, dict[str, str]]:
    """The names templates show, in the reader's language."""
    return {"categories": {k: _(v) for k, v in CATEGORY_LABELS.items()},
            "targets": {k: _(v) for k, v in TARGET_LABELS.items()},
            "states": {k: _(v) for k, v in STATE_LABELS.items()},
            "headings": {k: _(v) for k, v in HEADINGS.items()}}


def _row_id(value: str) -> int:
    if value and value.isascii() and value.isdigit() and 0 < int(value) <= MAX_ROW_ID:
        return int(value)
    raise NotFound(service.NO_SUCH_THING)


def _target_type(value: str) -> str:
    if value not in REPORT_TARGETS:
        raise InvalidInput("You can report a media item, a comment, a collection or a person.", code="bad_target")
    return value


def _form(request: Request, target: service.Target, *, category: str = "", text: str = "",
          error: str | None = None, status: int = 200) -> HTMLResponse:
    return render(request, "report.html", status=status, target=target, category=category, text=text,
                  error=error, text_max=REPORT_TEXT_MAX, names=labels())


@pages.get("/report", response_class=HTMLResponse)
def report_form(request: Request, session: DB, user: LoggedIn, type: QueryText = "", id: QueryText = "") -> Response:
    return _form(request, service.reportable(session, user, _target_type(type), _row_id(id)))


@pages.post("/report", response_class=HTMLResponse)
def report_post(request: Request, session: DB, user: LoggedIn, type: FormText = "", id: FormText = "",
                category: FormText = "", text: Annotated[str, Form(max_length=REPORT_TEXT_MAX * 4)] = "") -> Response:
    target_type, target_id = _target_type(type), _row_id(id)
    try:
        _report, created = service.file_report(session, user, target_type, target_id, category, text)
    except InvalidInput as exc:
        session.rollback()
        target = service.find_target(session, target_type, target_id, user)
        return _form(request, target, category=category, text=text, error=exc.message, status=exc.status)
    session.commit()
    flash(request, _("Thank you: the moderators will look at your report.") if created
          else _("You have reported this already; the moderators will look at it."), "success")
    return RedirectResponse("/reports/mine", status_code=303)


@pages.get("/reports/mine", response_class=HTMLResponse)
def my_reports_page(request: Request, session: DB, user: LoggedIn) -> HTMLResponse:
    return render(request, "reports_mine.html", reports=service.my_reports(session, user), names=labels(),
                  outcome_text=outcome_text)


# API -------------------------------------------------------------------------------------------------

class ReportIn(BaseModel):
    target_type: Literal["media", "comment", "collection", "user"]
    target_id: int = Field(ge=1, le=MAX_ROW_ID, description="The id of the item, comment, collection or person")
    category: Literal["spam", "harassment", "illegal", "copyright", "sensitive", "other"]
    text: str = Field("", max_length=REPORT_TEXT_MAX, description="What is wrong, for the moderators")


class ReportOut(BaseModel):
    id: int
    created: str
    target_type: str
    target_id: int
    category: str
    text: str
    state: str = Field(description="open or resolved")
    outcome: str | None = Field(description="Once resolved: dismissed, removed, warned, revoked or banned")
    resolved_at: str | None


class ReportFiled(ReportOut):
    new: bool = Field(description="False when you had reported this already (your open report is answered)")


class ReportList(BaseModel):
    items: list[ReportOut]


assert set(REPORT_CATEGORIES) == set(CATEGORY_LABELS) and set(REPORT_TARGETS) == set(TARGET_LABELS)


@api.post("/reports", response_model=ReportFiled, status_code=201, summary="Report something",
          responses={**ERRORS, 200: {"model": ReportFiled, "description": "You had reported this already: your open "
                                                                          "report"}})
def api_report(body: ReportIn, session: DB, user: Writer, response: Response) -> dict[str, Any]:
    """Report a media item, a comment, a collection or a person to the moderators. Reporting the same
    thing again while your report is open answers that report (200) instead of making another."""
    try:
        report, created = service.file_report(session, user, body.target_type, body.target_id, body.category,
                                              body.text)
    except KilnError:
        session.rollback()
        raise
    session.commit()
    if not created:
        response.status_code = 200
    return {**service.report_json(report), "new": created}


@api.get("/reports/mine", response_model=ReportList, responses=ERRORS, summary="Your reports and their state")
def api_my_reports(session: DB, user: LoggedIn) -> dict[str, Any]:
    return {"items": [service.report_json(r) for r in service.my_reports(session, user)]}


router = APIRouter()
router.include_router(pages)
router.include_router(api)
