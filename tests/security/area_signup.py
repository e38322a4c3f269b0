"""The matrix's entries for signing up's moderation queues and invite links (kiln.web.signup).

{request_id} is a sign-up request waiting for approval and {comment_id} a held comment: deciding one
consumes it, so each request's ``send`` makes a new one for the next role. {invite_id} is an invite
link the admin made: only its maker and admins may withdraw it (withdrawing twice changes nothing)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kiln.accounts import services as accounts
from kiln.accounts.models import Invite, RegistrationRequest
from kiln.social.models import Comment
from tests.security.conftest import PASSWORD, World
from tests.security.matrix_kit import GET_LOGGED_IN, Case, E, body, form

MODERATORS_PAGE = E(403, anon=303, moderator=200, admin=200)
MODERATORS_POST = E(403, anon=401, moderator=303, admin=303)


def _request(world: World) -> int:
    number = world.ids["applicants"] = world.ids.get("applicants", 0) + 1
    with world.rt.sessions() as session:
        user = accounts.create_user(session, f"applicant{number}", f"applicant{number}@example.com", PASSWORD)
        user.pending_approval = True
        row = RegistrationRequest(user_id=user.id, answer="Let me in")
        session.add(row)
        session.commit()
        return row.id


def _held(world: World) -> int:
    with world.rt.sessions() as session:
        row = Comment(media_id=world.media["public"], author_id=world.users["other"], body="Held", held=True)
        session.add(row)
        session.commit()
        return row.id


def setup(world: World) -> None:
    world.ids["request_id"] = _request(world)
    world.ids["comment_id"] = _held(world)
    with world.rt.sessions() as session:
        invite = Invite(code="matrix-invite", created_by=world.users["admin"], max_uses=1, uses=0)
        session.add(invite)
        session.commit()
        world.ids["invite_id"] = invite.id


def next_request(send: dict[str, Any] | None = None) -> Callable[[World], dict[str, Any]]:
    def make(world: World) -> dict[str, Any]:
        world.ids["request_id"] = _request(world)
        return send or {}
    return make


def next_held(send: dict[str, Any] | None = None) -> Callable[[World], dict[str, Any]]:
    def make(world: World) -> dict[str, Any]:
        world.ids["comment_id"] = _held(world)
        return send or {}
    return make


CASES: list[Case] = [
    # The moderators' queues
    Case("GET", "/admin/registrations", MODERATORS_PAGE),
    Case("POST", "/admin/registrations/{request_id}/approve", MODERATORS_POST, send=next_request()),
    Case("POST", "/admin/registrations/{request_id}/reject", MODERATORS_POST,
         send=next_request({"data": {"reason": "No"}})),
    Case("GET", "/admin/comments/held", MODERATORS_PAGE),
    Case("POST", "/admin/comments/held/{comment_id}/approve", MODERATORS_POST, send=next_held()),
    Case("POST", "/admin/comments/held/{comment_id}/reject", MODERATORS_POST, send=next_held()),
    # Invite links: admins make them (users too when the site allows; not here)
    Case("GET", "/invites", GET_LOGGED_IN),
    Case("POST", "/invites", E(403, anon=401, admin=303), send=form(uses="1", days="7")),
    Case("POST", "/invites/{invite_id}/revoke", E(404, anon=401, admin=303), note="the admin's invite"),
    Case("GET", "/api/v1/invites", E(200, anon=401)),
    Case("POST", "/api/v1/invites", E(403, anon=401, admin=201), send=body(uses=1, days=7)),
    Case("DELETE", "/api/v1/invites/{invite_id}", E(404, anon=401, read_tokens=403, admin=204),
         note="the admin's invite"),
]
