"""ActivityPub's routes in the authorization matrix (kiln.web.federation). Everything here is for other
servers: every role, logged in or not, gets the same answer. Actors and WebFinger know only accounts
others may find (a banned one is 404 for everyone), notes only public or unlisted, finished items, albums
only public ones; the inboxes take only signed requests, so a login cookie or an API token is no way in
(401 with a sentence for all). The signed paths are tests/federation/test_follow.py's and
test_publish.py's. The deliveries page is for administrators only."""

from __future__ import annotations

from tests.security.conftest import USERNAMES, World
from tests.security.matrix_kit import GET_LOGGED_IN, Case, E


def setup(world: World) -> None:
    world.ids["ap_collection"] = "followers"
    world.ids["ap_banned"] = USERNAMES["banned"]
    world.ids["no_follow_request"] = 999_999
    _remote_post(world)


def _remote_post(world: World) -> None:
    """A post kept from an account followed elsewhere, with its picture copied here."""
    import io

    from sqlalchemy import select

    from kiln.federation.models import DomainBlock, RemoteActor, RemoteAttachment, RemotePost

    key = ["remote", "1", "1-matrix.png"]
    world.rt.stores.by_name("originals").save(key, io.BytesIO((world.folder / "small.png").read_bytes()))
    with world.rt.sessions() as session:
        actor = RemoteActor(uri="https://remote.example/actor", key_id="https://remote.example/actor#key",
                            public_key_pem="", inbox="https://remote.example/inbox", username="rita")
        post = RemotePost(actor=actor, uri="https://remote.example/notes/1", content="<p>Hello</p>")
        post.attachments = [RemoteAttachment(kind="image", media_type="image/png", url="https://remote.example/p.png",
                                             state="cached", stored_key=key, stored_type="image/png")]
        session.add(post)
        # A post from a server blocked since: nothing is sent there (a favourite is refused).
        shunned = RemoteActor(uri="https://shunned.example/actor", key_id="https://shunned.example/actor#key",
                              public_key_pem="", inbox="https://shunned.example/inbox", username="sam")
        session.add(RemotePost(actor=shunned, uri="https://shunned.example/notes/1", content="<p>Hi</p>"))
        session.add(DomainBlock(domain="shunned.example"))
        session.commit()
        world.ids["post_id"], world.ids["attachment_id"] = post.id, post.attachments[0].id
        world.ids["shunned_post_id"] = session.scalar(select(RemotePost.id).where(RemotePost.actor_id == shunned.id))


def _resource(name: str) -> dict[str, object]:
    return {"params": {"resource": f"acct:{name}@testserver"}}


# Routes for other servers: answered without looking at a login (tests/security/test_blocked.py skips them).
FOR_SERVERS = ("/.well-known/webfinger", "/.well-known/nodeinfo", "/nodeinfo/2.1", "/actor", "/ap/u/{username}",
               "/ap/u/{username}/{collection}", "/ap/u/{username}/m/{media_id}", "/ap/c/{collection_id}",
               "/u/{username}/inbox", "/inbox")
ACTIVITY = {"type": "Follow", "actor": "https://remote.example/actor", "object": "http://testserver/u/olivia"}
CASES: list[Case] = [
    Case("GET", "/.well-known/webfinger", E(200), send=lambda w: _resource(USERNAMES["owner"]), note="an account"),
    Case("GET", "/.well-known/webfinger", E(404), send=lambda w: _resource(USERNAMES["banned"]),
         note="a banned account"),
    Case("GET", "/.well-known/webfinger", E(400), send=lambda w: {"params": {"resource": "olivia"}},
         note="a malformed resource"),
    Case("GET", "/.well-known/nodeinfo", E(200)),
    Case("GET", "/nodeinfo/2.1", E(200)),
    Case("GET", "/actor", E(200), note="the site's actor, its public key only"),
    Case("GET", "/ap/u/{username}", E(200), note="the owner's actor"),
    Case("GET", "/ap/u/{username}", E(404), ids={"username": "ap_banned"}, note="a banned account's actor"),
    Case("GET", "/ap/u/{username}/{collection}", E(200), ids={"collection": "ap_collection"}),
    Case("GET", "/ap/u/{username}/m/{media_id}", E(200), note="a public item's Note"),
    Case("GET", "/ap/u/{username}/m/{media_id}", E(404), target="private", note="never, not even to its owner"),
    Case("GET", "/ap/u/{username}/m/{media_id}", E(200), target="unlisted", note="sent to followers, cc Public"),
    Case("GET", "/ap/u/{username}/m/{media_id}", E(404), target="failed"),
    # Albums (area_collections' public, unlisted and private ones): only a public album, and in it only
    # the items whose Note is served (the public one, not the owner's private one).
    Case("GET", "/ap/c/{collection_id}", E(200), ids={"collection_id": "col_public"}, note="a public album"),
    Case("GET", "/ap/c/{collection_id}", E(404), ids={"collection_id": "col_unlisted"},
         note="an unlisted album: never to other servers"),
    Case("GET", "/ap/c/{collection_id}", E(404), ids={"collection_id": "col_private"},
         note="a private album, not even to its owner or collaborator"),
    Case("GET", "/ap/c/{collection_id}", E(404), ids={"collection_id": "col_private"},
         send=lambda w: {"params": {"share": w.ids["share_live"], "page": "1"}},
         note="a private album with a live share link: links are for people"),
    Case("POST", "/u/{username}/inbox", E(401), send=lambda w: {"json": ACTIVITY}, note="unsigned, whoever asks"),
    Case("POST", "/inbox", E(401), send=lambda w: {"json": ACTIVITY}, note="unsigned, whoever asks"),
    Case("POST", "/inbox", E(400), send=lambda w: {"content": b"{not json"}, note="not JSON"),
    # The administrators' page of deliveries (kiln.web.admin_federation): administrators only.
    Case("GET", "/admin/federation", E(403, anon=303, admin=200)),
    Case("POST", "/admin/federation/retry", E(403, anon=401, admin=303), send=lambda w: {"data": {"host": "x.example"}},
         note="administrators only"),
    Case("POST", "/admin/federation/block", E(403, anon=401, admin=303),
         send=lambda w: {"data": {"domain": "blocked.example", "kind": "silence"}}, note="administrators only"),
    Case("POST", "/admin/federation/unblock", E(403, anon=401, admin=404),
         send=lambda w: {"data": {"domain": "never-blocked.example"}}, note="not blocked: 404 for administrators"),
    # People's blocks of accounts elsewhere (kiln.web.blocks): only accounts Kiln has met.
    Case("POST", "/account/blocks/remote", E(404, anon=401),
         send=lambda w: {"data": {"account": "@nobody@remote.example"}}, note="an account never met"),
    Case("POST", "/account/blocks/remote/remove", E(404, anon=401),
         send=lambda w: {"data": {"account": "https://remote.example/nobody"}}, note="an account never met"),
    # Follow requests from other servers (kiln.web.follow_requests): one's own only.
    Case("GET", "/account/follow-requests", GET_LOGGED_IN),
    Case("POST", "/account/follow-requests/setting", E(303, anon=401), send=lambda w: {"data": {"approve": ""}}),
    Case("POST", "/account/follow-requests/{request_id}/approve", E(404, anon=401),
         ids={"request_id": "no_follow_request"}, note="no such request"),
    Case("POST", "/account/follow-requests/{request_id}/decline", E(404, anon=401),
         ids={"request_id": "no_follow_request"}, note="no such request"),
    # Following accounts elsewhere, their posts and Kiln's copies of their files (kiln.web.following,
    # kiln.web.remote_posts): logged-in readers only, never a public mirror.
    Case("POST", "/following/remote", E(303, anon=401), send=lambda w: {"data": {"account": "@nobody"}},
         note="an account that cannot be found: said on the page"),
    Case("POST", "/following/remote/remove", E(404, anon=401), send=lambda w: {"data": {"account": "@no@x.example"}},
         note="not followed"),
    Case("PUT", "/api/v1/following/remote", E(422, anon=401, read_tokens=403, unverified=403),
         send=lambda w: {"json": {"account": "@nobody"}}, note="an account that cannot be found"),
    Case("DELETE", "/api/v1/following/remote", E(404, anon=401, read_tokens=403),
         send=lambda w: {"params": {"account": "@no@x.example"}}, note="not followed"),
    Case("GET", "/remote/posts/{post_id}", GET_LOGGED_IN),
    Case("POST", "/remote/posts/{post_id}/answers", E(303, anon=401), send=lambda w: {"data": {"body": " "}},
         note="an empty comment: refused on the page, nothing sent"),
    Case("GET", "/remote/files/{attachment_id}", E(200, anon=404)),
    Case("POST", "/api/v1/remote/posts/{post_id}/comments", E(422, anon=401, read_tokens=403),
         send=lambda w: {"json": {"body": ""}}, note="an empty comment: nothing sent"),
    Case("POST", "/remote/posts/{post_id}/favourite", E(303, anon=401), send=lambda w: {"data": {"favourite": "0"}},
         note="taking back a favourite never given: nothing sent"),
    Case("PUT", "/api/v1/remote/posts/{post_id}/favourite", E(403, anon=401, read_tokens=403),
         ids={"post_id": "shunned_post_id"}, note="its server is blocked: refused, nothing sent"),
    Case("DELETE", "/api/v1/remote/posts/{post_id}/favourite", E(200, anon=401, read_tokens=403),
         note="never favourited: nothing sent"),
]
