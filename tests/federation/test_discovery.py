"""Being findable: WebFinger, NodeInfo, the actor document and content negotiation on a profile's
own address (kiln.web.federation, kiln.federation.actors)."""

from __future__ import annotations

import pytest

from kiln.accounts.models import User
from kiln.federation import signatures
from kiln.federation.fetch import AddressRefused, FetchError, check_url, get_json
from tests.federation.conftest import AP

pytestmark = pytest.mark.db
LD = 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'


def test_webfinger_names_the_actor(fed):
    answer = fed.get("/.well-known/webfinger", params={"resource": "acct:alice@testserver"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/jrd+json")
    jrd = answer.json()
    assert jrd["subject"] == "acct:alice@testserver"
    assert {"rel": "self", "type": AP, "href": "http://testserver/u/alice"} in jrd["links"]
    by_address = fed.get("/.well-known/webfinger", params={"resource": "http://testserver/u/alice"})
    assert by_address.json()["subject"] == "acct:alice@testserver"


@pytest.mark.parametrize("resource", ["alice", "acct:", "acct:alice", "acct:@testserver", "mailto:alice@testserver"])
def test_webfinger_refuses_malformed_resources_with_a_sentence(fed, resource):
    answer = fed.get("/.well-known/webfinger", params={"resource": resource})
    assert answer.status_code == 400
    assert "acct:name@testserver" in answer.json()["error"]["message"]


@pytest.mark.parametrize("resource", ["acct:nobody@testserver", "acct:alice@elsewhere.example",
                                      "https://elsewhere.example/u/alice"])
def test_webfinger_does_not_know_other_accounts(fed, resource):
    assert fed.get("/.well-known/webfinger", params={"resource": resource}).status_code == 404


def test_banned_and_deleted_accounts_are_not_found(fed, fed_rt):
    with fed_rt.sessions() as session:
        user = session.query(User).filter_by(username="alice").one()
        user.banned = True
        session.commit()
    assert fed.get("/.well-known/webfinger", params={"resource": "acct:alice@testserver"}).status_code == 404
    assert fed.get("/u/alice", headers={"Accept": AP}).status_code == 404
    with fed_rt.sessions() as session:
        session.delete(session.query(User).filter_by(username="alice").one())
        session.commit()
    assert fed.get("/.well-known/webfinger", params={"resource": "acct:alice@testserver"}).status_code == 404


def test_nodeinfo(fed):
    links = fed.get("/.well-known/nodeinfo").json()["links"]
    assert links[0]["href"] == "http://testserver/nodeinfo/2.1"
    info = fed.get("/nodeinfo/2.1").json()
    assert info["software"]["name"] == "kiln" and info["software"]["version"]
    assert info["protocols"] == ["activitypub"] and info["version"] == "2.1"
    assert info["usage"]["users"]["total"] == 1 and info["usage"]["localPosts"] == 0


@pytest.mark.parametrize("accept", [AP, LD, f"{AP}, text/html;q=0.1"])
def test_the_profile_address_serves_the_actor_to_activitypub_clients(fed, accept):
    answer = fed.get("/u/alice", headers={"Accept": accept})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith(AP)
    assert "Accept" in answer.headers["vary"]
    actor = answer.json()
    me = "http://testserver/u/alice"
    assert actor["id"] == me and actor["type"] == "Person" and actor["preferredUsername"] == "alice"
    assert actor["inbox"] == f"{me}/inbox" and actor["outbox"] == f"{me}/outbox"
    assert actor["followers"] == f"{me}/followers" and actor["following"] == f"{me}/following"
    assert actor["endpoints"]["sharedInbox"] == "http://testserver/inbox" and actor["url"] == me
    key = actor["publicKey"]
    assert key["id"] == f"{me}#main-key" and key["owner"] == me
    signatures.load_public(key["publicKeyPem"])
    assert "PRIVATE" not in answer.text
    assert fed.get("/u/alice", headers={"Accept": accept}).json()["publicKey"] == key  # made once, kept


def test_browsers_still_get_the_page_and_the_cache_never_mixes_them(fed):
    for _ in range(2):  # the second HTML answer comes from the page cache
        page = fed.get("/u/alice", headers={"Accept": "text/html"})
        assert page.headers["content-type"].startswith("text/html") and "Accept" in page.headers["vary"]
        assert fed.get("/u/alice", headers={"Accept": AP}).headers["content-type"].startswith(AP)


def test_collections_are_negotiated_too(fed):
    for which in ("followers", "following", "outbox"):
        document = fed.get(f"/u/alice/{which}", headers={"Accept": AP}).json()
        assert document["type"] == "OrderedCollection" and document["totalItems"] == 0
        assert document["id"] == f"http://testserver/u/alice/{which}"
    assert fed.get("/u/alice/followers").headers["content-type"].startswith("text/html")


def test_turned_off_federation_answers_nothing(tmp_path, db_url):
    from fastapi.testclient import TestClient

    from kiln.app import create_app
    from tests.conftest import BASE_URL, inline_runtime, make_settings

    settings = make_settings(tmp_path / "off", db_url, federation={"enabled": False})
    for rt in inline_runtime(settings):
        with TestClient(create_app(settings, rt), base_url=BASE_URL) as client:
            for path in ("/.well-known/webfinger?resource=acct:x@testserver", "/.well-known/nodeinfo",
                         "/nodeinfo/2.1", "/ap/u/x"):
                assert client.get(path).status_code == 404
            assert client.post("/inbox", content=b"{}").status_code == 404
            assert client.get("/u/nobody", headers={"Accept": AP}).headers["content-type"].startswith("text/html")


def test_the_fetcher_refuses_private_addresses_and_checks_redirects(fed_rt, peer):
    strict = fed_rt.settings.federation.model_copy(update={"allow_private_addresses": False})
    for address in ("http://127.0.0.1/x", "https://127.0.0.1/x", "https://[::1]/x", "https://10.0.0.1/x",
                    "https://169.254.169.254/latest", "https://localhost/x", "ftp://example.org/x",
                    "https://user:pw@example.org/x", "https://[::ffff:127.0.0.1]/x"):
        with pytest.raises(AddressRefused):
            check_url(address, strict)
    assert get_json(peer.actor_id, fed_rt.settings.federation)["id"] == peer.actor_id
    with pytest.raises(FetchError):
        get_json(f"{peer.base}/nothing", fed_rt.settings.federation)
    # A redirect is checked like the first address (here: to a file:// address).
    with pytest.raises(AddressRefused):
        get_json(f"{peer.base}/moved", fed_rt.settings.federation)


def test_connections_go_to_the_address_checked_with_the_name_kept(fed_rt, peer):
    """DNS rebinding: the connection is made to the address the check resolved, not to a fresh answer;
    the request still names the host (Host header; TLS would use it for SNI and the certificate)."""
    from urllib.parse import urlsplit

    from kiln.federation import fetch

    settings = fed_rt.settings.federation
    port = urlsplit(peer.base).port
    by_name = f"http://localhost:{port}/actor"
    assert get_json(by_name, settings)["id"] == peer.actor_id  # localhost, pinned to the address it resolved to
    with fetch._client(settings) as client:
        # A name pinned to an address goes there whatever DNS says now (here: a name that has no DNS at all).
        client.backend.pins["rebound.invalid"] = "127.0.0.1"
        answer = client.get(f"http://rebound.invalid:{port}/actor")
        assert answer.status_code == 200 and answer.json()["id"] == peer.actor_id
        # A name never checked is not connected to at all.
        with pytest.raises(Exception, match="was not checked"):
            client.get(f"http://unchecked.invalid:{port}/actor")
    assert fetch.post(f"http://localhost:{port}/inbox", b"{}", {}, settings) == 202
    assert peer.inbox[-1].headers["host"] == f"localhost:{port}"


def test_name_resolution_has_a_time_limit(fed_rt):
    """The system resolver has no timeout of its own: check_url waits at most connect_timeout for it."""
    import time

    quick = fed_rt.settings.federation.model_copy(update={"connect_timeout": 0.001})
    started = time.monotonic()
    with pytest.raises(FetchError, match="resolved"):  # in time or not, it is never waited on for long
        check_url("https://resolver-timeout.invalid/x", quick)
    assert time.monotonic() - started < 2


def test_malformed_parameters_of_routes_for_servers_are_answered_as_json(fed):
    for path in ("/ap/u/alice/m/abc", "/ap/u/alice/m/99999999999999999999", "/ap/u/" + "x" * 40,
                 "/.well-known/webfinger?resource=" + "x" * 3000, "/ap/u/alice/nope"):
        answer = fed.get(path)
        assert 400 <= answer.status_code < 500, path
        assert answer.headers["content-type"].startswith("application/json"), (path, answer.text[:80])
        assert answer.json()["error"]["message"], path
    # Asked by an ActivityPub client at the page's own address, too.
    answer = fed.get("/u/alice/m/abc", headers={"Accept": AP})
    assert answer.headers["content-type"].startswith("application/json") and answer.json()["error"]["code"]
