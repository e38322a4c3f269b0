"""Moderation across servers (kiln.federation.moderation, `kiln federation`): an administrator blocks
the test peer's server (on 127.0.0.1, signing with apsig): everything its account left goes, its
follower is removed, its requests are refused before any key is fetched, nothing is delivered there;
silencing holds its replies and quiets its likes; a person blocking the remote account refuses its
reply, like and follow. The CLI looks the account up, lists and retries deliveries, blocks and unblocks."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from kiln.accounts.models import User
from kiln.federation import moderation
from kiln.federation.models import RemoteActor
from kiln.moderation.models import AuditEntry
from kiln.social.models import Comment, Follow
from tests.federation.test_follow import follow_activity, post
from tests.federation.test_publish import upload
from tests.federation.test_receive import counts, deliver, notifications, page, reply

pytestmark = pytest.mark.db


@pytest.fixture
def cli(kiln, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("KILN_FEDERATION__ALLOW_PRIVATE_ADDRESSES", "true")
    return kiln


def like(peer, media_id: int, n: int = 1) -> dict[str, object]:  # type: ignore[no-untyped-def]
    return {"id": f"{peer.base}/likes/{n}", "type": "Like", "actor": peer.actor_id, "object": page(media_id)}


def test_a_blocked_server_loses_everything_and_is_refused(fed, fed_rt, peer, tmp_path, cli):
    media_id = upload(fed_rt, tmp_path, "Sunset")
    assert post(fed, peer, follow_activity(peer)).status_code == 202
    assert deliver(fed, fed_rt, peer, reply(peer, 1, page(media_id))) == "commented"
    assert deliver(fed, fed_rt, peer, like(peer, media_id)) == "liked"
    assert counts(fed_rt, media_id) == (1, 1, 0)

    assert cli("federation", "block", "127.0.0.1", "--reason", "spam", "--yes").output.strip() \
        == "127.0.0.1: blocked (1 account(s) cleared)."
    assert counts(fed_rt, media_id) == (0, 0, 0)
    with fed_rt.sessions() as session:
        assert session.scalars(select(Comment)).all() == []
        assert session.scalars(select(Follow).where(Follow.follower_uri.is_not(None))).all() == []
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "federation.block_domain")).one()
        assert entry.target_label == "127.0.0.1" and entry.reason == "spam" and entry.via == "cli"
    fetched = len(peer.fetches)
    refused = post(fed, peer, reply(peer, 2, page(media_id)))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "domain_blocked"
    assert "127.0.0.1" in refused.json()["error"]["message"] and len(peer.fetches) == fetched
    assert json.loads(cli("federation", "blocks", "--json").output)[0]["domain"] == "127.0.0.1"

    cli("federation", "unblock", "127.0.0.1")
    assert deliver(fed, fed_rt, peer, reply(peer, 3, page(media_id))) == "commented"


def test_a_silenced_server_waits_for_a_moderator_and_tells_nobody(fed, fed_rt, peer, tmp_path, cli):
    media_id = upload(fed_rt, tmp_path, "Sunset")
    cli("federation", "block", "https://127.0.0.1/", "--silence")
    assert deliver(fed, fed_rt, peer, reply(peer, 1, page(media_id))) == "commented"
    assert deliver(fed, fed_rt, peer, like(peer, media_id)) == "liked"
    assert post(fed, peer, follow_activity(peer)).status_code == 202
    with fed_rt.sessions() as session:
        assert session.scalars(select(Comment.held)).all() == [True]
    assert counts(fed_rt, media_id) == (0, 1, 0)  # a held reply is not counted until approved
    assert [t for t, remote in notifications(fed_rt) if remote] == []


def test_a_person_blocking_a_remote_account_refuses_its_reply_like_and_follow(fed, fed_rt, peer, tmp_path):
    media_id = upload(fed_rt, tmp_path, "Sunset")
    assert post(fed, peer, follow_activity(peer)).status_code == 202
    with fed_rt.sessions() as session:
        alice = session.scalars(select(User).where(User.username == "alice")).one()
        actor = moderation.find_actor(session, "@rita@127.0.0.1")
        assert moderation.find_actor(session, peer.actor_id).id == actor.id
        assert moderation.block_remote(session, alice, actor) is True
        session.commit()
        assert session.scalars(select(Follow).where(Follow.follower_uri.is_not(None))).all() == []
    assert deliver(fed, fed_rt, peer, reply(peer, 1, page(media_id))) == "blocked"
    assert deliver(fed, fed_rt, peer, like(peer, media_id)) == "blocked"
    follow = follow_activity(peer, 2)
    assert deliver(fed, fed_rt, peer, follow, path="/u/alice/inbox") == "blocked"
    assert counts(fed_rt, media_id) == (0, 0, 0)
    with fed_rt.sessions() as session:
        alice = session.scalars(select(User).where(User.username == "alice")).one()
        assert [a.uri for a in moderation.blocked_by(session, alice)] == [peer.actor_id]
        assert moderation.unblock_remote(session, alice, session.get(RemoteActor, actor.id)) is True
        session.commit()
    assert deliver(fed, fed_rt, peer, like(peer, media_id, 2)) == "liked"


def test_the_cli_looks_up_lists_and_retries(fed, fed_rt, peer, cli):
    found = json.loads(cli("federation", "lookup", peer.actor_id, "--json").output)
    assert found["handle"] == "@rita@127.0.0.1" and found["inbox"] == f"{peer.base}/inbox"
    assert found["server"] == "allowed"
    bad = cli("federation", "lookup", "nobody", ok=False)
    assert bad.exit_code == 1 and "@name@host" in bad.output
    peer.status = 503
    assert post(fed, peer, follow_activity(peer)).status_code == 202
    listed = json.loads(cli("federation", "deliveries", "--json").output)
    assert listed["servers"][0]["host"] == "127.0.0.1" and listed["servers"][0]["waiting"] == 1
    assert listed["deliveries"][0]["type"] == "Accept" and listed["deliveries"][0]["state"] == "pending"
    assert "127.0.0.1\tup\t1 waiting" in cli("federation", "deliveries").output
    peer.status = 202
    retried = json.loads(cli("federation", "retry", "--host", "127.0.0.1", "--json").output)
    assert retried["retried"] == [listed["deliveries"][0]["id"]]
    bad_domain = cli("federation", "block", "not a domain!", "--yes", ok=False)
    assert bad_domain.exit_code == 1 and "domain name" in bad_domain.output


def test_the_pages_block_a_server_and_a_remote_account(fed, fed_rt, peer, tmp_path):
    from kiln.accounts import services as accounts
    from tests.social_kit import log_in

    media_id = upload(fed_rt, tmp_path, "Sunset")
    assert post(fed, peer, follow_activity(peer)).status_code == 202
    with fed_rt.sessions() as session:
        ada = accounts.create_user(session, "ada", "ada@example.com", "correct horse", verified=True, admin=True)
        alice = session.scalars(select(User).where(User.username == "alice")).one()
        session.commit()
        ada_id, alice_id = ada.id, alice.id

    token = log_in(fed, fed_rt, alice_id)
    done = fed.post("/account/blocks/remote", data={"account": "@rita@127.0.0.1", "csrf_token": token},
                    follow_redirects=False)
    assert done.status_code == 303
    listed = fed.get("/account/blocks").text
    assert "@rita@127.0.0.1" in listed and 'action="/account/blocks/remote/remove"' in listed
    assert deliver(fed, fed_rt, peer, like(peer, media_id)) == "blocked"
    fed.post("/account/blocks/remote/remove", data={"account": peer.actor_id, "csrf_token": token})
    assert "You have not blocked anyone on another server." in fed.get("/account/blocks").text

    token = log_in(fed, fed_rt, ada_id)
    done = fed.post("/admin/federation/block", data={"domain": "127.0.0.1", "kind": "silence", "reason": "noisy",
                                                      "csrf_token": token}, follow_redirects=False)
    assert done.status_code == 303
    page_text = fed.get("/admin/federation").text
    assert 'data-domain="127.0.0.1"' in page_text and "noisy" in page_text
    fed.cookies.clear()
    assert deliver(fed, fed_rt, peer, reply(peer, 1, page(media_id))) == "commented"
    with fed_rt.sessions() as session:
        assert session.scalars(select(Comment.held)).all() == [True]
    token = log_in(fed, fed_rt, ada_id)
    assert fed.post("/admin/federation/unblock", data={"domain": "127.0.0.1", "csrf_token": token},
                    follow_redirects=False).status_code == 303
    assert "No server is blocked or silenced." in fed.get("/admin/federation").text
