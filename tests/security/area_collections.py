"""Collections in the authorization matrix: a public, an unlisted and a private collection of the
owner's; the owner's private item sits in the public one (and stays 404 to others); "other" is a
collaborator on the private one, with a private item of their own in it; a live, a revoked and an
expired share link to the private collection (the link holder is an anonymous visitor with ?share=).

Requests that would use up what they touch (delete, remove, invite, revoke) go to a "fresh"
collection: every request to one makes the next for the following role (``renewed``), so each role
is asked about the same situation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from kiln.accounts import services as accounts
from kiln.media.models import MediaEntry
from kiln.social import collections as service
from kiln.social import shares
from kiln.social.models import ShareLink
from tests.security.conftest import USERNAMES, World
from tests.security.matrix_kit import GET_LOGGED_IN, Case, E, body, form


def _user(session: Any, world: World, role: str) -> Any:
    return session.get(accounts.User, world.users[role])


def _fresh(world: World) -> None:
    """A public collection of the owner's with their public item, "other" helping, and a live link."""
    with world.rt.sessions() as session:
        owner = _user(session, world, "owner")
        collection = service.create(session, owner, "Fresh")
        service.add_item(session, owner, collection, session.get(MediaEntry, world.media["public"]))
        service.invite(session, owner, collection, USERNAMES["other"])
        link, _token = shares.make_share(session, owner, collection)
        session.commit()
        world.ids["fresh_collection"], world.ids["fresh_link"] = collection.id, link.id


def renewed(make: Callable[[World], dict[str, Any]] = lambda w: {}) -> Callable[[World], dict[str, Any]]:
    def send(world: World) -> dict[str, Any]:
        sent = make(world)
        _fresh(world)  # for the next role (this role's URL was filled before)
        return sent
    return send


def setup(world: World) -> None:
    world.media["others_private"] = world.upload("other", world.folder / "small.png", "Other's", visibility="private")
    world.media["others_public"] = world.upload("other", world.folder / "small.png", "Other's public")
    with world.rt.sessions() as session:
        owner, other = _user(session, world, "owner"), _user(session, world, "other")
        item = lambda media_id: session.get(MediaEntry, media_id)  # noqa: E731
        public = service.create(session, owner, "Public")
        for name in ("public", "private"):  # the private item is inside a public collection
            service.add_item(session, owner, public, item(world.media[name]))
        unlisted = service.create(session, owner, "Unlisted", visibility="unlisted")
        private = service.create(session, owner, "Private", visibility="private")
        service.add_item(session, owner, private, item(world.media["private"]))
        service.invite(session, owner, private, USERNAMES["other"])
        service.add_item(session, other, private, item(world.media["others_private"]))
        live = shares.make_share(session, owner, private, "live")[1]
        revoked_row, revoked = shares.make_share(session, owner, private, "revoked")
        shares.revoke_share(session, owner, private, revoked_row.id)
        expired_row, expired = shares.make_share(session, owner, private, "expired",
                                                  dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
        session.flush()
        session.get(ShareLink, expired_row.id).expires = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)  # type: ignore[union-attr]
        session.commit()
        world.ids.update(collection_id=public.id, col_public=public.id, col_unlisted=unlisted.id,
                         col_private=private.id, share_live=live, share_revoked=revoked, share_expired=expired,
                         link_id=revoked_row.id, collab=USERNAMES["other"])
    _fresh(world)


def share(key: str) -> Callable[[World], dict[str, Any]]:
    return lambda w: {"params": {"share": w.ids[key]}}


PRIVATE = {"collection_id": "col_private"}
UNLISTED = {"collection_id": "col_unlisted"}
FRESH = {"collection_id": "fresh_collection"}
# The private collection: its owner, admins and its collaborator ("other") see it; everyone else 404.
SEES_PRIVATE = E(404, owner_side=200, admin=200, other=200, token_read_other=200, token_write_other=200)
OWNER_POST = E(403, anon=401, owner=303)
API_OWNER = E(403, anon=401, read_tokens=403, owner=200, token_write_owner=200)

CASES: list[Case] = [
    # Pages
    Case("GET", "/c/{collection_id}", E(200), note="public, with a private item in it"),
    Case("GET", "/c/{collection_id}", E(200), ids=UNLISTED, note="unlisted"),
    Case("GET", "/c/{collection_id}", SEES_PRIVATE, ids=PRIVATE, note="private"),
    Case("GET", "/c/{collection_id}", E(200), ids=PRIVATE, send=share("share_live"), note="private, share link"),
    Case("GET", "/c/{collection_id}", E(404), ids=PRIVATE, send=share("share_revoked"), note="revoked link"),
    Case("GET", "/c/{collection_id}", E(404), ids=PRIVATE, send=share("share_expired"), note="expired link"),
    Case("GET", "/c/{collection_id}", E(404), send=share("share_revoked"), note="public, revoked link"),
    Case("GET", "/u/{username}/collections", E(200)),
    Case("GET", "/collections/new", GET_LOGGED_IN),
    Case("POST", "/collections/new", E(303, anon=401), send=form(title="Matrix")),
    Case("POST", "/collections/items", OWNER_POST, note="the owner's item into their public collection",
         send=lambda w: {"data": {"collection_id": str(w.ids["col_public"]), "media_id": str(w.media["public"])}}),
    Case("POST", "/collections/items", E(404, anon=401, owner=403, admin=403, other=303),
         note="other's item into the private collection they help with",
         send=lambda w: {"data": {"collection_id": str(w.ids["col_private"]),
                                  "media_id": str(w.media["others_public"])}}),
    Case("GET", "/c/{collection_id}/edit", E(403, anon=303, owner=200), note="public"),
    Case("GET", "/c/{collection_id}/edit", E(404, anon=303, owner=200, admin=403, other=403), ids=PRIVATE,
         note="private"),
    Case("POST", "/c/{collection_id}/edit", OWNER_POST, send=form(title="Public", visibility="public")),
    Case("POST", "/c/{collection_id}/order", OWNER_POST),
    Case("POST", "/c/{collection_id}/delete", E(403, anon=401, owner=303, admin=303), ids=FRESH,
         send=renewed(form(confirm="yes"))),
    Case("POST", "/c/{collection_id}/items/{media_id}/remove", E(403, anon=401, owner=303, admin=303), ids=FRESH,
         send=renewed()),
    Case("POST", "/c/{collection_id}/collaborators", OWNER_POST, ids=FRESH,
         send=renewed(form(username=USERNAMES["moderator"]))),
    Case("POST", "/c/{collection_id}/collaborators/{username}/remove", E(403, anon=401, owner=303, other=303),
         ids={**FRESH, "username": "collab"}, send=renewed(), note="the collaborator (who may leave)"),
    Case("POST", "/c/{collection_id}/shares", E(403, anon=401, owner=200), ids=UNLISTED),
    Case("POST", "/c/{collection_id}/shares/{link_id}/revoke", OWNER_POST, ids={**FRESH, "link_id": "fresh_link"},
         send=renewed()),
    # Feeds
    Case("GET", "/feeds/c/{collection_id}/atom", E(200), note="public"),
    Case("GET", "/feeds/c/{collection_id}/atom", SEES_PRIVATE, ids=PRIVATE, note="private"),
    Case("GET", "/feeds/c/{collection_id}/atom", E(200), ids=PRIVATE, send=share("share_live"), note="share link"),
    Case("GET", "/feeds/c/{collection_id}/atom", E(404), ids=PRIVATE, send=share("share_revoked"),
         note="revoked link"),
    # Items and their files seen through a link: the owner's private item opens; another's does not;
    # a dead link opens nothing, not even what anyone may see.
    Case("GET", "/m/{media_id}/r/{name}", E(200), target="private", send=share("share_live"), note="share link"),
    Case("GET", "/m/{media_id}/r/{name}", E(404, admin=200, other=200, token_read_other=200, token_write_other=200),
         target="others_private", send=share("share_live"), note="a collaborator's private item, share link"),
    Case("GET", "/m/{media_id}/r/{name}", E(404), target="private", send=share("share_revoked"), note="revoked"),
    Case("GET", "/m/{media_id}/r/{name}", E(404), target="public", send=share("share_expired"), note="expired"),
    Case("GET", "/u/{username}/m/{media_id}", E(200), target="private", send=share("share_live"), note="share link"),
    Case("GET", "/u/{username}/m/{media_id}", E(404), target="public", send=share("share_revoked"), note="revoked"),
    # The API
    Case("POST", "/api/v1/collections", E(201, anon=401, read_tokens=403), send=body(title="Matrix")),
    Case("GET", "/api/v1/collections/{collection_id}", E(200), note="public, with a private item in it"),
    Case("GET", "/api/v1/collections/{collection_id}", E(200), ids=UNLISTED, note="unlisted"),
    Case("GET", "/api/v1/collections/{collection_id}", SEES_PRIVATE, ids=PRIVATE, note="private"),
    Case("GET", "/api/v1/collections/{collection_id}", E(200), ids=PRIVATE, send=share("share_live"),
         note="share link"),
    Case("GET", "/api/v1/collections/{collection_id}", E(404), ids=PRIVATE, send=share("share_revoked"),
         note="revoked link"),
    Case("GET", "/api/v1/collections/{collection_id}", E(404), ids=PRIVATE, send=share("share_expired"),
         note="expired link"),
    Case("PATCH", "/api/v1/collections/{collection_id}", API_OWNER, send=body(title="Public")),
    Case("PATCH", "/api/v1/collections/{collection_id}", E(404, anon=401, read_tokens=403, owner=200,
                                                           token_write_owner=200, admin=403, other=403,
                                                           token_write_other=403),
         ids=PRIVATE, send=body(title="Private"), note="private"),
    Case("DELETE", "/api/v1/collections/{collection_id}", E(403, anon=401, read_tokens=403, owner=204, admin=204,
                                                            token_write_owner=204), ids=FRESH, send=renewed()),
    Case("POST", "/api/v1/collections/{collection_id}/items", E(403, anon=401, read_tokens=403, owner=201,
                                                                token_write_owner=201),
         send=lambda w: {"json": {"media_id": w.media["public"]}}),
    Case("DELETE", "/api/v1/collections/{collection_id}/items/{media_id}",
         E(403, anon=401, read_tokens=403, owner=204, admin=204, token_write_owner=204), ids=FRESH, send=renewed()),
    Case("PUT", "/api/v1/collections/{collection_id}/order", API_OWNER, send=body(media_ids=[])),
    Case("GET", "/api/v1/users/{username}/collections", E(200)),
    Case("GET", "/api/v1/collections/{collection_id}/collaborators", SEES_PRIVATE, ids=PRIVATE),
    Case("POST", "/api/v1/collections/{collection_id}/collaborators",
         E(403, anon=401, read_tokens=403, owner=201, token_write_owner=201), ids=FRESH,
         send=renewed(body(username=USERNAMES["moderator"]))),
    Case("DELETE", "/api/v1/collections/{collection_id}/collaborators/{username}",
         E(403, anon=401, read_tokens=403, owner=204, token_write_owner=204, other=204, token_write_other=204),
         ids={**FRESH, "username": "collab"}, send=renewed(), note="the collaborator (who may leave)"),
    Case("GET", "/api/v1/collections/{collection_id}/shares", E(403, anon=401, owner_side=200)),
    Case("POST", "/api/v1/collections/{collection_id}/shares",
         E(403, anon=401, read_tokens=403, owner=201, token_write_owner=201), ids=UNLISTED, send=body(label="m")),
    Case("DELETE", "/api/v1/collections/{collection_id}/shares/{link_id}",
         E(403, anon=401, read_tokens=403, owner=204, token_write_owner=204), ids={**FRESH, "link_id": "fresh_link"},
         send=renewed()),
]
