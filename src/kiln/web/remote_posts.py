"""Posts from accounts followed elsewhere (kiln.federation.posts): a page of its own for each, with its
answers and a form to answer; Kiln's copies of their files. Logged-in readers only: Kiln shows its
readers what they follow, it is not a public mirror of other servers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from kiln.errors import KilnError, NotFound
from kiln.federation import answers
from kiln.federation.media_cache import STORE
from kiln.federation.models import RemoteAttachment, RemotePost
from kiln.i18n import _, interpolate
from kiln.runtime import Runtime
from kiln.social.models import COMMENT_MAX
from kiln.web.api import ERRORS, api_csrf
from kiln.web.deps import DB, RT, CurrentUser, LoggedIn, RowId, Writer, check_csrf, flash
from kiln.web.files import PRIVATE_HEADERS, serve_stored
from kiln.web.templating import render

pages = APIRouter(include_in_schema=False, dependencies=[Depends(check_csrf)])
api = APIRouter(prefix="/api/v1", tags=["social"], dependencies=[Depends(api_csrf)])
Body = Annotated[str, Form(max_length=COMMENT_MAX * 2)]


def file_url(attachment: RemoteAttachment) -> str | None:
    return f"/remote/files/{attachment.id}" if attachment.state == "cached" else None


class RemoteAttachmentOut(BaseModel):
    kind: str = Field(description="image, video, audio or other")
    media_type: str = Field(description="The type Kiln found in its copy's bytes (else as the other server said)")
    url: str | None = Field(description="Kiln's copy (logged-in readers only); null until it is copied")
    remote_url: str = Field(description="The file on its own server")
    alt: str
    width: int | None
    height: int | None
    blurhash: str


class RemotePostOut(BaseModel):
    id: int
    uri: str = Field(description="Its ActivityPub id")
    url: str = Field(description="Its page on its own server")
    page: str = Field(description="Its page here, with the answers and a form to answer")
    author: str = Field(description="`@name@host`")
    author_url: str
    content_html: str = Field(description="Sanitised HTML")
    summary: str = Field(description="A content warning, when it has one")
    sensitive: bool
    published: str
    attachments: list[RemoteAttachmentOut]


def post_json(post: RemotePost, base: str) -> dict[str, Any]:
    from kiln.media.text import sanitise_html

    return {"id": post.id, "uri": post.uri, "url": post.url, "page": f"{base}/remote/posts/{post.id}",
            "author": post.actor.handle, "author_url": post.actor.link,
            "content_html": str(sanitise_html(post.content)), "summary": post.summary, "sensitive": post.sensitive,
            "published": post.published.isoformat(),
            "attachments": [{"kind": a.kind, "media_type": a.stored_type or a.media_type,
                             "url": f"{base}{file_url(a)}" if file_url(a) else None, "remote_url": a.url,
                             "alt": a.name, "width": a.width, "height": a.height, "blurhash": a.blurhash}
                            for a in post.attachments]}


@pages.get("/remote/posts/{post_id}", response_class=HTMLResponse)
def post_page(request: Request, post_id: RowId, session: DB, user: LoggedIn) -> HTMLResponse:
    post = answers.get_post(session, post_id, user)
    return render(request, "remote_post.html", post=post, answers=answers.answers(session, post),
                  favourited=answers.favourited(session, user, [post.id]))


@pages.post("/remote/posts/{post_id}/favourite")
def favourite_form(request: Request, post_id: RowId, session: DB, rt: RT, user: LoggedIn,
                   favourite: Annotated[str, Form(max_length=1)] = "1", back: Annotated[str, Form(max_length=20)] = "",
                   ) -> Response:
    """Favourite a post from elsewhere (``favourite`` 1) or take it back (0): its author's server is told."""
    post = answers.get_post(session, post_id, user)
    try:
        answers.favourite(rt, session, user, post, favourite == "1")
    except KilnError as exc:
        session.rollback()
        flash(request, exc.message, "error")
    else:
        session.commit()
    where = "/timeline" if back == "timeline" else f"/remote/posts/{post_id}"
    return RedirectResponse(f"{where}#remote-post-{post_id}", status_code=303)


@pages.post("/remote/posts/{post_id}/answers")
def answer_form(request: Request, post_id: RowId, session: DB, rt: RT, user: LoggedIn, body: Body) -> Response:
    post = answers.get_post(session, post_id, user)
    try:
        answers.answer(rt, session, user, post, body)
    except KilnError as exc:
        session.rollback()
        flash(request, exc.message, "error")
        return RedirectResponse(f"/remote/posts/{post_id}", status_code=303)
    session.commit()
    flash(request, interpolate(_("Your comment is on its way to %(name)s."), {"name": post.actor.handle}), "success")
    return RedirectResponse(f"/remote/posts/{post_id}#answers", status_code=303)


@pages.get("/remote/files/{attachment_id}")
def cached_file(attachment_id: RowId, session: DB, rt: RT, user: CurrentUser) -> Response:
    """Kiln's copy of a file from elsewhere, with the type found in its bytes (never SVG or HTML)."""
    attachment = session.get(RemoteAttachment, attachment_id)
    if user is None or attachment is None or attachment.state != "cached" or not attachment.stored_key:
        raise NotFound("There is no such file.")
    return _serve(rt, list(attachment.stored_key), attachment.stored_type)


def _serve(rt: Runtime, key: list[str], media_type: str) -> Response:
    return serve_stored(rt.stores.by_name(STORE), key, media_type, dict(PRIVATE_HEADERS))


class AnswerIn(BaseModel):
    body: str = Field(min_length=1, max_length=COMMENT_MAX, description="Markdown")


class AnswerOut(BaseModel):
    id: int
    body: str
    created: str
    note: str = Field(description="The id of the Note sent to the post's author")


@api.post("/remote/posts/{post_id}/comments", status_code=201, response_model=AnswerOut, responses=ERRORS,
          summary="Comment on a post from another server")
def api_answer(post_id: RowId, session: DB, rt: RT, user: Writer, data: AnswerIn) -> dict[str, Any]:
    """The comment is kept here (under the post's page) and sent to its author's server as a reply
    (`Create{Note}`, `inReplyTo` the post). `post_id` is a `remote_posts` id of `GET /api/v1/timeline`."""
    post = answers.get_post(session, post_id, user)
    row = answers.answer(rt, session, user, post, data.body)
    session.commit()
    return {"id": row.id, "body": row.body, "created": row.created.isoformat(),
            "note": answers.note_id(rt, post, row)}


class FavouriteOut(BaseModel):
    favourited: bool


@api.put("/remote/posts/{post_id}/favourite", response_model=FavouriteOut, responses=ERRORS,
         summary="Favourite a post from another server")
def api_favourite(post_id: RowId, session: DB, rt: RT, user: Writer) -> dict[str, Any]:
    """Its author's server is sent `Like` (again: nothing changes)."""
    post = answers.get_post(session, post_id, user)
    answers.favourite(rt, session, user, post, True)
    session.commit()
    return {"favourited": True}


@api.delete("/remote/posts/{post_id}/favourite", response_model=FavouriteOut, responses=ERRORS,
            summary="Take back a favourite of a post from another server")
def api_unfavourite(post_id: RowId, session: DB, rt: RT, user: Writer) -> dict[str, Any]:
    """Its author's server is sent `Undo{Like}`."""
    post = answers.get_post(session, post_id, user)
    answers.favourite(rt, session, user, post, False)
    session.commit()
    return {"favourited": False}


router = APIRouter()
router.include_router(pages)
router.include_router(api)
