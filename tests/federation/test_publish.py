"""Publishing: a public item, once processed, reaches each remote follower's server as a signed
``Create{Note}`` with its picture attached, and its page serves the Note to ActivityPub clients;
private items are neither sent nor served (kiln.federation.publishing)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from kiln.accounts.models import User
from kiln.federation import publishing
from kiln.media import services as media_service
from kiln.media.models import MediaEntry
from tests.federation.conftest import AP
from tests.federation.peer import Peer, verify_with_apsig
from tests.federation.test_follow import ALICE, follow_activity, post

pytestmark = pytest.mark.db


def upload(rt, folder: Path, title: str, **fields: str) -> int:  # type: ignore[no-untyped-def]
    path = folder / f"{title}.png"
    Image.new("RGB", (64, 48), (200, 80, 40)).save(path)
    with rt.sessions() as session:
        alice = session.scalar(select(User).where(User.username == "alice"))
        with path.open("rb") as fh:
            entry = media_service.submit(rt, session, alice, fh, path.name, media_service.MediaFields(
                title=title, description="A *red* rectangle <script>alert(1)</script>", alt_text="Red, 64 by 48",
                tags="red", **fields))
        return entry.id


def creates(peer: Peer) -> list[dict]:  # type: ignore[type-arg]
    return [r.json for r in peer.inbox if r.json["type"] == "Create"]


def test_a_public_item_reaches_remote_followers_as_a_note(fed, fed_rt, peer, tmp_path):
    assert post(fed, peer, follow_activity(peer)).status_code == 202
    media_id = upload(fed_rt, tmp_path, "Sunset")
    (create,) = creates(peer)
    delivered = peer.inbox[-1]
    assert delivered.path == "/shared"  # the peer's shared inbox
    actor = fed.get("/u/alice", headers={"Accept": AP}).json()
    assert verify_with_apsig(delivered, actor["publicKey"]["publicKeyPem"]) == actor["publicKey"]["id"]

    page = f"http://testserver/u/alice/m/{media_id}"
    note = create["object"]
    assert create["actor"] == ALICE and note["attributedTo"] == ALICE
    assert note["id"] == page and note["url"] == page and note["type"] == "Note"
    assert note["to"] == ["https://www.w3.org/ns/activitystreams#Public"] and note["cc"] == [f"{ALICE}/followers"]
    assert "<strong>Sunset</strong>" in note["content"] and "<em>red</em>" in note["content"]
    assert "<script" not in note["content"] and "summary" not in note
    (picture,) = note["attachment"]
    assert picture["type"] == "Image" and picture["mediaType"].startswith("image/")
    assert picture["name"] == "Red, 64 by 48" and picture["width"] == 64 and picture["height"] == 48
    assert picture["url"].startswith("http://testserver/") and picture["blurhash"]
    assert fed.get(picture["url"].removeprefix("http://testserver")).status_code == 200
    assert note["tag"] == [{"type": "Hashtag", "name": "#red", "href": "http://testserver/tag/red"}]

    # The page serves the same Note to ActivityPub clients, and the HTML page to browsers.
    served = fed.get(f"/u/alice/m/{media_id}", headers={"Accept": AP})
    assert served.status_code == 200 and served.json()["id"] == page
    assert served.json()["attachment"] == note["attachment"]
    assert fed.get(f"/u/alice/m/{media_id}").headers["content-type"].startswith("text/html")


def test_private_items_are_neither_sent_nor_served(fed, fed_rt, peer, tmp_path):
    assert post(fed, peer, follow_activity(peer)).status_code == 202
    hidden = upload(fed_rt, tmp_path, "Secret", visibility="private")
    assert creates(peer) == []
    for media_id in (hidden, 999_999):
        assert fed.get(f"/u/alice/m/{media_id}", headers={"Accept": AP}).status_code == 404
        assert fed.get(f"/ap/u/alice/m/{media_id}").status_code == 404


def test_nothing_is_sent_without_remote_followers(fed, fed_rt, peer, tmp_path):
    upload(fed_rt, tmp_path, "Alone")
    assert peer.inbox == []


def test_one_delivery_per_shared_inbox(fed, fed_rt, peer, tmp_path):
    from kiln.federation.models import RemoteActor
    from kiln.social.models import Follow

    with fed_rt.sessions() as session:
        alice = session.scalar(select(User).where(User.username == "alice"))
        assert alice is not None
        for n, shared in ((1, f"{peer.base}/shared"), (2, f"{peer.base}/shared"), (3, None)):
            uri = f"{peer.base}/users/{n}"
            session.add(RemoteActor(uri=uri, key_id=f"{uri}#key", public_key_pem="-", inbox=f"{uri}/inbox",
                                    shared_inbox=shared))
            session.add(Follow(followee_id=alice.id, follower_uri=uri))
        session.commit()
    upload(fed_rt, tmp_path, "Crowd")
    assert sorted(r.path for r in peer.inbox) == ["/shared", "/users/3/inbox"]


def test_the_outbox_and_followers_are_paginated_collections(fed, fed_rt, peer, tmp_path):
    from kiln.federation import actors

    assert post(fed, peer, follow_activity(peer)).status_code == 202
    ids = [upload(fed_rt, tmp_path, f"Item {n}") for n in range(3)]
    upload(fed_rt, tmp_path, "Hidden", visibility="private")
    outbox = fed.get("/u/alice/outbox", headers={"Accept": AP}).json()
    assert outbox["type"] == "OrderedCollection" and outbox["totalItems"] == 3
    assert outbox["first"] == f"{ALICE}/outbox?page=1"
    first = fed.get("/u/alice/outbox?page=1", headers={"Accept": AP}).json()
    assert first["type"] == "OrderedCollectionPage" and first["partOf"] == f"{ALICE}/outbox"
    assert [a["object"]["id"] for a in first["orderedItems"]] == [f"{ALICE}/m/{i}" for i in reversed(ids)]
    assert all(a["type"] == "Create" for a in first["orderedItems"]) and "next" not in first
    followers = fed.get("/ap/u/alice/followers?page=1").json()
    assert followers["orderedItems"] == [peer.actor_id]

    original = actors.COLLECTION_PAGE
    actors.COLLECTION_PAGE = 2
    try:
        first = fed.get("/ap/u/alice/outbox?page=1").json()
        assert len(first["orderedItems"]) == 2 and first["next"] == f"{ALICE}/outbox?page=1&before={ids[1]}"
        second = fed.get(f"/ap/u/alice/outbox?page=1&before={ids[1]}").json()
        assert [a["object"]["id"] for a in second["orderedItems"]] == [f"{ALICE}/m/{ids[0]}"]
        assert "next" not in second
    finally:
        actors.COLLECTION_PAGE = original
    assert fed.get("/ap/u/alice/outbox?page=2").status_code == 422
    assert fed.get("/ap/u/alice/outbox?page=1&before=abc").headers["content-type"].startswith("application/json")


def test_an_account_waiting_for_approval_federates_nothing(fed, fed_rt, tmp_path):
    media_id = upload(fed_rt, tmp_path, "Waiting")
    with fed_rt.sessions() as session:
        session.scalar(select(User).where(User.username == "alice")).pending_approval = True
        session.commit()
        media = session.get(MediaEntry, media_id)
        assert media.state == "processed" and not publishing.federated(media)  # neither sent nor shown
        assert publishing.audience(media) is None
    assert fed.get(f"/ap/u/alice/m/{media_id}").status_code == 404
