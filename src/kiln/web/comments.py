"""Comments on media pages and in the API (kiln.social.comments says who may do what). The media page
shows 50 top-level comments a page, newest first, each with its replies oldest first; a form posts,
previews (a "Preview" button: no JavaScript needed), replies, edits and deletes."""

from __future__ import annotations

import functools
import re
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup, escape
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from kiln.accounts.models import User
from kiln.errors import InvalidInput, KilnError
from kiln.i18n import _
from kiln.media import services as media_service
from kiln.media.models import MediaEntry
from kiln.media.text import render_markdown
from kiln.runtime import Runtime
from kiln.social import blocks, favourites
from kiln.social import comments as service
from kiln.social.models import COMMENT_MAX, Comment
from kiln.web import favourites as favourite_routes
from kiln.web.api import ERRORS, ErrorOut, api_csrf
from kiln.web.deps import DB, RT, CurrentUser, LoggedIn, RowId, Writer, check_csrf, flash
from kiln.web.templating import render

pages = APIRouter(include_in_schema=False, dependencies=[Depends(check_csrf)])
api = APIRouter(prefix="/api/v1", tags=["comments"], dependencies=[Depends(api_csrf)])
MAX_ROW_ID = 2**31 - 1
Body = Annotated[str, Form(max_length=COMMENT_MAX * 4)]  # longer than allowed: the service says why
OptId = Annotated[str | None, Form(max_length=12)]


def _row_id(value: str | None) -> int | None:
    """A comment id from a form or a query string; anything else is None (the first page)."""
    if value and value.isascii() and value.isdigit() and 0 < int(value) <= MAX_ROW_ID:
        return int(value)
    return None


# Where a kept thread (kiln.web.fragments) leaves the viewer's CSRF token and each comment's actions.
# Random per process (as the fragments are): no one writing a comment can know it.
CSRF_MARK = "kiln-csrf-" + secrets.token_hex(12)
_ACTIONS = re.compile(r"<!--kiln-actions (\d+) (\d+)-->")
_REMOTE_BLOCK = re.compile(r"<!--kiln-remote-block-->(.*?)<!--/kiln-remote-block-->", re.S)


class LazyThread:
    """The page's comments, read from the database only when the thread is made (a kept one is not)."""

    def __init__(self, session: Session, media: MediaEntry, before: int | None, viewer: User | None = None) -> None:
        self._args = (session, media, before, service.PER_PAGE, viewer)

    @functools.cached_property
    def _thread(self) -> service.Thread:
        return service.thread(*self._args)

    def __getattr__(self, name: str) -> Any:  # comments, replies, next_cursor
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._thread, name)


def personalise_thread(html: str, user: User | None, moderates: bool, media_id: int, page: Any,
                       csrf: Any) -> Markup:
    """A thread made for everyone, with this viewer's CSRF token and, on the comments they may edit or
    delete (their own; anyone's for the owner and moderators), the buttons to do it; a logged-in
    viewer also gets the button that blocks a remote reply's author."""
    # The token's mark is secret; the actions' mark is an HTML comment, which a comment's Markdown
    # cannot make (its HTML is escaped), so no one can make a mark of their own.
    text = str(html)
    # The button that blocks a remote reply's author is for logged-in viewers.
    text = _REMOTE_BLOCK.sub("" if user is None else r"\1", text)
    if CSRF_MARK in text:  # only then: asking for the token sets its cookie, which no cached page may carry
        text = text.replace(f'value="{CSRF_MARK}"', f'value="{escape(str(csrf))}"')

    def actions(found: re.Match[str]) -> str:
        comment_id, author = int(found[1]), int(found[2])
        own = user is not None and user.id == author
        if user is None or not (own or moderates):
            return ""
        query = f"?page={page}" if page else ""
        edit = (Markup('<a href="/m/{}/comments/{}/edit{}">{}<span class="visually-hidden"> {}</span></a>')
                .format(media_id, comment_id, query, _("Edit"), _("your comment"))
                if own and user.is_active and user.has("commenter") else "")
        delete = Markup('<form method="post" action="/m/{}/comments/{}/delete" class="inline">'
                        '<input type="hidden" name="csrf_token" value="{}"><input type="hidden" name="page" '
                        'value="{}"><button type="submit" class="link">{}<span class="visually-hidden"> {}</span>'
                        '</button></form>').format(media_id, comment_id, str(csrf), page, _("Delete"),
                                                   _("this comment"))
        return Markup('<div class="comment-actions">{}{}</div>').format(edit, delete)

    return Markup(_ACTIONS.sub(actions, text))  # noqa: S704 - the thread's HTML, escaped as it was made


def _refusal(session: Session, media: MediaEntry, user: User | None) -> KilnError | None:
    """Why the viewer may not comment here, a block between them and the owner included (that costs a
    query only for people with a block: ``User.hiding``)."""
    refused = service.refusal(media, user)
    if refused is None and user is not None and user.hiding:
        try:
            blocks.check_may_interact(session, user, media.owner_id, media.owner.username, "comment")
        except KilnError as exc:
            return exc
    return refused


def media_context(request: Request, session: Session, rt: Runtime, media: MediaEntry,
                  user: User | None) -> dict[str, Any]:
    """The comments and the favourite button: at most three queries whatever the number of comments
    (the page's top-level comments, their replies, and whether the viewer favourited the item)."""
    before = _row_id(request.query_params.get("comments_before"))
    # A viewer with blocks or mutes sees a thread of their own (kiln.social.blocks), never the kept one.
    return {"thread": LazyThread(session, media, before, user), "comments_page": before or "",
            "keep_thread": not blocks.hidden(session, user).people,
            "personalise_thread": personalise_thread, "thread_csrf_mark": CSRF_MARK,
            "comment_refusal": _refusal(session, media, user), "may_delete_comment": service.may_delete,
            "favourited": favourites.is_favourite(session, user, media), "comment_max": COMMENT_MAX}


def _media_url(media: MediaEntry, page: int | None = None, anchor: str = "comments") -> str:
    query = f"?comments_before={page}" if page else ""
    return f"/u/{media.owner.username}/m/{media.id}{query}#{anchor}"


def _visible(session: Session, media_id: int, user: User | None) -> MediaEntry:
    media = media_service.get_media(session, media_id)
    service.check_visible(media, user)
    return media


def _form(request: Request, media: MediaEntry, *, body: str = "", parent_id: int | None = None,
          comment: Comment | None = None, page: int | None = None, preview: bool = False,
          error: str | None = None, status: int = 200) -> Response:
    return render(request, "comment_form.html", status=status, media=media, body=body, parent_id=parent_id,
                  comment=comment, page=page or "", preview=render_markdown(body) if preview and body else None,
                  error=error, comment_max=COMMENT_MAX)


@pages.post("/m/{media_id}/comments")
def post_comment(request: Request, media_id: RowId, session: DB, rt: RT, user: LoggedIn, body: Body = "",
                 parent_id: OptId = None, page: OptId = None, preview: OptId = None) -> Response:
    """Post a comment, or (with the Preview button) show how it will look, with the form again."""
    media = _visible(session, media_id, user)
    parent, back = _row_id(parent_id), _row_id(page)
    if preview is not None:
        refused = service.refusal(media, user)
        if refused is not None:
            raise refused
        return _form(request, media, body=body, parent_id=parent, page=back, preview=True)
    try:
        comment = service.post(rt, session, user, media, body, parent)
    except KilnError as exc:
        if exc.status not in (422, 429):
            raise
        session.rollback()
        return _form(request, media, body=body, parent_id=parent, page=back, error=exc.message, status=exc.status)
    if comment.held:
        flash(request, _("Your comment is waiting for approval by a moderator: others see it once it is approved."))
        return RedirectResponse(_media_url(media, None, "held-comments"), status_code=303)
    flash(request, _("Your comment is posted."), "success")
    return RedirectResponse(_media_url(media, back if parent else None, f"comment-{comment.id}"), status_code=303)


@pages.get("/m/{media_id}/comments/{comment_id}")
def permalink(media_id: RowId, comment_id: RowId, session: DB, user: CurrentUser) -> Response:
    """A comment's lasting address: the media page's comment page that shows it, at the comment."""
    media = _visible(session, media_id, user)
    comment = service.get_comment(session, media, comment_id, user)
    return RedirectResponse(_media_url(media, service.page_of(session, comment), f"comment-{comment.id}"),
                            status_code=303)


@pages.get("/m/{media_id}/comments/{comment_id}/edit")
def edit_form(request: Request, media_id: RowId, comment_id: RowId, session: DB, user: LoggedIn,
              page: Annotated[str | None, Query(max_length=12)] = None) -> Response:
    media = _visible(session, media_id, user)
    comment = service.get_comment(session, media, comment_id, user)
    service.check_author(comment, user)
    return _form(request, media, body=comment.body, comment=comment, page=_row_id(page))


@pages.post("/m/{media_id}/comments/{comment_id}/edit")
def edit(request: Request, media_id: RowId, comment_id: RowId, session: DB, user: LoggedIn, body: Body = "",
         page: OptId = None, preview: OptId = None) -> Response:
    media = _visible(session, media_id, user)
    comment = service.get_comment(session, media, comment_id, user)
    back = _row_id(page)
    if preview is not None:
        service.check_author(comment, user)
        return _form(request, media, body=body, comment=comment, page=back, preview=True)
    try:
        service.edit(session, user, media, comment, body)
    except InvalidInput as exc:
        session.rollback()
        return _form(request, media, body=body, comment=comment, page=back, error=exc.message, status=exc.status)
    flash(request, _("Your comment is saved."), "success")
    return RedirectResponse(_media_url(media, back, f"comment-{comment_id}"), status_code=303)


@pages.post("/m/{media_id}/comments/{comment_id}/delete")
def delete(request: Request, media_id: RowId, comment_id: RowId, session: DB, user: LoggedIn,
           page: OptId = None) -> Response:
    media = _visible(session, media_id, user)
    service.delete(session, user, media, service.get_comment(session, media, comment_id, user))
    flash(request, _("The comment is deleted."), "success")
    return RedirectResponse(_media_url(media, _row_id(page)), status_code=303)


# The API ---------------------------------------------------------------------------------------------
class CommentIn(BaseModel):
    body: str = Field(max_length=COMMENT_MAX, description="Markdown")
    parent_id: int | None = Field(None, ge=1, le=MAX_ROW_ID, description="Reply to this comment (a reply to a "
                                  "reply joins its thread: replies are one level deep)")


class CommentEdit(BaseModel):
    body: str = Field(max_length=COMMENT_MAX, description="Markdown")


class PreviewIn(BaseModel):
    body: str = Field(max_length=COMMENT_MAX, description="Markdown")


class PreviewOut(BaseModel):
    body_html: str = Field(description="The body as pages show it: sanitised HTML")


class CommentOut(BaseModel):
    id: int
    author: str | None = Field(description="The author's username (`@name@host` for a reply from another "
                               "server); null for a deleted comment or account")
    author_name: str | None = Field(description="The author's display name (or username)")
    author_url: str | None = Field(None, description="For a reply from another server: its author's profile there")
    remote: bool = Field(False, description="A reply from another server (ActivityPub): `body` is then HTML")
    body: str = Field(description="Markdown, as written (HTML after the allow-list for a reply from another "
                      "server); empty for a deleted comment")
    body_html: str = Field(description="The body as pages show it: sanitised HTML (links get "
                           "rel=\"nofollow ugc noopener\")")
    parent_id: int | None = Field(description="The top-level comment this replies to")
    created: str
    edited: str | None
    deleted: bool = Field(description="A placeholder for a deleted comment that has replies")
    held: bool = Field(False, description="Waiting for a moderator's approval: only its author and moderators see it")
    replies: list[CommentOut] = Field(default_factory=list, description="Replies, oldest first (top-level "
                                      "comments of a listing only)")


class CommentPage(BaseModel):
    items: list[CommentOut] = Field(description="Top-level comments, newest first, each with its replies")
    next: str | None = Field(description="Pass as `cursor` to get the page of older comments")


def comment_json(comment: Comment, replies: list[Comment] | None = None) -> dict[str, Any]:
    shown = comment.deleted is None
    author = comment.author if shown else None
    remote = comment.remote_actor if shown else None
    names = ((author.username, author.display_name or author.username) if author else
             (remote.handle, remote.display_name or remote.handle) if remote else (None, None))
    return {"id": comment.id, "author": names[0], "author_name": names[1],
            "author_url": remote.link if remote else None, "remote": comment.remote_actor_id is not None,
            "body": comment.body if shown else "", "body_html": str(service.body_html(comment)) if shown else "",
            "parent_id": comment.parent_id, "created": comment.created.isoformat(),
            "edited": comment.edited.isoformat() if comment.edited else None, "deleted": not shown,
            "held": comment.held,
            "replies": [comment_json(r) for r in replies or []]}


@api.get("/media/{media_id}/comments", response_model=CommentPage, responses=ERRORS)
def api_list(media_id: RowId, session: DB, user: CurrentUser,
             cursor: Annotated[str | None, Query(max_length=12)] = None) -> dict[str, Any]:
    """The item's comments, 50 top-level ones a page, newest first, each with all its replies."""
    media = _visible(session, media_id, user)
    if cursor is not None and _row_id(cursor) is None:
        raise InvalidInput("That page link is broken; start from the first page.", code="bad_cursor")
    page = service.thread(session, media, _row_id(cursor), viewer=user)
    return {"items": [comment_json(c, page.replies[c.id]) for c in page.comments],
            "next": str(page.next_cursor) if page.next_cursor else None}


THROTTLED: dict[int | str, dict[str, Any]] = {
    429: {"model": ErrorOut, "description": "Too many comments in an hour (Retry-After says when)"}}


@api.post("/media/{media_id}/comments", status_code=201, response_model=CommentOut,
          responses={**ERRORS, **THROTTLED})
def api_post(media_id: RowId, comment: CommentIn, session: DB, rt: RT, user: Writer) -> dict[str, Any]:
    """Comment on an item (or reply to a comment). Needs a verified account with the `commenter`
    privilege, comments turned on for the item and its owner, and is rate-limited per person."""
    media = _visible(session, media_id, user)
    return comment_json(service.post(rt, session, user, media, comment.body, comment.parent_id))


@api.patch("/media/{media_id}/comments/{comment_id}", response_model=CommentOut, responses=ERRORS)
def api_edit(media_id: RowId, comment_id: RowId, change: CommentEdit, session: DB, user: Writer) -> dict[str, Any]:
    """Change your own comment's body."""
    media = _visible(session, media_id, user)
    return comment_json(service.edit(session, user, media, service.get_comment(session, media, comment_id, user),
                                     change.body))


@api.delete("/media/{media_id}/comments/{comment_id}", status_code=204, responses=ERRORS)
def api_delete(media_id: RowId, comment_id: RowId, session: DB, user: Writer) -> Response:
    """Delete a comment: its author, the item's owner, moderators and admins may."""
    media = _visible(session, media_id, user)
    service.delete(session, user, media, service.get_comment(session, media, comment_id, user))
    return Response(status_code=204)


@api.post("/comments/preview", response_model=PreviewOut, responses=ERRORS)
def api_preview(preview: PreviewIn, user: LoggedIn) -> dict[str, str]:
    """How a comment body will look, without posting it."""
    return {"body_html": str(render_markdown(preview.body))}


router = APIRouter()
router.include_router(pages)
router.include_router(api)
router.include_router(favourite_routes.router)  # favourites are this module's neighbours on the media page
