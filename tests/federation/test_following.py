"""A Kiln account follows an account elsewhere (the test peer, tests/federation/peer.py): the signed
Follow, the follow waiting for Accept, Reject, Undo on unfollow, blocked servers; then the peer's
posts: kept only from followed actors and when addressed to many, edited, deleted, their files copied
here (only pictures, videos and sounds recognised from their bytes), shown on the reader's timeline
and nowhere to visitors; and a comment on one of them, sent back as a reply."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from kiln.app import create_app
from kiln.federation.models import InboxActivity, RemoteAttachment, RemotePost
from kiln.social.models import Follow
from tests.conftest import BASE_URL, csrf, form_post, register
from tests.federation.peer import Peer, verify_with_apsig

pytestmark = pytest.mark.db
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"


@pytest.fixture
def bob(fed_rt) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    """A logged-in reader, bob (the ``fed`` client speaks as other servers do)."""
    with TestClient(create_app(fed_rt.settings, fed_rt), base_url=BASE_URL) as client:
        register(client, fed_rt.settings, "bob")
        yield client


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 6), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def send(fed: TestClient, peer: Peer, activity: dict[str, Any], path: str = "/inbox") -> None:
    body, headers = peer.signed(f"http://testserver{path}", activity)
    answer = fed.post(path, content=body, headers=headers)
    assert answer.status_code == 202, answer.text


def outcome(rt, activity_id: str) -> str:  # type: ignore[no-untyped-def]
    with rt.sessions() as session:
        return session.scalar(select(InboxActivity.outcome).where(InboxActivity.activity_uri == activity_id)) or ""


def follows_of_peer(rt) -> list[tuple[str | None, bool]]:  # type: ignore[no-untyped-def]
    with rt.sessions() as session:
        return [(f.followee_uri, f.accepted) for f in session.scalars(select(Follow).where(
            Follow.followee_uri.is_not(None)))]


def follow_peer(bob: TestClient, fed: TestClient, fed_rt, peer: Peer) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    answer = form_post(bob, "/following/remote", {"account": peer.actor_id}, page="/timeline")
    assert answer.status_code == 200, answer.text  # followed the redirect
    (sent,) = [r for r in peer.inbox if r.json["type"] == "Follow"]
    send(fed, peer, {"id": f"{peer.base}/accepts/1", "type": "Accept", "actor": peer.actor_id,
                     "object": sent.json["id"]})
    assert follows_of_peer(fed_rt) == [(peer.actor_id, True)]
    return sent.json


def note(peer: Peer, n: int, **extra: Any) -> dict[str, Any]:
    return {"id": f"{peer.base}/notes/{n}", "type": "Note", "attributedTo": peer.actor_id,
            "content": f"<p>Post {n}</p>", "published": f"2026-12-0{n % 9 + 1}T10:00:00Z",
            "to": [PUBLIC], "cc": [f"{peer.actor_id}/followers"], **extra}


def create(peer: Peer, obj: dict[str, Any], n: int | None = None, **extra: Any) -> dict[str, Any]:
    return {"id": f"{obj['id']}/activity{n or ''}", "type": "Create", "actor": peer.actor_id, "object": obj,
            "to": obj.get("to", []), "cc": obj.get("cc", []), **extra}


# Following ---------------------------------------------------------------------------------------

def test_following_an_account_elsewhere_waits_for_accept_and_undoes(fed, fed_rt, peer, bob):
    answer = form_post(bob, "/following/remote", {"account": peer.actor_id}, page="/timeline")
    assert answer.status_code == 200 and "once their server accepts" in answer.text
    (sent,) = peer.inbox
    assert sent.path == "/inbox" and sent.json["type"] == "Follow" and sent.json["object"] == peer.actor_id
    assert sent.json["actor"] == "http://testserver/u/bob"
    key = fed.get("/u/bob", headers={"Accept": "application/activity+json"}).json()["publicKey"]
    assert verify_with_apsig(sent, key["publicKeyPem"]) == key["id"]
    assert follows_of_peer(fed_rt) == [(peer.actor_id, False)]
    # Waiting: listed for bob (marked), not counted, not in the ActivityPub collection.
    assert "@rita@127.0.0.1" in bob.get("/u/bob/following").text
    assert fed.get("/u/bob/following", headers={"Accept": "application/activity+json"}).json()["totalItems"] == 0

    send(fed, peer, {"id": f"{peer.base}/accepts/1", "type": "Accept", "actor": peer.actor_id,
                     "object": sent.json})
    assert outcome(fed_rt, f"{peer.base}/accepts/1") == "follow_accepted"
    assert follows_of_peer(fed_rt) == [(peer.actor_id, True)]
    page = bob.get("/u/bob/following").text
    assert f'href="{peer.base}/@rita"' in page and "@rita@127.0.0.1" in page
    assert bob.get("/api/v1/users/bob").json()["counts"]["following"] == 1

    # Unfollowing sends Undo{Follow} naming the Follow sent.
    answer = form_post(bob, "/following/remote/remove", {"account": "@rita@127.0.0.1"}, page="/u/bob/following")
    assert answer.status_code == 200
    undo = peer.inbox[-1].json
    assert undo["type"] == "Undo" and undo["object"]["id"] == sent.json["id"]
    assert follows_of_peer(fed_rt) == []


def test_reject_removes_the_follow_and_others_cannot_answer_for_it(fed, fed_rt, peer, bob):
    from tests.federation import peer as peer_kit

    form_post(bob, "/following/remote", {"account": peer.actor_id}, page="/timeline")
    sent = peer.inbox[0].json
    with peer_kit.serve() as other:  # another server accepting a Follow sent to the peer: nothing changes
        send(fed, other, {"id": f"{other.base}/accepts/1", "type": "Accept", "actor": other.actor_id,
                          "object": sent})
        assert outcome(fed_rt, f"{other.base}/accepts/1") == "unknown_object"
    assert follows_of_peer(fed_rt) == [(peer.actor_id, False)]
    send(fed, peer, {"id": f"{peer.base}/rejects/1", "type": "Reject", "actor": peer.actor_id, "object": sent["id"]})
    assert outcome(fed_rt, f"{peer.base}/rejects/1") == "follow_rejected"
    assert follows_of_peer(fed_rt) == []


def test_the_api_follows_and_unfollows_and_blocked_servers_cannot_be_followed(fed, fed_rt, peer, bob):
    from kiln.federation import moderation

    token = csrf(bob, "/timeline")
    headers = {"X-CSRF-Token": token}
    answer = bob.put("/api/v1/following/remote", json={"account": peer.actor_id}, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"account": peer.actor_id, "following": False, "pending": True}
    answer = bob.delete("/api/v1/following/remote", params={"account": peer.actor_id}, headers=headers)
    assert answer.json()["following"] is False and peer.inbox[-1].json["type"] == "Undo"
    assert bob.delete("/api/v1/following/remote", params={"account": peer.actor_id},
                      headers=headers).status_code == 404
    with fed_rt.sessions() as session:
        moderation.block_domain(session, None, "127.0.0.1")
        session.commit()
    fetched = len(peer.fetches)
    answer = bob.put("/api/v1/following/remote", json={"account": peer.actor_id}, headers=headers)
    assert answer.status_code == 403 and answer.json()["error"]["code"] == "domain_blocked"
    assert len(peer.fetches) == fetched  # nothing asked of a blocked server
    answer = bob.put("/api/v1/following/remote", json={"account": "@nobody"}, headers=headers)
    assert answer.status_code == 422


# Their posts -------------------------------------------------------------------------------------

def test_posts_of_followed_accounts_are_kept_edited_and_deleted(fed, fed_rt, peer, bob):
    send(fed, peer, create(peer, note(peer, 1)))
    assert outcome(fed_rt, f"{peer.base}/notes/1/activity") == "not_followed"
    follow_peer(bob, fed, fed_rt, peer)

    hostile = note(peer, 2, content='<p onclick="x()">Hi <script>alert(1)</script><a href="javascript:x">y</a>'
                                    '<img src="https://tracker.example/p.gif"></p>', summary="spoilers")
    send(fed, peer, create(peer, hostile))
    direct = note(peer, 3, to=["http://testserver/u/bob"], cc=[])
    send(fed, peer, create(peer, direct))
    send(fed, peer, create(peer, note(peer, 4, content="<p>" + "x" * 210_000 + "</p>")))
    assert outcome(fed_rt, f"{peer.base}/notes/4/activity") == "too_long"
    assert outcome(fed_rt, f"{peer.base}/notes/2/activity") == "post_kept"
    assert outcome(fed_rt, f"{peer.base}/notes/3/activity") == "direct"
    with fed_rt.sessions() as session:
        (kept,) = session.scalars(select(RemotePost))
        assert "script" not in kept.content and "onclick" not in kept.content and "javascript" not in kept.content
        assert "<img" not in kept.content and kept.summary == "spoilers" and kept.sensitive

    page = bob.get("/timeline").text
    assert "Hi " in page and "<script>" not in page and "spoilers" in page
    assert fed.get(f"/remote/posts/{kept.id}", follow_redirects=False).status_code == 303  # visitors: log in

    send(fed, peer, {"id": f"{peer.base}/updates/2", "type": "Update", "actor": peer.actor_id,
                     "object": note(peer, 2, content="<p>Edited</p>")})
    assert outcome(fed_rt, f"{peer.base}/updates/2") == "post_edited"
    assert "Edited" in bob.get(f"/remote/posts/{kept.id}").text
    send(fed, peer, {"id": f"{peer.base}/deletes/2", "type": "Delete", "actor": peer.actor_id,
                     "object": {"id": f"{peer.base}/notes/2", "type": "Tombstone"}})
    assert outcome(fed_rt, f"{peer.base}/deletes/2") == "post_deleted"
    with fed_rt.sessions() as session:
        assert session.scalar(select(RemotePost.id)) is None


def test_files_are_copied_recognised_served_to_readers_only(fed, fed_rt, peer, bob):
    follow_peer(bob, fed, fed_rt, peer)
    png = png_bytes()
    peer.pages["/p.png"] = (200, {"Content-Type": "image/png"}, png)
    peer.pages["/fake.png"] = (200, {"Content-Type": "image/png"}, b"<html><script>alert(1)</script></html>")
    peer.pages["/x.svg"] = (200, {"Content-Type": "image/svg+xml"}, b'<svg xmlns="http://www.w3.org/2000/svg"/>')
    peer.pages["/big.png"] = (200, {"Content-Type": "image/png"}, png + b"\0" * 2048)
    attachments = [{"type": "Document", "mediaType": "image/png", "url": f"{peer.base}/p.png", "name": "A red box",
                    "width": 8, "height": 6, "blurhash": "LEHV6nWB2yk8pyo0adR*.7kCMdnj"},
                   {"type": "Document", "mediaType": "image/png", "url": f"{peer.base}/fake.png"},
                   {"type": "Image", "mediaType": "image/svg+xml", "url": f"{peer.base}/x.svg"},
                   {"type": "Image", "url": "file:///etc/passwd"},
                   {"type": "Image", "mediaType": "image/png", "url": f"{peer.base}/big.png"},
                   {"type": "Image", "mediaType": "image/png", "url": f"{peer.base}/missing.png"},
                   {"type": "Image", "mediaType": "image/png", "url": f"{peer.base}/busy.png"}]
    peer.pages["/busy.png"] = (503, {"Content-Type": "text/plain"}, b"later")
    fed_rt.settings.federation.max_attachment_bytes = len(png) + 1024
    send(fed, peer, create(peer, note(peer, 5, attachment=attachments)))
    with fed_rt.sessions() as session:
        rows = list(session.scalars(select(RemoteAttachment).order_by(RemoteAttachment.position)))
    # Copied; not a picture (HTML named .png); SVG; too large; 404: refused for good; 503: asked again later.
    assert [(r.state, r.stored_type) for r in rows] == [("cached", "image/png"), ("refused", ""), ("refused", ""),
                                                        ("refused", ""), ("refused", ""), ("waiting", "")]
    assert "larger" in rows[3].error
    page = bob.get("/timeline").text
    assert f'<img src="/remote/files/{rows[0].id}" alt="A red box"' in page
    assert "View on 127.0.0.1" in page  # the files not copied are links
    served = bob.get(f"/remote/files/{rows[0].id}")
    assert served.status_code == 200 and served.content == png
    assert served.headers["content-type"] == "image/png" and served.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in served.headers["content-security-policy"]
    assert fed.get(f"/remote/files/{rows[0].id}").status_code == 404  # visitors: no mirror
    assert bob.get(f"/remote/files/{rows[1].id}").status_code == 404
    from kiln.media import garbage

    report = garbage.gc(fed_rt.sessions, fed_rt.stores, dry_run=True, grace=0)
    assert rows[0].stored_key not in report.unreferenced["originals"]  # `kiln gc` keeps the copies
    api = bob.get("/api/v1/timeline").json()
    (post,) = api["remote_posts"]
    assert api["order"] == [f"remote_post:{post['id']}"]
    assert post["attachments"][0]["url"] == f"http://testserver/remote/files/{rows[0].id}"


def test_the_timeline_interleaves_and_pages_both_sources_in_constant_queries(fed, fed_rt, peer, bob, tmp_path):
    import datetime as dt

    from sqlalchemy import event, update

    from kiln.accounts.models import User
    from kiln.media.models import MediaEntry
    from kiln.social import timeline
    from tests.federation.test_publish import upload

    follow_peer(bob, fed, fed_rt, peer)
    form_post(bob, "/u/alice/follow", {}, page="/u/alice")
    for n in range(1, 6):  # published on the 2nd to the 6th of December
        send(fed, peer, create(peer, note(peer, n)))
    local_id = upload(fed_rt, tmp_path, "Sunset")
    with fed_rt.sessions() as session:  # between the 3rd and the 4th post
        session.execute(update(MediaEntry).where(MediaEntry.id == local_id)
                        .values(published=dt.datetime(2026, 12, 4, 12, tzinfo=dt.UTC)))
        session.commit()
    statements: list[str] = []
    with fed_rt.sessions() as session:
        reader = session.scalar(select(User).where(User.username == "bob"))
        seen, cursor, counts = [], None, []
        def note_statement(*args: Any) -> None:
            statements.append(args[2])

        event.listen(fed_rt.engine, "before_cursor_execute", note_statement)
        try:
            while True:
                before = len(statements)
                page = timeline.page(session, reader, cursor, 2)
                counts.append(len(statements) - before)
                seen += [e.post.uri.rsplit("/", 1)[-1] if e.post else f"item {e.media_id}" for e in page.entries]
                cursor = page.next_cursor
                if cursor is None:
                    break
        finally:
            event.remove(fed_rt.engine, "before_cursor_execute", note_statement)
    assert seen == ["5", "4", f"item {local_id}", "3", "2", "1"]
    assert len(set(counts[:-1])) == 1 and max(counts) <= 6, counts  # the same few queries on every page
    text = bob.get("/timeline").text
    assert "Post 5" in text and f"/m/{local_id}" in text


def test_an_actor_deleted_or_its_server_blocked_takes_its_posts_and_follows(fed, fed_rt, peer, bob):
    from kiln.federation import moderation

    follow_peer(bob, fed, fed_rt, peer)
    send(fed, peer, create(peer, note(peer, 7)))
    assert "Post 7" in bob.get("/timeline").text
    with fed_rt.sessions() as session:  # bob blocks the account: its posts leave his timeline
        from kiln.accounts.models import User
        from kiln.federation.models import RemoteActor

        reader = session.scalar(select(User).where(User.username == "bob"))
        rita = session.scalar(select(RemoteActor).where(RemoteActor.uri == peer.actor_id))
        moderation.block_remote(session, reader, rita)
        session.commit()
    assert "Post 7" not in bob.get("/timeline").text
    send(fed, peer, {"id": f"{peer.base}/deletes/actor", "type": "Delete", "actor": peer.actor_id,
                     "object": peer.actor_id})
    assert outcome(fed_rt, f"{peer.base}/deletes/actor") == "actor_deleted"
    with fed_rt.sessions() as session:
        assert session.scalar(select(RemotePost.id)) is None
    assert follows_of_peer(fed_rt) == []

    peer.inbox.clear()
    follow_peer(bob, fed, fed_rt, peer)
    send(fed, peer, create(peer, note(peer, 8)))
    with fed_rt.sessions() as session:
        moderation.block_domain(session, None, "127.0.0.1")
        session.commit()
        assert session.scalar(select(RemotePost.id)) is None
    assert follows_of_peer(fed_rt) == []
    assert "Post 8" not in bob.get("/timeline").text


def test_a_comment_on_a_post_goes_back_as_a_reply(fed, fed_rt, peer, bob):
    follow_peer(bob, fed, fed_rt, peer)
    send(fed, peer, create(peer, note(peer, 6)))
    with fed_rt.sessions() as session:
        post_id = session.scalar(select(RemotePost.id))
    answer = form_post(bob, f"/remote/posts/{post_id}/answers", {"body": "Lovely *light*"},
                       page=f"/remote/posts/{post_id}")
    assert answer.status_code == 200 and "Lovely" in answer.text
    sent = peer.inbox[-1]
    assert sent.path == "/inbox" and sent.json["type"] == "Create"
    reply = sent.json["object"]
    assert reply["inReplyTo"] == f"{peer.base}/notes/6" and "<em>light</em>" in reply["content"]
    assert reply["attributedTo"] == "http://testserver/u/bob"
    assert fed.post(f"/remote/posts/{post_id}/answers", data={"body": "x"}).status_code in (401, 403)

    # A favourite is a Like; taking it back, Undo{Like}; again, nothing more is sent.
    form_post(bob, f"/remote/posts/{post_id}/favourite", {"favourite": "1"}, page=f"/remote/posts/{post_id}")
    like = peer.inbox[-1].json
    assert like["type"] == "Like" and like["object"] == f"{peer.base}/notes/6"
    assert 'aria-pressed="true"' in bob.get("/timeline").text
    sent = len(peer.inbox)
    form_post(bob, f"/remote/posts/{post_id}/favourite", {"favourite": "1"}, page=f"/remote/posts/{post_id}")
    assert len(peer.inbox) == sent
    form_post(bob, f"/remote/posts/{post_id}/favourite", {"favourite": "0"}, page=f"/remote/posts/{post_id}")
    undo = peer.inbox[-1].json
    assert undo["type"] == "Undo" and undo["object"]["id"] == like["id"]


def test_the_cli_follows_and_unfollows(fed, fed_rt, peer, kiln, monkeypatch):
    import json

    monkeypatch.setenv("KILN_FEDERATION__ALLOW_PRIVATE_ADDRESSES", "true")
    assert json.loads(kiln("federation", "follow", "alice", peer.actor_id, "--json").output) == {
        "account": peer.actor_id, "pending": True}
    assert follows_of_peer(fed_rt) == [(peer.actor_id, False)]
    assert "no longer follows" in kiln("federation", "unfollow", "alice", peer.actor_id).output
    assert follows_of_peer(fed_rt) == []
    assert kiln("federation", "unfollow", "alice", peer.actor_id, ok=False).exit_code == 1


def test_a_deleted_account_tells_the_servers_of_those_it_followed(fed, fed_rt, peer, bob):
    from kiln.accounts import leaving
    from kiln.accounts.models import User

    follow_peer(bob, fed, fed_rt, peer)
    with fed_rt.sessions() as session:
        leaving.delete_account(fed_rt, session, None, session.scalar(select(User).where(User.username == "bob")),
                               via="cli")
    gone = peer.inbox[-1].json
    assert gone["type"] == "Delete" and gone["object"] == "http://testserver/u/bob"
    assert follows_of_peer(fed_rt) == []
