"""Other servers that lie (the security review of the federation code): an actor document fetched
through a redirect, of the wrong type, or claiming another address; a key on another server; an inbox
that answers a flood; a reply that joins a blocker's thread; hostile names and hosts
(kiln.federation.remote, fetch, receiving, moderation)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from kiln.accounts.models import User
from kiln.config import FederationSettings
from kiln.federation import fetch, moderation, remote, signatures
from kiln.federation.models import RemoteActor
from kiln.federation.signatures import SignatureError
from kiln.media.models import MediaEntry
from kiln.social import comments
from kiln.social.models import Comment
from tests.federation import peer as peer_kit
from tests.federation.peer import Peer
from tests.federation.test_follow import follow_activity, post
from tests.federation.test_publish import upload
from tests.federation.test_receive import deliver, reply
from tests.social_kit import person

pytestmark = pytest.mark.db


@pytest.fixture
def other() -> Iterator[Peer]:
    """A second server (another origin: the same address, another port)."""
    with peer_kit.serve() as remote_peer:
        yield remote_peer


def forged_actor(victim: Peer, key_id: str, inbox: str) -> dict[str, Any]:
    """An actor document claiming to be ``victim``'s actor, with a key of the forger's."""
    pem = signatures.public_pem(signatures.new_private_key())
    return {"id": victim.actor_id, "type": "Person", "inbox": inbox,
            "publicKey": {"id": key_id, "owner": victim.actor_id, "publicKeyPem": pem}}


def test_a_key_redirected_to_a_forged_actor_document_is_refused(fed_rt, peer, other):
    # The victim's server has an open redirect; the forger serves a document claiming the victim's actor.
    key_id = f"{peer.base}/redirect#k"
    peer.page("/redirect", {}, status=302, Location=f"{other.base}/evil")
    other.page("/evil", forged_actor(peer, key_id, f"{other.base}/inbox"))
    with pytest.raises(SignatureError) as refused:
        remote.fetch_by_key(fed_rt, key_id)
    assert refused.value.code == "bad_actor" and refused.value.message
    assert remote.cached(fed_rt, peer.actor_id) is None


def test_lookup_through_a_redirect_keeps_the_real_actor_not_the_forgery(fed_rt, peer, other):
    peer.page("/redirect", {}, status=302, Location=f"{other.base}/evil")
    other.page("/evil", forged_actor(peer, peer.key_id, f"{other.base}/inbox"))
    found = remote.lookup(fed_rt, f"{peer.base}/redirect")
    assert found.uri == peer.actor_id and found.inbox == f"{peer.base}/inbox"
    assert found.public_key_pem == signatures.public_pem(peer.key)


def test_an_actor_document_whose_id_is_not_its_address_is_refused(fed_rt, peer):
    # /mask serves a document claiming to be /someone-else, which (asked itself) does not say so.
    document = {**peer.actor(), "id": f"{peer.base}/someone-else"}
    document["publicKey"] = {**document["publicKey"], "id": f"{peer.base}/someone-else#k",
                             "owner": f"{peer.base}/someone-else"}
    peer.page("/someone-else", {**document, "id": f"{peer.base}/third"})
    with pytest.raises(SignatureError) as refused:
        remote.lookup(fed_rt, peer.page("/mask", document))
    assert refused.value.code == "bad_actor" and refused.value.message
    assert remote.cached(fed_rt, f"{peer.base}/someone-else") is None


@pytest.mark.parametrize("content_type", ["text/html", "application/json", "application/ld+json", "text/plain"])
def test_an_actor_document_of_another_type_is_refused(fed_rt, peer, content_type):
    peer.page("/actor2", {**peer.actor(), "id": f"{peer.base}/actor2",
                          "publicKey": {**peer.actor()["publicKey"], "id": f"{peer.base}/actor2#k",
                                        "owner": f"{peer.base}/actor2"}}, content_type=content_type)
    with pytest.raises(SignatureError) as refused:
        remote.fetch_by_key(fed_rt, f"{peer.base}/actor2#k")
    assert refused.value.code == "key_unavailable" and "ActivityStreams" in refused.value.message


def test_ld_json_with_the_activitystreams_profile_is_accepted(fed_rt, peer):
    document = {**peer.actor(), "id": f"{peer.base}/ld"}
    document["publicKey"] = {**document["publicKey"], "id": f"{peer.base}/ld#k", "owner": f"{peer.base}/ld"}
    peer.page("/ld", document, content_type='application/ld+json; profile="https://www.w3.org/ns/activitystreams"')
    assert remote.fetch_by_key(fed_rt, f"{peer.base}/ld#k").uri == f"{peer.base}/ld"


def test_a_key_on_another_origin_than_its_actor_is_refused(fed_rt, peer, other):
    document = {**peer.actor(), "id": f"{other.base}/actor"}
    document["publicKey"] = {**document["publicKey"], "owner": f"{other.base}/actor"}  # key id on peer
    other.page("/actor", document)
    with pytest.raises(SignatureError) as refused:
        remote.lookup(fed_rt, f"{other.base}/actor")
    assert refused.value.code == "bad_actor"
    assert remote.cached(fed_rt, f"{other.base}/actor") is None


def test_a_delivery_reads_only_the_status_of_an_answer_that_floods(peer):
    peer.answer_bytes = 256 * 1024**2
    settings = FederationSettings(allow_private_addresses=True)
    started = time.monotonic()
    assert fetch.post(f"{peer.base}/inbox", b"{}", {}, settings) == 202
    assert time.monotonic() - started < 5
    for _ in range(50):  # the peer stops writing once Kiln has hung up
        sent = peer.answer_sent
        time.sleep(0.05)
        if sent == peer.answer_sent:
            break
    assert peer.answer_sent < 64 * 1024**2


def test_a_reply_to_a_reply_is_refused_when_the_thread_author_blocks_its_sender(fed, fed_rt, peer, tmp_path):
    # bob starts a thread on alice's item, alice answers him, bob blocks rita; rita replies to alice's
    # answer, which would join bob's thread: refused, as a local reply would be.
    media_id = upload(fed_rt, tmp_path, "Sunset")
    bob_id = person(fed_rt, "bob")
    actor = remote.lookup(fed_rt, peer.actor_id)
    with fed_rt.sessions() as session:
        media = session.get(MediaEntry, media_id)
        bob, alice = session.get(User, bob_id), session.scalars(select(User).where(User.username == "alice")).one()
        thread = comments.post(fed_rt, session, bob, media, "Where was this?")
        answer = comments.post(fed_rt, session, alice, media, "By the sea.", parent_id=thread.id)
        answer_id = answer.id
        moderation.block_remote(session, bob, session.get(RemoteActor, session.scalars(
            select(RemoteActor.id).where(RemoteActor.uri == actor.uri)).one()))
        session.commit()
    target = f"http://testserver/m/{media_id}/comments/{answer_id}"
    assert deliver(fed, fed_rt, peer, reply(peer, 1, target)) == "blocked"
    with fed_rt.sessions() as session:
        assert session.scalars(select(Comment).where(Comment.remote_actor_id.is_not(None))).all() == []


def test_control_characters_and_odd_names_from_other_servers_are_dropped(fed_rt, peer):
    document = {**peer.actor(), "id": f"{peer.base}/odd", "preferredUsername": "rita\r\nBcc: all@example.com",
                "name": "Rita\x1b[31m \u202eRemote\u2028\x00"}
    document["publicKey"] = {**document["publicKey"], "id": f"{peer.base}/odd#k", "owner": f"{peer.base}/odd"}
    remote.lookup(fed_rt, peer.page("/odd", document))
    with fed_rt.sessions() as session:
        row = session.scalars(select(RemoteActor).where(RemoteActor.uri == f"{peer.base}/odd")).one()
        assert row.username == "" and row.handle == f"{peer.base}/odd"  # not a WebFinger name: the address
        assert row.display_name == "Rita[31m Remote"
    document = {**document, "preferredUsername": "rita.r-e_m~", "name": "Rita"}
    remote.lookup(fed_rt, peer.page("/odd", document))
    assert remote.cached(fed_rt, f"{peer.base}/odd") is not None
    with fed_rt.sessions() as session:
        assert session.scalars(select(RemoteActor.username).where(RemoteActor.uri == f"{peer.base}/odd")).one() \
            == "rita.r-e_m~"


@pytest.mark.parametrize(("blocked", "address"), [
    ("bücher.example", "https://Bücher.Example/actor"), ("bücher.example", "https://xn--bcher-kva.example/a"),
    ("xn--bcher-kva.example", "https://bücher.example./actor"), ("blocked.example", "https://BLOCKED.example./a"),
    ("blocked.example", "https://sub.blocked.example.:8443/a")])
def test_domain_blocks_compare_normalised_hosts(fed_rt, blocked, address):
    with fed_rt.sessions() as session:
        moderation.block_domain(session, None, blocked)
        session.commit()
        assert moderation.rule_for(session, address) == "block"
        with pytest.raises(moderation.DomainBlocked):
            moderation.check_accepted(session, address)


def test_pins_and_host_comparisons_use_the_idna_name():
    assert fetch.normal_host("Bücher.Example.") == "xn--bcher-kva.example"
    assert fetch.normal_host("[::1]") == "::1"
    assert fetch.origin("https://Bücher.example./a") == fetch.origin("https://xn--bcher-kva.example:443/b")
    assert fetch.origin("http://a.example/") != fetch.origin("https://a.example/")
    backend = fetch._PinnedBackend()  # noqa: SLF001
    backend.pins[fetch.normal_host("bücher.example")] = "127.0.0.1"
    with pytest.raises(Exception) as refused:  # httpx hands httpcore the IDNA name: found, then refused by the port
        backend.connect_tcp("xn--bcher-kva.example", 1, timeout=1)
    assert "was not checked" not in str(refused.value)


def test_a_request_signed_for_another_server_is_not_replayed_here(fed, fed_rt, peer):
    activity = follow_activity(peer)
    body, headers = peer.signed("http://elsewhere.example/u/alice/inbox", activity)
    answer = fed.post("/u/alice/inbox", content=body, headers={**headers, "Host": "elsewhere.example"})
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"]["code"] == "wrong_host" and "testserver" in answer.json()["error"]["message"]
    body, headers = peer.signed("http://testserver:80/u/alice/inbox", activity)  # the default port, written
    assert fed.post("/u/alice/inbox", content=body, headers={**headers, "Host": "testserver:80"}).status_code == 202


def test_key_fetches_over_the_limit_are_answered_503_with_retry_after(fed, fed_rt, peer, monkeypatch):
    full = threading.BoundedSemaphore(1)
    full.acquire()
    monkeypatch.setattr(remote, "_fetching", full)
    answer = post(fed, peer, follow_activity(peer))
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "30"
    assert answer.json()["error"]["code"] == "busy" and answer.json()["error"]["message"]
    assert peer.fetches == []
    full.release()
    assert post(fed, peer, follow_activity(peer)).status_code == 202


def test_a_key_that_failed_is_not_fetched_again_for_a_while(fed, fed_rt, peer, other):
    peer.page("/actor", {}, status=404)
    assert post(fed, peer, follow_activity(peer)).status_code == 401
    assert post(fed, peer, follow_activity(peer)).status_code == 401
    assert peer.fetches == ["/actor"]  # once, not twice
    # A document missing on a server that answers does not stop its other keys...
    document = {**other.actor(), "id": f"{peer.base}/other", "inbox": f"{peer.base}/inbox"}
    document["publicKey"] = {**document["publicKey"], "id": f"{peer.base}/other#k", "owner": f"{peer.base}/other"}
    peer.page("/other", document)
    assert remote.fetch_by_key(fed_rt, f"{peer.base}/other#k").uri == f"{peer.base}/other"
    # ... a server that cannot be reached does, for a while.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{closed.getsockname()[1]}"
    for key in (f"{dead}/a#k", f"{dead}/b#k"):
        with pytest.raises(SignatureError) as refused:
            remote.fetch_by_key(fed_rt, key)
        assert refused.value.code == "key_unavailable"
    assert "a moment ago" in refused.value.message


def test_a_server_dripping_its_headers_is_cut_off_at_the_deadline():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def drip() -> None:
        connection, _ = server.accept()
        with connection:
            connection.recv(4096)
            connection.sendall(b"HTTP/1.1 200 OK\r\nX-Drip: ")
            for _ in range(30):  # 9 seconds, each byte within the read timeout
                time.sleep(0.3)
                try:
                    connection.sendall(b"a")
                except OSError:
                    return

    threading.Thread(target=drip, daemon=True).start()
    settings = FederationSettings(allow_private_addresses=True, connect_timeout=0.5, read_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(fetch.FetchError) as refused:
        fetch.get_json(f"http://127.0.0.1:{server.getsockname()[1]}/key", settings)
    assert time.monotonic() - started < 3.0  # the deadline is 0.5 + 3 * 0.5 seconds
    assert refused.value.code == "too_slow" and refused.value.message
    server.close()


@pytest.mark.parametrize("address", ["64:ff9b::7f00:1", "64:ff9b::a00:1", "2002:7f00:1::1", "2002:c0a8:101::1",
                                     "::ffff:127.0.0.1", "::127.0.0.1", "2001:0:4136:e378:8000:63bf:3fff:fdd2"])
def test_ipv6_addresses_carrying_a_private_ipv4_address_are_refused(address):
    with pytest.raises(fetch.AddressRefused) as refused:
        fetch.check_url(f"https://[{address}]/actor", FederationSettings())
    assert refused.value.message


@pytest.mark.parametrize("address", ["64:ff9b::808:808", "2002:808:808::1", "2a00:1450:4001:80b::200e"])
def test_ipv6_addresses_carrying_a_public_ipv4_address_are_allowed(address):
    assert fetch.check_url(f"https://[{address}]/actor", FederationSettings()) == address


def test_a_key_id_belongs_to_one_actor(fed_rt, peer):
    def claiming(path: str, key_id: str) -> dict[str, Any]:
        document = {**peer.actor(), "id": f"{peer.base}{path}"}
        pem = signatures.public_pem(signatures.new_private_key())
        document["publicKey"] = {"id": key_id, "owner": f"{peer.base}{path}", "publicKeyPem": pem}
        return document

    assert remote.lookup(fed_rt, peer.actor_id).key_id == peer.key_id
    # Another actor on the same server naming rita's key is not kept...
    with pytest.raises(SignatureError) as refused:
        remote.lookup(fed_rt, peer.page("/thief", claiming("/thief", peer.key_id)))
    assert refused.value.code == "bad_actor" and remote.cached(fed_rt, f"{peer.base}/thief") is None
    assert remote.cached_by_key(fed_rt, peer.key_id).uri == peer.actor_id  # type: ignore[union-attr]
    # ... and a key fetched from its own address takes its id from whoever held it before.
    remote.lookup(fed_rt, peer.page("/old", claiming("/old", f"{peer.base}/new#k")))
    peer.page("/new", claiming("/new", f"{peer.base}/new#k"))
    assert remote.fetch_by_key(fed_rt, f"{peer.base}/new#k").uri == f"{peer.base}/new"
    assert remote.cached_by_key(fed_rt, f"{peer.base}/new#k").uri == f"{peer.base}/new"  # type: ignore[union-attr]
    assert remote.cached(fed_rt, f"{peer.base}/old").key_id == ""  # type: ignore[union-attr]


def test_a_redirect_to_a_blocked_server_is_neither_followed_nor_signed_for(fed_rt, peer):
    # The peer redirects to a name this site's admins blocked ("localhost": the same server, so the
    # fetch would succeed were the redirect followed). Kiln stops before asking it.
    port = urlsplit(peer.base).port
    peer.page("/redirect", {}, status=302, Location=f"http://localhost:{port}/actor")
    with fed_rt.sessions() as session:
        moderation.block_domain(session, None, "localhost")
        session.commit()
    with pytest.raises(fetch.FetchError) as refused:
        remote.lookup(fed_rt, f"{peer.base}/redirect")
    assert refused.value.code == "domain_blocked" and refused.value.status == 403
    assert "localhost" in refused.value.message
    assert peer.fetches == ["/redirect"]  # the blocked name was never asked, nor sent a signature
