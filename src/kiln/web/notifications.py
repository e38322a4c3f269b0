"""Notifications: the page, marking read, the bell's count, the mail settings of the account page,
one-click unsubscribe (RFC 8058), and the /api/v1 operations."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from kiln.errors import InvalidInput, NotFound
from kiln.i18n import _
from kiln.social import notify, notify_mail
from kiln.social.models import Notification
from kiln.social.notify_text import describe, describe_json
from kiln.web.api import ERRORS, api_csrf
from kiln.web.deps import DB, RT, LoggedIn, RowId, SiteURL, Writer, check_csrf, flash
from kiln.web.templating import render

pages = APIRouter(include_in_schema=False, dependencies=[Depends(check_csrf)])
# The unsubscribe link works from a mail, without login or a form token: the signed token is the proof.
unsubscribe_pages = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/v1", tags=["notifications"], dependencies=[Depends(api_csrf)])
Cursor = Annotated[str | None, Query(max_length=20, description="`next` of the previous page")]
Token = Annotated[str, Query(max_length=300)]
PER_PAGE = 30


@pages.get("/notifications", response_class=HTMLResponse)
def notifications_page(request: Request, session: DB, user: LoggedIn, before: Cursor = None) -> HTMLResponse:
    listing = notify.page(session, user.id, before, PER_PAGE)
    return render(request, "notifications.html", items=describe(session, listing.items),
                  next_cursor=listing.next_cursor)


@pages.get("/notifications/{notification_id}/open")
def open_notification(request: Request, notification_id: RowId, session: DB, user: LoggedIn) -> Response:
    """The page's "Open" link: marks the notification read and goes where it leads (another person's
    notification is not found)."""
    row = session.get(Notification, notification_id)
    if row is None or row.user_id != user.id:
        raise NotFound("There is no such notification.")
    [described] = describe(session, [row])
    notify.mark_read(session, user.id, [row.id])
    session.commit()
    return RedirectResponse(described.url, status_code=303)


@pages.post("/notifications/{notification_id}/read")
def mark_one_read(request: Request, notification_id: RowId, session: DB, user: LoggedIn) -> Response:
    notify.mark_read(session, user.id, [notification_id])
    session.commit()
    return RedirectResponse("/notifications", status_code=303)


@pages.post("/notifications/read")
def mark_all_read(request: Request, session: DB, user: LoggedIn) -> Response:
    notify.mark_read(session, user.id)
    session.commit()
    flash(request, _("All notifications are marked read."), "success")
    return RedirectResponse("/notifications", status_code=303)


Mode = Annotated[str | None, Form(max_length=20)]


@pages.post("/account/notifications")
def mail_settings(request: Request, session: DB, user: LoggedIn, mail_comment: Mode = None, mail_reply: Mode = None,
                  mail_favourite: Mode = None, mail_follow: Mode = None, mail_invite: Mode = None,
                  mail_failed: Mode = None, mail_warning: Mode = None, mail_report_outcome: Mode = None,
                  mail_removed: Mode = None, mail_boost: Mode = None, mail_follow_request: Mode = None) -> Response:
    """One choice per type: immediate, digest or off (a type not sent keeps its mode)."""
    sent = {"comment": mail_comment, "reply": mail_reply, "favourite": mail_favourite, "follow": mail_follow,
            "invite": mail_invite, "failed": mail_failed, "warning": mail_warning,
            "report_outcome": mail_report_outcome, "removed": mail_removed, "boost": mail_boost,
            "follow_request": mail_follow_request}
    chosen = {t: mode for t, mode in sent.items() if mode is not None}
    notify.choose_mail(session, user, chosen)
    session.commit()
    flash(request, _("Notification mail settings saved."), "success")
    return RedirectResponse("/account#notifications", status_code=303)


@unsubscribe_pages.get("/unsubscribe", response_class=HTMLResponse)
def unsubscribe_form(request: Request, rt: RT, token: Token = "") -> HTMLResponse:
    """The link in the mail's body: a page with one button (mail clients may fetch links; only a POST
    changes anything)."""
    _user_id, type_ = notify_mail.read_unsubscribe(rt.settings, token)
    return render(request, "unsubscribe.html", token=token, what=notify_mail.type_name(type_), done=False)


@unsubscribe_pages.post("/unsubscribe", response_class=HTMLResponse)
def unsubscribe(request: Request, session: DB, rt: RT, token: Token = "") -> HTMLResponse:
    """RFC 8058 one-click: a POST to the List-Unsubscribe address turns that type's mail off."""
    _user, type_ = notify_mail.unsubscribe(session, rt.settings, token)
    session.commit()
    return render(request, "unsubscribe.html", token=token, what=notify_mail.type_name(type_), done=True)


# API -------------------------------------------------------------------------------------------

class NotificationOut(BaseModel):
    id: int
    type: str = Field(description="comment, reply, favourite, follow, invite or failed")
    read: bool
    created: str
    actor: str | None = Field(description="Who did it (a username; null for a processing failure)")
    media_id: int | None
    comment_id: int | None
    collection_id: int | None
    message: str = Field(description="The sentence, in the caller's language")
    url: str = Field(description="Where it leads")


class NotificationList(BaseModel):
    items: list[NotificationOut]
    next: str | None = Field(description="Pass as `cursor` to get the next page")
    unseen: int = Field(description="How many are unread")


class UnseenOut(BaseModel):
    unseen: int


class MarkRead(BaseModel):
    ids: list[Annotated[int, Field(ge=1, le=2**31 - 1)]] | None = Field(
        None, max_length=500, description="The notifications to mark read (others' ids are ignored)")
    all: bool = Field(False, description="Mark every notification read")


class MarkedOut(BaseModel):
    marked: int = Field(description="How many changed from unread to read")
    unseen: int


@api.get("/notifications", response_model=NotificationList, responses=ERRORS, summary="Your notifications")
def api_notifications(session: DB, user: LoggedIn, base: SiteURL, cursor: Cursor = None,
                      limit: Annotated[int, Query(ge=1, le=100)] = PER_PAGE) -> dict[str, Any]:
    """Newest first, in pages."""
    listing = notify.page(session, user.id, cursor, limit)
    return {"items": [describe_json(d, base) for d in describe(session, listing.items)],
            "next": listing.next_cursor, "unseen": notify.unseen_count(session, user.id)}


@api.get("/notifications/count", response_model=UnseenOut, responses=ERRORS, summary="How many are unread")
def api_unseen(session: DB, user: LoggedIn) -> dict[str, int]:
    """What the bell on every page asks every 30 seconds."""
    return {"unseen": notify.unseen_count(session, user.id)}


@api.post("/notifications/read", response_model=MarkedOut, responses=ERRORS, summary="Mark notifications read")
def api_mark_read(body: MarkRead, session: DB, user: Writer) -> dict[str, int]:
    """Send `{"ids": [...]}` or `{"all": true}`."""
    if not body.all and body.ids is None:
        raise InvalidInput("Send the ids to mark read, or all: true.", code="nothing_to_mark")
    marked = notify.mark_read(session, user.id, None if body.all else body.ids)
    session.commit()
    return {"marked": marked, "unseen": notify.unseen_count(session, user.id)}


router = APIRouter()
router.include_router(pages)
router.include_router(unsubscribe_pages)
router.include_router(api)
