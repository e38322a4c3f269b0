"""Blocks and mutes (kiln.social.blocks says what each does): the buttons on profiles, the
/account/blocks page with its undo buttons (and blocks of accounts on other servers,
kiln.federation.moderation), and the /api/v1 operations."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from kiln.accounts.models import User
from kiln.accounts.services import get_user
from kiln.federation import moderation as remote_blocks
from kiln.i18n import N_, _, interpolate
from kiln.social import blocks
from kiln.web.api import ERRORS, api_csrf
from kiln.web.deps import DB, LoggedIn, SiteURL, Writer, check_csrf, flash
from kiln.web.templating import render

pages = APIRouter(include_in_schema=False, dependencies=[Depends(check_csrf)])
api = APIRouter(prefix="/api/v1", tags=["social"], dependencies=[Depends(api_csrf)])
Username = Annotated[str, Path(min_length=1, max_length=30)]
Back = Annotated[str, Form(max_length=20)]

# The flash message after each form, by (kind, on).
DONE = {("block", True): N_("You blocked %(name)s."), ("block", False): N_("You unblocked %(name)s."),
        ("mute", True): N_("You muted %(name)s."), ("mute", False): N_("You unmuted %(name)s.")}


# Pages -----------------------------------------------------------------------------------------

@pages.get("/account/blocks", response_class=HTMLResponse)
def blocks_page(request: Request, session: DB, user: LoggedIn) -> HTMLResponse:
    return render(request, "blocks.html", listing=blocks.listing(session, user),
                  remote=remote_blocks.blocked_by(session, user))


Account = Annotated[str, Form(min_length=1, max_length=500)]


BackId = Annotated[int | None, Form(ge=1, le=2**31 - 1)]


@pages.post("/account/blocks/remote")
def block_remote_form(request: Request, session: DB, user: LoggedIn, account: Account, media: BackId = None,
                      comment: BackId = None) -> Response:
    """Block an account on another server (@name@host or its address) that Kiln has met. From the
    button beside its reply (``media`` and ``comment``), back to that reply; else to the blocks page."""
    actor = remote_blocks.find_actor(session, account)
    remote_blocks.block_remote(session, user, actor)
    session.commit()
    flash(request, interpolate(_(DONE["block", True]), {"name": actor.handle}), "success")
    back = f"/m/{media}/comments/{comment}" if media and comment else "/account/blocks#remote"
    return RedirectResponse(back, status_code=303)


@pages.post("/account/blocks/remote/remove")
def unblock_remote_form(request: Request, session: DB, user: LoggedIn, account: Account) -> Response:
    actor = remote_blocks.find_actor(session, account)
    remote_blocks.unblock_remote(session, user, actor)
    session.commit()
    flash(request, interpolate(_(DONE["block", False]), {"name": actor.handle}), "success")
    return RedirectResponse("/account/blocks#remote", status_code=303)


def _change(request: Request, session: Session, user: User, username: str, kind: str, on: bool,
            back: str) -> Response:
    target = get_user(session, username)
    (blocks.add if on else blocks.remove)(session, user, target, kind)
    session.commit()
    flash(request, interpolate(_(DONE[kind, on]), {"name": target.display_name or target.username}), "success")
    return RedirectResponse("/account/blocks" if back == "blocks" else f"/u/{target.username}", status_code=303)


@pages.post("/u/{username}/block")
def block_form(request: Request, username: Username, session: DB, user: LoggedIn, back: Back = "") -> Response:
    return _change(request, session, user, username, "block", True, back)


@pages.post("/u/{username}/unblock")
def unblock_form(request: Request, username: Username, session: DB, user: LoggedIn, back: Back = "") -> Response:
    return _change(request, session, user, username, "block", False, back)


@pages.post("/u/{username}/mute")
def mute_form(request: Request, username: Username, session: DB, user: LoggedIn, back: Back = "") -> Response:
    return _change(request, session, user, username, "mute", True, back)


@pages.post("/u/{username}/unmute")
def unmute_form(request: Request, username: Username, session: DB, user: LoggedIn, back: Back = "") -> Response:
    return _change(request, session, user, username, "mute", False, back)


# API -------------------------------------------------------------------------------------------

class BlockStateOut(BaseModel):
    blocked: bool = Field(description="Whether the caller blocks this person now")
    muted: bool = Field(description="Whether the caller mutes this person now")


class BlockedPersonOut(BaseModel):
    username: str
    display_name: str
    url: str = Field(description="The person's profile page")
    since: str = Field(description="When the block or mute began (ISO 8601)")


class BlocksOut(BaseModel):
    blocked: list[BlockedPersonOut] = Field(description="People the caller blocks, newest first")
    muted: list[BlockedPersonOut] = Field(description="People the caller mutes, newest first")


def _state(session: Session, user: User, target: User) -> dict[str, bool]:
    found = blocks.state(session, user, target)
    return {"blocked": "block" in found, "muted": "mute" in found}


def _api_change(session: Session, user: User, name: str, kind: str, on: bool) -> dict[str, bool]:
    target = get_user(session, name)
    (blocks.add if on else blocks.remove)(session, user, target, kind)
    session.commit()
    return _state(session, user, target)


@api.put("/users/{name}/block", response_model=BlockStateOut, responses=ERRORS, summary="Block a person")
def api_block(name: Username, session: DB, user: Writer) -> dict[str, bool]:
    """They can no longer see your media, collections or profile, nor comment on, favourite or follow
    you; the follows between you end. Blocking again changes nothing; you cannot block yourself (422)."""
    return _api_change(session, user, name, "block", True)


@api.delete("/users/{name}/block", response_model=BlockStateOut, responses=ERRORS, summary="Unblock a person")
def api_unblock(name: Username, session: DB, user: Writer) -> dict[str, bool]:
    return _api_change(session, user, name, "block", False)


@api.put("/users/{name}/mute", response_model=BlockStateOut, responses=ERRORS, summary="Mute a person")
def api_mute(name: Username, session: DB, user: Writer) -> dict[str, bool]:
    """Their media and comments are left out of what you see; they are not told."""
    return _api_change(session, user, name, "mute", True)


@api.delete("/users/{name}/mute", response_model=BlockStateOut, responses=ERRORS, summary="Unmute a person")
def api_unmute(name: Username, session: DB, user: Writer) -> dict[str, bool]:
    return _api_change(session, user, name, "mute", False)


@api.get("/account/blocks", response_model=BlocksOut, responses=ERRORS, summary="The people you block and mute")
def api_blocks(session: DB, user: LoggedIn, base: SiteURL) -> dict[str, Any]:
    listing = blocks.listing(session, user)

    def person(row: Any) -> dict[str, str]:
        return {"username": row.target.username, "display_name": row.target.display_name or row.target.username,
                "url": f"{base}/u/{row.target.username}", "since": row.created.isoformat()}

    return {"blocked": [person(r) for r in listing["block"]], "muted": [person(r) for r in listing["mute"]]}


router = APIRouter()
router.include_router(pages)
router.include_router(api)
