"""Sending changes: after an item reached followers elsewhere, an edit sends ``Update{Note}``; making it
private, deleting it or a moderator removing it sends ``Delete`` with a ``Tombstone``, and a deleted or
removed item's address answers ActivityPub clients 410 with the Tombstone; making it public again or restoring it sends
``Create`` again. Unlisted items go with ``cc: Public`` (kiln.federation.publishing). Every delivery
reaches the signing test peer over real HTTP on 127.0.0.1."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from kiln.accounts.models import User
from kiln.media import services as media_service
from kiln.media.models import MediaEntry
from kiln.moderation import removal
from tests.federation.conftest import AP
from tests.federation.peer import Peer
from tests.federation.test_follow import ALICE, follow_activity, post
from tests.federation.test_publish import upload

pytestmark = pytest.mark.db
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"


def received(peer: Peer, kind: str) -> list[dict[str, Any]]:
    return [r.json for r in peer.inbox if r.json["type"] == kind]


def edit(rt, media_id: int, **fields: Any) -> None:  # type: ignore[no-untyped-def]
    with rt.sessions() as session:
        alice = session.scalar(select(User).where(User.username == "alice"))
        media = session.get(MediaEntry, media_id)
        assert alice is not None and media is not None
        media_service.update(rt, session, alice, media, media_service.MediaFields(**fields))


def test_edits_privacy_and_deletion_reach_followers(fed, fed_rt, peer, tmp_path):
    assert post(fed, peer, follow_activity(peer)).status_code == 202
    media_id = upload(fed_rt, tmp_path, "Sunset")
    page = f"http://testserver/u/alice/m/{media_id}"
    assert len(received(peer, "Create")) == 1

    edit(fed_rt, media_id, title="Golden sunset")
    (update,) = received(peer, "Update")
    assert update["actor"] == ALICE and update["object"]["id"] == page and update["object"]["type"] == "Note"
    assert "<strong>Golden sunset</strong>" in update["object"]["content"] and "updated" in update["object"]

    edit(fed_rt, media_id, visibility="private")
    (gone,) = received(peer, "Delete")
    assert gone["object"] == {"id": page, "type": "Tombstone"} and gone["actor"] == ALICE
    # Private: 404 like anything private (a 410 would tell everyone it still exists).
    assert fed.get(f"/u/alice/m/{media_id}", headers={"Accept": AP}).status_code == 404
    assert fed.get(f"/u/alice/m/{media_id}").status_code == 404

    edit(fed_rt, media_id, visibility="public")
    assert len(received(peer, "Create")) == 2
    assert fed.get(f"/u/alice/m/{media_id}", headers={"Accept": AP}).status_code == 200

    with fed_rt.sessions() as session:
        alice = session.scalar(select(User).where(User.username == "alice"))
        media_service.delete(fed_rt, session, alice, session.get(MediaEntry, media_id))
    assert len(received(peer, "Delete")) == 2
    served = fed.get(f"/u/alice/m/{media_id}", headers={"Accept": AP})
    assert served.status_code == 410 and served.json()["type"] == "Tombstone" and served.json()["id"] == page


def test_a_moderator_removal_sends_delete_and_a_restore_sends_it_again(fed, fed_rt, peer, tmp_path):
    assert post(fed, peer, follow_activity(peer)).status_code == 202
    media_id = upload(fed_rt, tmp_path, "Sunset")
    with fed_rt.sessions() as session:
        media = session.get(MediaEntry, media_id)
        removal.remove_media(fed_rt, session, None, media, reason="Spam", via="cli")
        session.commit()
    assert [d["object"]["type"] for d in received(peer, "Delete")] == ["Tombstone"]
    assert fed.get(f"/u/alice/m/{media_id}", headers={"Accept": AP}).status_code == 410
    with fed_rt.sessions() as session:
        removal.restore_media(session, None, session.get(MediaEntry, media_id), via="cli")
        session.commit()
    assert len(received(peer, "Create")) == 2


def test_unlisted_items_go_to_followers_with_public_in_cc(fed, fed_rt, peer, tmp_path):
    assert post(fed, peer, follow_activity(peer)).status_code == 202
    media_id = upload(fed_rt, tmp_path, "Quiet", visibility="unlisted")
    (create,) = received(peer, "Create")
    assert create["to"] == [f"{ALICE}/followers"] and create["cc"] == [PUBLIC]
    assert create["object"]["to"] == [f"{ALICE}/followers"] and create["object"]["cc"] == [PUBLIC]
    assert fed.get(f"/u/alice/m/{media_id}", headers={"Accept": AP}).json()["cc"] == [PUBLIC]


def test_changes_of_items_never_sent_send_nothing(fed, fed_rt, peer, tmp_path):
    assert post(fed, peer, follow_activity(peer)).status_code == 202
    media_id = upload(fed_rt, tmp_path, "Secret", visibility="private")
    edit(fed_rt, media_id, title="Still secret")
    with fed_rt.sessions() as session:
        alice = session.scalar(select(User).where(User.username == "alice"))
        media_service.delete(fed_rt, session, alice, session.get(MediaEntry, media_id))
    assert [r.json["type"] for r in peer.inbox] == ["Accept"]
    assert fed.get(f"/u/alice/m/{media_id}", headers={"Accept": AP}).status_code == 404


def test_a_deleted_account_is_deleted_elsewhere_with_its_own_key(fed, fed_rt, peer, tmp_path):
    from kiln.accounts import leaving
    from kiln.processing.models import OutboxEffect
    from tests.federation.peer import verify_with_apsig

    assert post(fed, peer, follow_activity(peer)).status_code == 202
    actor = fed.get("/u/alice", headers={"Accept": AP}).json()
    with fed_rt.sessions() as session:
        alice = session.scalar(select(User).where(User.username == "alice"))
        leaving.delete_account(fed_rt, session, None, alice, via="cli")
    (gone,) = received(peer, "Delete")
    assert gone["actor"] == ALICE and gone["object"] == ALICE
    assert verify_with_apsig(peer.inbox[-1], actor["publicKey"]["publicKeyPem"]) == actor["publicKey"]["id"]
    served = fed.get("/u/alice", headers={"Accept": AP})
    assert served.status_code == 410 and served.json()["type"] == "Tombstone" and served.json()["id"] == ALICE
    with fed_rt.sessions() as session:  # the key it carried is not kept once sent
        payloads = [e.payload for e in session.scalars(select(OutboxEffect).where(
            OutboxEffect.kind == "federation_deliver"))]
        assert payloads and all("signer" not in p for p in payloads)
