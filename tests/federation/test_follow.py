"""Following a Kiln account from another server, end to end: a remote actor served over real HTTP on
127.0.0.1 (tests/federation/peer.py, signing with apsig) finds alice by WebFinger, reads her actor,
posts a signed Follow; Kiln fetches the remote actor, verifies, answers 202, records the follow and
delivers a signed Accept to the peer's inbox, which the peer verifies with alice's published key.
Then Undo removes the follower. Also: what the inboxes refuse, and a rotated remote key."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select, update

from kiln.federation import signatures
from kiln.federation.models import InboxActivity, RemoteActor
from kiln.social.models import Follow
from tests.federation.conftest import AP
from tests.federation.peer import Peer, Received, verify_with_apsig

pytestmark = pytest.mark.db
INBOX = "http://testserver/u/alice/inbox"
ALICE = "http://testserver/u/alice"


def follow_activity(peer: Peer, n: int = 1) -> dict[str, object]:
    return {"@context": "https://www.w3.org/ns/activitystreams", "id": f"{peer.base}/follows/{n}",
            "type": "Follow", "actor": peer.actor_id, "object": ALICE}


def post(client, peer: Peer, activity: dict[str, object], path: str = "/u/alice/inbox", **kw):  # type: ignore[no-untyped-def]
    body, headers = peer.signed(f"http://testserver{path}", activity, **kw)
    return client.post(path, content=body, headers=headers)


def remote_followers(rt) -> list[str]:  # type: ignore[no-untyped-def]
    with rt.sessions() as session:
        return list(session.scalars(select(Follow.follower_uri).where(Follow.follower_uri.is_not(None))))


def test_a_remote_actor_follows_and_unfollows(fed, fed_rt, peer):
    # The peer finds alice as a Mastodon server would.
    jrd = fed.get("/.well-known/webfinger", params={"resource": "acct:alice@testserver"}).json()
    actor_url = next(link["href"] for link in jrd["links"] if link["rel"] == "self")
    actor = fed.get(actor_url.removeprefix("http://testserver"), headers={"Accept": AP}).json()
    assert actor["inbox"] == INBOX

    answer = post(fed, peer, follow_activity(peer))
    assert answer.status_code == 202, answer.text
    assert remote_followers(fed_rt) == [peer.actor_id]
    assert peer.fetches == ["/actor"]  # Kiln fetched the key once

    # The Accept reached the peer's inbox, signed with alice's published key (checked by apsig and by Kiln).
    (accept,) = peer.inbox
    assert accept.path == "/inbox" and accept.json["type"] == "Accept" and accept.json["actor"] == ALICE
    assert accept.json["object"]["id"] == f"{peer.base}/follows/1"
    pem = actor["publicKey"]["publicKeyPem"]
    assert verify_with_apsig(accept, pem) == actor["publicKey"]["id"]
    _verify_with_kiln(accept, pem)

    # Remote followers appear in the followers list, named as people write them elsewhere.
    page = fed.get("/u/alice/followers").text
    assert "@rita@127.0.0.1" in page and f"{peer.base}/@rita" in page
    listed = fed.get("/api/v1/users/alice/followers").json()["items"]
    assert listed == [{"username": None, "display_name": "@rita@127.0.0.1", "url": peer.actor_id, "avatar": None}]
    assert fed.get("/u/alice/followers", headers={"Accept": AP}).json()["totalItems"] == 1

    # Following again keeps one row and answers again (a server that missed the Accept asks again).
    assert post(fed, peer, follow_activity(peer, 2)).status_code == 202
    assert remote_followers(fed_rt) == [peer.actor_id] and len(peer.inbox) == 2

    # Undo by id (the shared inbox this time), then by the embedded Follow.
    undo = {"id": f"{peer.base}/undo/1", "type": "Undo", "actor": peer.actor_id, "object": f"{peer.base}/follows/2"}
    assert post(fed, peer, undo, path="/inbox").status_code == 202
    assert remote_followers(fed_rt) == []
    assert post(fed, peer, follow_activity(peer, 3)).status_code == 202
    undo = {"id": f"{peer.base}/undo/2", "type": "Undo", "actor": peer.actor_id, "object": follow_activity(peer, 3)}
    assert post(fed, peer, undo).status_code == 202
    assert remote_followers(fed_rt) == []
    assert peer.fetches == ["/actor"]  # the key stayed cached throughout


def _verify_with_kiln(received: Received, pem: str) -> None:
    request = signatures.SignedRequest(received.method, received.path, received.headers, received.body)
    sig = signatures.parse_cavage(request.headers)
    signatures.verify_cavage(request, sig, signatures.load_public(pem), now=dt.datetime.now(dt.UTC),
                             max_age=3600, max_future=300)


def test_kiln_signs_its_fetches_as_the_site_actor(fed, fed_rt, peer):
    # A server with authorized fetch: an unsigned read of its actor is 401. Kiln's key fetch is signed as
    # the site's own actor, whose key anyone can read, unsigned, at /actor.
    peer.signed_reads_only = True
    assert post(fed, peer, follow_activity(peer)).status_code == 202
    site = fed.get("/actor", headers={"Accept": AP})
    assert site.status_code == 200 and site.headers["content-type"].startswith(AP)
    document = site.json()
    assert document["type"] == "Application" and document["id"] == "http://testserver/actor"
    assert document["inbox"] == "http://testserver/inbox" and "PRIVATE" not in site.text
    (read,) = peer.reads
    assert read.path == "/actor" and 'headers="(request-target) host date"' in read.headers["signature"]
    pem = document["publicKey"]["publicKeyPem"]
    assert verify_with_apsig(read, pem) == "http://testserver/actor#main-key"
    _verify_with_kiln(read, pem)
    # One key for the site, kept: a second process signs with the same one. A browser gets the home page.
    from kiln.federation import instance

    with fed_rt.sessions() as session:
        assert instance.key_pair(session).public_pem == pem
    browser = fed.get("/actor", headers={"Accept": "text/html"}, follow_redirects=False)
    assert browser.headers["location"] == "/" and site.headers["vary"] == browser.headers["vary"] == "Accept"


def test_a_key_on_another_server_than_the_actor_is_refused_before_any_fetch(fed, peer):
    # Only a key on the actor's own server can verify (and only that server passed the block check):
    # Kiln does not send its signed fetch to wherever a stranger's keyId points.
    activity = {**follow_activity(peer), "actor": "https://elsewhere.example/users/mallory"}
    answer = post(fed, peer, activity)
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "wrong_signer"
    assert "not on its actor's server" in answer.json()["error"]["message"] and peer.reads == []


def test_other_activities_are_accepted_and_ignored(fed, fed_rt, peer):
    move = {"id": f"{peer.base}/moves/1", "type": "Move", "actor": peer.actor_id, "object": ALICE}
    assert post(fed, peer, move, path="/inbox").status_code == 202
    with fed_rt.sessions() as session:
        row = session.scalar(select(InboxActivity))
        assert row is not None and row.type == "Move" and row.outcome == "ignored"
    assert peer.inbox == []


def test_a_rotated_remote_key_is_fetched_again_once(fed, fed_rt, peer):
    assert post(fed, peer, follow_activity(peer)).status_code == 202
    peer.rotate_key()
    # Kept a moment ago: a failed signature does not fetch again (a flood of forgeries is not a flood of fetches).
    refused = post(fed, peer, follow_activity(peer, 2))
    assert refused.status_code == 401 and peer.fetches == ["/actor"]
    with fed_rt.sessions() as session:
        session.execute(update(RemoteActor).values(fetched=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)))
        session.commit()
    assert post(fed, peer, follow_activity(peer, 3)).status_code == 202
    assert peer.fetches == ["/actor", "/actor"]
    # A forged signature (a key that is not the actor's) is refused after that one fetch, with a sentence.
    with fed_rt.sessions() as session:
        session.execute(update(RemoteActor).values(fetched=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)))
        session.commit()
    forged = post(fed, peer, follow_activity(peer, 4), key=signatures.new_private_key())
    assert forged.status_code == 401 and "does not match" in forged.json()["error"]["message"]
    assert len(peer.fetches) == 3


def test_inbox_refusals_are_4xx_with_a_sentence(fed, fed_rt, peer):
    follow = follow_activity(peer)
    cases = []
    cases.append(("unsigned", fed.post("/u/alice/inbox", content=json.dumps(follow),
                                       headers={"Content-Type": AP}), 401))
    body, headers = peer.signed(INBOX, follow)
    cases.append(("tampered body", fed.post("/u/alice/inbox", content=body.replace(b"Follow", b"Fallow"),
                                            headers=headers), 401))
    cases.append(("another inbox", fed.post("/inbox", content=body, headers=headers), 401))
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=13)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    cases.append(("replayed date", post(fed, peer, follow, Date=old), 401))
    pretender = {**follow, "actor": "http://127.0.0.1:9/someone-else"}
    cases.append(("another actor", post(fed, peer, pretender), 401))
    cases.append(("not JSON", fed.post("/u/alice/inbox", content=b"{nope", headers={"Content-Type": AP}), 400))
    cases.append(("a list", fed.post("/inbox", content=b"[1, 2]", headers={"Content-Type": AP}), 400))
    cases.append(("no actor", fed.post("/inbox", content=b'{"type": "Follow"}', headers={"Content-Type": AP}), 400))
    nested = b"[" * 100_000 + b"]" * 100_000
    cases.append(("deeply nested", fed.post("/inbox", content=nested, headers={"Content-Type": AP}), (400, 413)))
    huge = json.dumps({**follow, "padding": "x" * 300_000}).encode()
    cases.append(("oversized", fed.post("/inbox", content=huge, headers={"Content-Type": AP}), 413))
    cases.append(("nobody's inbox", post(fed, peer, follow, path="/u/nobody/inbox"), 404))
    wrong = []
    for name, answer, status in cases:
        expected = status if isinstance(status, tuple) else (status,)
        if answer.status_code not in expected or not answer.json()["error"]["message"]:
            wrong.append(f"{name}: {answer.status_code} {answer.text[:200]}")
    assert not wrong, "\n".join(wrong)
    assert remote_followers(fed_rt) == []


def test_an_rfc9421_signed_follow_is_accepted(fed, fed_rt, peer):
    from dataclasses import dataclass

    from http_message_signatures import HTTPMessageSigner, algorithms
    from http_message_signatures.resolvers import HTTPSignatureKeyResolver
    from http_message_signatures.structures import CaseInsensitiveDict

    class Keys(HTTPSignatureKeyResolver):
        def resolve_private_key(self, key_id: str):  # type: ignore[no-untyped-def]
            return peer.key

    @dataclass
    class Message:
        method: str
        url: str
        headers: CaseInsensitiveDict

    body = json.dumps(follow_activity(peer)).encode()
    message = Message("POST", INBOX, CaseInsensitiveDict({"Content-Type": AP}))
    HTTPMessageSigner(signature_algorithm=algorithms.RSA_V1_5_SHA256, key_resolver=Keys()).sign(
        message, key_id=peer.key_id, covered_component_ids=("@method", "@target-uri", "content-digest"), body=body)
    answer = fed.post("/u/alice/inbox", content=body, headers=dict(message.headers))
    assert answer.status_code == 202, answer.text
    assert remote_followers(fed_rt) == [peer.actor_id]
    tampered = fed.post("/u/alice/inbox", content=body.replace(b"Follow", b"Fallow"), headers=dict(message.headers))
    assert tampered.status_code == 401


def test_an_account_that_approves_followers_answers_each_request(fed, fed_rt, peer):
    from kiln.accounts.models import User
    from kiln.federation.models import FollowRequest
    from kiln.social.models import Notification
    from tests.social_kit import log_in

    with fed_rt.sessions() as session:
        alice = session.scalars(select(User).where(User.username == "alice")).one()
        alice_id = alice.id
    token = log_in(fed, fed_rt, alice_id)
    assert fed.post("/account/follow-requests/setting", data={"approve": "on", "csrf_token": token},
                    follow_redirects=False).status_code == 303
    assert fed.get("/u/alice", headers={"Accept": AP}).json()["manuallyApprovesFollowers"] is True
    fed.cookies.clear()

    assert post(fed, peer, follow_activity(peer)).status_code == 202
    assert remote_followers(fed_rt) == [] and peer.inbox == []  # waiting: no Accept yet
    with fed_rt.sessions() as session:
        (request,) = session.scalars(select(FollowRequest)).all()
        request_id = request.id
        assert session.scalars(select(Notification.type)).all() == ["follow_request"]
    token = log_in(fed, fed_rt, alice_id)
    page = fed.get("/account/follow-requests").text
    assert "@rita@127.0.0.1" in page and f"/account/follow-requests/{request_id}/approve" in page
    assert fed.post(f"/account/follow-requests/{request_id}/approve", data={"csrf_token": token},
                    follow_redirects=False).status_code == 303
    assert remote_followers(fed_rt) == [peer.actor_id]
    (accept,) = peer.inbox
    assert accept.json["type"] == "Accept" and accept.json["object"]["id"] == f"{peer.base}/follows/1"
    assert fed.post(f"/account/follow-requests/{request_id}/approve", data={"csrf_token": token}).status_code == 404

    # A second follower elsewhere is declined: a Reject, no follow; an Undo withdraws a waiting request.
    fed.cookies.clear()
    undo = {"id": f"{peer.base}/undo/9", "type": "Undo", "actor": peer.actor_id, "object": follow_activity(peer)}
    assert post(fed, peer, undo).status_code == 202
    assert remote_followers(fed_rt) == []
    assert post(fed, peer, follow_activity(peer, 2)).status_code == 202
    with fed_rt.sessions() as session:
        request_id = session.scalars(select(FollowRequest.id)).one()
    token = log_in(fed, fed_rt, alice_id)
    assert fed.post(f"/account/follow-requests/{request_id}/decline", data={"csrf_token": token},
                    follow_redirects=False).status_code == 303
    assert peer.inbox[-1].json["type"] == "Reject" and remote_followers(fed_rt) == []
    fed.cookies.clear()
    assert post(fed, peer, follow_activity(peer, 3)).status_code == 202
    undo = {"id": f"{peer.base}/undo/10", "type": "Undo", "actor": peer.actor_id, "object": follow_activity(peer, 3)}
    assert post(fed, peer, undo).status_code == 202
    with fed_rt.sessions() as session:
        assert session.scalars(select(FollowRequest)).all() == []
