"""The matrix for comments and favourites (kiln.web.comments, kiln.web.favourites).

``setup`` gives the owner a public item of its own ("commented", so edits of the core cases' item
cannot turn its comments off) with a comment by "other" and the owner's reply, and a private item
("private_commented") with a comment by the owner. Deleting cases delete a fresh comment per role:
each request's ``send`` makes the comment the next role's request deletes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kiln.accounts.models import User
from kiln.media.models import MediaEntry
from kiln.social import comments
from tests.security.conftest import World
from tests.security.matrix_kit import GET_LOGGED_IN, PAGE_OF_OWNER, Case, E, body, form

C = "/m/{media_id}/comments"
API = "/api/v1/media/{media_id}/comments"
MINE = {"comment_id": "comment"}  # other's comment on the commented item
PRIVATE = {"comment_id": "private_comment"}  # the owner's comment on their private item
FRESH = {"comment_id": "fresh_comment"}


def _comment(world: World, author: str, target: str, body_text: str, parent_id: int | None = None) -> int:
    with world.rt.sessions() as session:
        user = session.get_one(User, world.users[author])
        media = session.get_one(MediaEntry, world.media[target])
        return comments.post(world.rt, session, user, media, body_text, parent_id).id


def setup(world: World) -> None:
    world.media["commented"] = world.upload("owner", world.folder / "small.png", "Commented")
    world.ids["comment"] = _comment(world, "other", "commented", "First!")
    world.ids["reply"] = _comment(world, "owner", "commented", "Thanks", world.ids["comment"])
    world.media["private_commented"] = world.upload("owner", world.folder / "small.png", "Private commented")
    world.make_private(world.media["private_commented"])
    world.ids["private_comment"] = _comment(world, "owner", "private_commented", "Note to self")
    world.ids["fresh_comment"] = _comment(world, "other", "commented", "Delete me")


def next_fresh(send: dict[str, Any] | None = None) -> Callable[[World], dict[str, Any]]:
    """A new comment by "other" for the next role to delete (this role's URL is already filled)."""
    def make(world: World) -> dict[str, Any]:
        world.ids["fresh_comment"] = _comment(world, "other", "commented", "Delete me")
        return send or {}
    return make


CASES: list[Case] = [
    # Reading: whoever may see the item.
    Case("GET", API, E(200), target="commented"),
    Case("GET", API, PAGE_OF_OWNER, target="private_commented"),
    Case("GET", "/u/{username}/m/{media_id}", E(200), target="commented", note="with comments"),
    # Posting: verified accounts with the commenter privilege, on items they may see.
    Case("POST", C, E(303, anon=401, unverified=403), target="commented", send=form(body="Nice")),
    Case("POST", C, E(200, anon=401, unverified=403), target="commented", send=form(body="*Nice*", preview="1"),
         note="preview"),
    Case("POST", C, E(404, anon=401, owner=303, admin=303), target="private_commented", send=form(body="Hm")),
    Case("POST", API, E(201, anon=401, unverified=403, read_tokens=403), target="commented", send=body(body="Nice")),
    Case("POST", API, E(404, anon=401, read_tokens=403, owner=201, admin=201, token_write_owner=201),
         target="private_commented", send=body(body="Hm")),
    Case("POST", "/api/v1/comments/preview", E(200, anon=401), send=body(body="**preview**")),
    # Editing: the author only.
    Case("GET", C + "/{comment_id}/edit", E(403, anon=303, other=200), target="commented", ids=MINE),
    Case("POST", C + "/{comment_id}/edit", E(403, anon=401, other=303), target="commented", ids=MINE,
         send=form(body="Edited")),
    Case("PATCH", API + "/{comment_id}", E(403, anon=401, other=200, token_write_other=200), target="commented",
         ids=MINE, send=body(body="Edited")),
    Case("PATCH", API + "/{comment_id}", E(404, anon=401, read_tokens=403, owner=200, token_write_owner=200,
                                           admin=403), target="private_commented", ids=PRIVATE, send=body(body="Mine")),
    # Deleting: the author, the item's owner, moderators and admins.
    Case("POST", C + "/{comment_id}/delete", E(303, anon=401, unverified=403), target="commented", ids=FRESH,
         send=next_fresh(), note="a fresh comment by other"),
    Case("DELETE", API + "/{comment_id}", E(204, anon=401, unverified=403, read_tokens=403), target="commented",
         ids=FRESH, send=next_fresh(), note="a fresh comment by other"),
    # Favourites: anyone logged in, on what they may see; who favourited is for the owner and admins.
    Case("POST", "/m/{media_id}/favourite", E(303, anon=401), target="commented", send=form(favourite="1")),
    Case("POST", "/m/{media_id}/favourite", E(404, anon=401, owner=303, admin=303), target="private_commented",
         send=form(favourite="1")),
    Case("PUT", "/api/v1/media/{media_id}/favourite", E(200, anon=401, read_tokens=403), target="commented"),
    Case("PUT", "/api/v1/media/{media_id}/favourite", E(404, anon=401, read_tokens=403, owner=200, admin=200,
                                                         token_write_owner=200), target="private_commented"),
    Case("DELETE", "/api/v1/media/{media_id}/favourite", E(200, anon=401, read_tokens=403), target="commented"),
    Case("DELETE", "/api/v1/media/{media_id}/favourite", E(404, anon=401, read_tokens=403, owner=200, admin=200,
                                                            token_write_owner=200), target="private_commented"),
    Case("GET", "/favourites", GET_LOGGED_IN),
    Case("GET", "/api/v1/favourites", E(200, anon=401)),
    Case("GET", "/m/{media_id}/favourites", E(403, anon=303, owner=200, admin=200), target="commented"),
    Case("GET", "/m/{media_id}/favourites", E(404, anon=303, owner=200, admin=200), target="private_commented"),
    Case("GET", "/api/v1/media/{media_id}/favourites", E(403, anon=401, owner_side=200, admin=200),
         target="commented"),
    Case("GET", "/api/v1/media/{media_id}/favourites", E(404, anon=401, owner_side=200, admin=200),
         target="private_commented"),
]
