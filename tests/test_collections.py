"""Collections: ordered items with notes, composed visibility, collaborators, share links (revoked
and expired links answer 404 everywhere, files included), pages, the Atom feed, the API and the CLI."""

from __future__ import annotations

import datetime as dt
import json
import re

import feedparser
import pytest
from fastapi.testclient import TestClient

from kiln.accounts import services as accounts
from kiln.app import create_app
from kiln.media import services as media_service
from kiln.media.models import MediaEntry
from kiln.runtime import Runtime
from kiln.social import collections as service
from kiln.social.models import Notification, ShareLink
from tests.conftest import BASE_URL, csrf, form_post
from tests.test_api import make_user, token_for

pytestmark = pytest.mark.db


def submit(rt: Runtime, owner: str, path, title: str, visibility: str = "public") -> int:  # type: ignore[no-untyped-def]
    with rt.sessions() as session:
        user = accounts.get_user(session, owner)
        with path.open("rb") as fh:
            entry = media_service.submit(rt, session, user, fh, path.name,
                                         media_service.MediaFields(title=title, visibility=visibility))
        return entry.id


def login(rt: Runtime, name: str) -> TestClient:
    client = TestClient(create_app(rt.settings, rt), base_url=BASE_URL)
    resp = client.post("/auth/login", data={"username": name, "password": "correct horse",
                                            "csrf_token": csrf(client, "/auth/login")})
    assert resp.status_code == 200, resp.text
    return client


@pytest.fixture
def album(client, rt, images):  # type: ignore[no-untyped-def]
    """alice's public collection with her public, unlisted and private items (in that order), and
    bob, a collaborator, with his private item in it too."""
    make_user(rt, "alice")
    make_user(rt, "bob")
    make_user(rt, "carol")
    ids = {name: submit(rt, "alice", images["plain"], name.title(), name) for name in ("public", "unlisted", "private")}
    ids["bobs"] = submit(rt, "bob", images["plain"], "Bob's", "private")
    alice, bob = token_for(client, "alice"), token_for(client, "bob")
    made = client.post("/api/v1/collections", headers=alice, json={"title": "Trip", "description": "*Sea*"})
    assert made.status_code == 201, made.text
    cid = made.json()["id"]
    for name in ("public", "unlisted", "private"):
        assert client.post(f"/api/v1/collections/{cid}/items", headers=alice,
                           json={"media_id": ids[name], "note": f"note {name}"}).status_code == 201
    assert client.post(f"/api/v1/collections/{cid}/collaborators", headers=alice,
                       json={"username": "bob"}).status_code == 201
    assert client.post(f"/api/v1/collections/{cid}/items", headers=bob,
                       json={"media_id": ids["bobs"]}).status_code == 201
    return {"id": cid, "media": ids, "alice": alice, "bob": bob, "carol": token_for(client, "carol")}


def titles(resp) -> list[str]:  # type: ignore[no-untyped-def]
    assert resp.status_code == 200, resp.text
    return [item["title"] for item in resp.json()["items"]]


def test_items_show_only_to_those_who_may_see_them(client, album):  # type: ignore[no-untyped-def]
    cid = album["id"]
    got = client.get(f"/api/v1/collections/{cid}")
    assert titles(got) == ["Public", "Unlisted"]  # a private item stays private in a public collection
    assert got.json()["url"] == f"{BASE_URL}/c/{cid}" and got.json()["description_html"] == "<p><em>Sea</em></p>\n"
    assert [i["note"] for i in got.json()["items"]] == ["note public", "note unlisted"]
    assert titles(client.get(f"/api/v1/collections/{cid}", headers=album["alice"])) == ["Public", "Unlisted", "Private"]
    assert titles(client.get(f"/api/v1/collections/{cid}", headers=album["bob"])) == ["Public", "Unlisted", "Bob's"]
    page = client.get(f"/c/{cid}")
    assert page.status_code == 200 and "Unlisted" in page.text and ">Private<" not in page.text
    assert "note public" in page.text and 'type="application/atom+xml"' in page.text


def test_order_is_kept_and_changed_by_api_and_form(client, rt, album):  # type: ignore[no-untyped-def]
    cid, ids, alice = album["id"], album["media"], album["alice"]
    resp = client.put(f"/api/v1/collections/{cid}/order", headers=alice,
                      json={"media_ids": [ids["private"], ids["public"]]})
    assert titles(resp) == ["Private", "Public", "Unlisted"]
    assert client.put(f"/api/v1/collections/{cid}/order", headers=alice,
                      json={"media_ids": [ids["public"], ids["public"]]}).status_code == 422
    assert client.put(f"/api/v1/collections/{cid}/order", headers=album["bob"],
                      json={"media_ids": [ids["public"]]}).status_code == 403
    browser = login(rt, "alice")
    page = browser.get(f"/c/{cid}/edit")
    assert page.status_code == 200 and 'name="pos_' in page.text and "arrange.js" in page.text
    resp = form_post(browser, f"/c/{cid}/order", {f"pos_{ids['unlisted']}": "1", f"pos_{ids['private']}": "9",
                                                  f"note_{ids['unlisted']}": "first now"}, page=f"/c/{cid}/edit")
    assert resp.status_code == 200
    got = client.get(f"/api/v1/collections/{cid}", headers=alice).json()["items"]
    assert [i["title"] for i in got] == ["Unlisted", "Public", "Private"] and got[0]["note"] == "first now"
    with rt.sessions() as session:  # bob's private item, which alice cannot see, kept its place last
        collection = service.get_collection(session, cid)
        assert [i.media_id for i in service.all_items(session, collection)][-1] == ids["bobs"]


def test_collaborators_add_and_remove_their_own_only(client, rt, album):  # type: ignore[no-untyped-def]
    cid, ids = album["id"], album["media"]
    with rt.sessions() as session:
        invite = session.query(Notification).filter_by(type="invite").one()
        assert invite.collection_id == cid and invite.user_id == accounts.get_user(session, "bob").id
    told = client.get("/api/v1/notifications", headers=album["bob"]).json()["items"]
    assert [n["url"] for n in told] == [f"{BASE_URL}/c/{cid}"]  # it leads to the collection's page
    # bob may not add alice's items, nor take them out; carol (not invited) may not add at all.
    assert client.post(f"/api/v1/collections/{cid}/items", headers=album["bob"],
                       json={"media_id": ids["public"]}).status_code == 403
    assert client.delete(f"/api/v1/collections/{cid}/items/{ids['public']}", headers=album["bob"]).status_code == 403
    carols = submit(rt, "carol", _image(rt), "Carol's")
    assert client.post(f"/api/v1/collections/{cid}/items", headers=album["carol"],
                       json={"media_id": carols}).status_code == 403
    # alice cannot see bob's private item: for her it is not in the collection, though she may remove it.
    assert client.delete(f"/api/v1/collections/{cid}/items/{ids['bobs']}", headers=album["bob"]).status_code == 204
    assert client.delete(f"/api/v1/collections/{cid}/items/{ids['public']}", headers=album["alice"]).status_code == 204
    assert client.delete(f"/api/v1/collections/{cid}/collaborators/bob", headers=album["bob"]).status_code == 204
    assert client.get(f"/api/v1/collections/{cid}/collaborators").json() == []
    assert client.post(f"/api/v1/collections/{cid}/collaborators", headers=album["alice"],
                       json={"username": "nobody"}).status_code == 404


def _image(rt: Runtime):  # type: ignore[no-untyped-def]
    from PIL import Image

    path = rt.settings.data_dir / "carol.png"
    Image.new("RGB", (32, 24), (10, 200, 30)).save(path)
    return path


def _share(client: TestClient, album: dict, **body) -> tuple[int, str]:  # type: ignore[no-untyped-def, type-arg]
    made = client.post(f"/api/v1/collections/{album['id']}/shares", headers=album["alice"], json=body)
    assert made.status_code == 201, made.text
    return made.json()["id"], made.json()["token"]


def test_a_share_link_shows_a_private_collection_and_its_owners_items_until_revoked(client, rt, album):  # type: ignore[no-untyped-def]
    cid, ids = album["id"], album["media"]
    assert client.patch(f"/api/v1/collections/{cid}", headers=album["alice"],
                        json={"visibility": "private"}).status_code == 200
    assert client.get(f"/c/{cid}").status_code == 404
    assert client.get(f"/api/v1/collections/{cid}", headers=album["carol"]).status_code == 404
    link_id, token = _share(client, album, label="family")
    with rt.sessions() as session:
        assert session.query(ShareLink).one().token_hash == accounts.digest(token)  # only the hash is kept
    # The owner's items, private ones too; bob's private item stays his.
    shared = client.get(f"/api/v1/collections/{cid}", params={"share": token})
    assert titles(shared) == ["Public", "Unlisted", "Private"]
    page = client.get(f"/c/{cid}", params={"share": token})
    assert page.status_code == 200 and page.headers["cache-control"] == "private, no-store"
    private_src = re.search(rf'src="(/m/{ids["private"]}/r/thumbnail\?share=[^"]+)"', page.text)
    assert private_src, "the private item's file carries the link"
    assert client.get(private_src.group(1)).status_code == 200
    assert client.get(f"/m/{ids['private']}/r/thumbnail").status_code == 404
    assert client.get(f"/m/{ids['bobs']}/r/thumbnail", params={"share": token}).status_code == 404
    media_page = client.get(f"/u/alice/m/{ids['private']}", params={"share": token})
    assert media_page.status_code == 200 and f"?share={token}" in media_page.text
    feed = feedparser.parse(client.get(f"/feeds/c/{cid}/atom", params={"share": token}).content)
    assert [e.title for e in feed.entries] == ["Public", "Unlisted", "Private"]
    # Revoked: 404 everywhere, files included, even for items anyone may see.
    assert client.delete(f"/api/v1/collections/{cid}/shares/{link_id}", headers=album["alice"]).status_code == 204
    for path in (f"/c/{cid}", f"/api/v1/collections/{cid}", f"/feeds/c/{cid}/atom", f"/u/alice/m/{ids['private']}",
                 f"/m/{ids['private']}/r/thumbnail", f"/m/{ids['public']}/r/thumbnail", f"/u/alice/m/{ids['public']}"):
        assert client.get(path, params={"share": token}).status_code == 404, path
    shares = client.get(f"/api/v1/collections/{cid}/shares", headers=album["alice"]).json()
    assert [s["state"] for s in shares] == ["revoked"]


def test_an_expired_link_answers_404(client, rt, album):  # type: ignore[no-untyped-def]
    cid, ids = album["id"], album["media"]
    link_id, token = _share(client, album, expires_in_days=1)
    assert client.get(f"/c/{cid}", params={"share": token}).status_code == 200
    with rt.sessions() as session:
        session.get(ShareLink, link_id).expires = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)  # type: ignore[union-attr]
        session.commit()
    for path in (f"/c/{cid}", f"/m/{ids['private']}/r/thumbnail", f"/feeds/c/{cid}/atom"):
        assert client.get(path, params={"share": token}).status_code == 404, path
    assert client.get(f"/c/{cid}", params={"share": "made-up"}).status_code == 404


def test_an_item_made_private_leaves_the_collection_page_feed_and_api_at_once(client, rt, album):  # type: ignore[no-untyped-def]
    cid, ids = album["id"], album["media"]
    assert "Public" in client.get(f"/c/{cid}").text
    assert [e.title for e in feedparser.parse(client.get(f"/feeds/c/{cid}/atom").content).entries] == ["Public",
                                                                                                      "Unlisted"]
    assert client.patch(f"/api/v1/media/{ids['public']}", headers=album["alice"],
                        json={"visibility": "private"}).status_code == 200
    assert titles(client.get(f"/api/v1/collections/{cid}")) == ["Unlisted"]
    assert f"/u/alice/m/{ids['public']}" not in client.get(f"/c/{cid}").text
    assert [e.title for e in feedparser.parse(client.get(f"/feeds/c/{cid}/atom").content).entries] == ["Unlisted"]


def test_feed_is_valid_atom_in_collection_order(client, album):  # type: ignore[no-untyped-def]
    cid, ids = album["id"], album["media"]
    client.put(f"/api/v1/collections/{cid}/order", headers=album["alice"], json={"media_ids": [ids["unlisted"]]})
    resp = client.get(f"/feeds/c/{cid}/atom")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/atom+xml")
    feed = feedparser.parse(resp.content)
    assert not feed.bozo, feed.bozo_exception
    assert feed.version == "atom10" and feed.feed.title.startswith("Trip")
    assert [e.link for e in feed.entries] == [f"{BASE_URL}/u/alice/m/{ids['unlisted']}",
                                              f"{BASE_URL}/u/alice/m/{ids['public']}"]


def test_lists_and_the_media_page(client, rt, album):  # type: ignore[no-untyped-def]
    cid, ids = album["id"], album["media"]
    hidden = client.post("/api/v1/collections", headers=album["alice"],
                         json={"title": "Secret", "visibility": "unlisted"})
    listed = client.get("/api/v1/users/alice/collections").json()["collections"]
    assert [c["title"] for c in listed] == ["Trip"]
    assert [c["title"] for c in client.get("/api/v1/users/alice/collections", headers=album["alice"]).json()[
        "collections"]] == ["Secret", "Trip"]
    assert "Trip" in client.get("/u/alice/collections").text and "Secret" not in client.get("/u/alice/collections").text
    media_page = client.get(f"/u/alice/m/{ids['public']}")
    assert f'href="/c/{cid}"' in media_page.text and "Add to a collection" not in media_page.text
    browser = login(rt, "alice")
    own = browser.get(f"/u/alice/m/{ids['public']}")
    assert "Add to a collection" in own.text and "Secret" in own.text
    resp = form_post(browser, "/collections/items", {"collection_id": str(hidden.json()["id"]),
                                                     "media_id": str(ids["public"]), "note": "hi"},
                     page=f"/u/alice/m/{ids['public']}")
    assert resp.status_code == 200 and "Added to" in resp.text
    resp = form_post(browser, "/collections/new", {"title": "From the page", "media_id": str(ids["private"])},
                     page="/collections/new")
    assert resp.status_code == 200 and "From the page" in resp.text and "Private" in resp.text
    assert 'href="/u/alice/collections"' in client.get("/u/alice").text


def test_pages_manage_collaborators_shares_and_deletion(client, rt, album):  # type: ignore[no-untyped-def]
    cid = album["id"]
    browser = login(rt, "alice")
    resp = form_post(browser, f"/c/{cid}/collaborators", {"username": "carol"}, page=f"/c/{cid}/edit")
    assert resp.status_code == 200 and "carol" in resp.text
    resp = form_post(browser, f"/c/{cid}/shares", {"label": "friends", "days": "7"}, page=f"/c/{cid}/edit")
    found = re.search(r"/c/\d+\?share=([\w-]+)", resp.text)
    assert resp.status_code == 200 and found
    assert client.get(f"/c/{cid}", params={"share": found.group(1)}).status_code == 200
    bad = form_post(browser, f"/c/{cid}/shares", {"days": "0"}, page=f"/c/{cid}/edit")
    assert bad.status_code == 422 and "days" in bad.text
    resp = form_post(browser, f"/c/{cid}/edit", {"title": "", "visibility": "public"}, page=f"/c/{cid}/edit")
    assert resp.status_code == 422 and "title" in resp.text
    assert form_post(login(rt, "bob"), f"/c/{cid}/delete", {"confirm": "yes"}, page=f"/c/{cid}").status_code == 403
    resp = form_post(browser, f"/c/{cid}/delete", {"confirm": "yes"}, page=f"/c/{cid}/edit")
    assert resp.status_code == 200 and client.get(f"/c/{cid}").status_code == 404
    with rt.sessions() as session:  # the items are still there
        assert session.get(MediaEntry, album["media"]["public"]) is not None


def test_service_refusals_are_sentences(rt, album):  # type: ignore[no-untyped-def]
    with rt.sessions() as session:
        alice = accounts.get_user(session, "alice")
        collection = service.get_collection(session, album["id"])
        for call, code in ((lambda: service.create(session, alice, " "), "no_title"),
                           (lambda: service.create(session, alice, "x" * 201), "title_too_long"),
                           (lambda: service.create(session, alice, "ok", visibility="secret"), "bad_visibility"),
                           (lambda: service.update(session, alice, collection, cover_media_id=999), "bad_cover"),
                           (lambda: service.invite(session, alice, collection, "alice"), "own_collection"),
                           (lambda: service.invite(session, alice, collection, "bob"), "already_collaborator"),
                           (lambda: service.items_page(session, collection, None, None, "x", 10), "bad_cursor")):
            with pytest.raises(Exception) as refused:
                call()
            assert getattr(refused.value, "code", None) == code and refused.value.message.endswith(".")


def test_items_are_paged_in_order(client, rt, album):  # type: ignore[no-untyped-def]
    with rt.sessions() as session:
        collection = service.get_collection(session, album["id"])
        alice = accounts.get_user(session, "alice")
        first = service.items_page(session, collection, alice, None, None, 2)
        second = service.items_page(session, collection, alice, None, first.next_cursor, 2)
        assert [i.media.title for i in first.items + second.items] == ["Public", "Unlisted", "Private"]
        assert second.next_cursor is None
    resp = client.get(f"/api/v1/collections/{album['id']}", params={"limit": 1})
    assert len(resp.json()["items"]) == 1 and resp.json()["next"]
    assert titles(client.get(f"/api/v1/collections/{album['id']}", params={"cursor": resp.json()["next"]})) == [
        "Unlisted"]


def test_cli_list_show_create_add(kiln, images):  # type: ignore[no-untyped-def]
    kiln("adduser", "dora", "--email", "dora@example.com", "--password", "correct horse")
    kiln("addmedia", "dora", str(images["plain"]), "--title", "Dune")
    made = json.loads(kiln("collections", "create", "dora", "Walks", "--visibility", "unlisted", "--json").output)
    media_id = json.loads(kiln("media", "list", "--json").output)[0]["id"]
    kiln("collections", "add", str(made["id"]), str(media_id), "--note", "windy")
    shown = json.loads(kiln("collections", "show", str(made["id"]), "--json").output)
    assert shown["title"] == "Walks" and [(i["title"], i["note"]) for i in shown["items"]] == [("Dune", "windy")]
    listed = json.loads(kiln("collections", "list", "dora", "--json").output)
    assert [c["title"] for c in listed] == ["Walks"]
    assert "Walks" in kiln("collections", "list", "dora").output
    assert kiln("collections", "show", "999", ok=False).exit_code == 1


def test_uploads_go_straight_into_a_collection(client, rt, images, album):  # type: ignore[no-untyped-def]
    cid = album["id"]
    browser = login(rt, "bob")  # a collaborator
    form = browser.get(f"/upload?collection={cid}")
    assert re.search(rf'<option value="{cid}" selected>Trip \(alice\)</option>', form.text)
    files = [("file", (f"p{n}.jpg", images["plain"].read_bytes(), "image/jpeg")) for n in range(3)]
    resp = browser.post("/upload", data={"csrf_token": csrf(browser, "/upload"), "collection_id": str(cid),
                                         "title": "Walk"}, files=files)
    assert resp.status_code == 200, resp.text
    got = client.get(f"/api/v1/collections/{cid}", headers=album["bob"]).json()["items"]
    assert [i["title"] for i in got][-3:] == ["Walk (1)", "Walk (2)", "Walk (3)"]
    # The API takes collection_id too; a collection the sender may not add to refuses before the file is taken.
    with images["plain"].open("rb") as fh:
        made = client.post("/api/v1/media", headers=album["alice"], files={"file": ("a.jpg", fh, "image/jpeg")},
                           data={"title": "By API", "collection_id": str(cid)})
    assert made.status_code == 202, made.text
    assert titles(client.get(f"/api/v1/collections/{cid}"))[-1] == "By API"
    with images["plain"].open("rb") as fh:
        refused = client.post("/api/v1/media", headers=album["carol"], files={"file": ("c.jpg", fh, "image/jpeg")},
                              data={"collection_id": str(cid)})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "not_collaborator"
    with rt.sessions() as session:
        assert session.query(MediaEntry).filter_by(owner_id=accounts.get_user(session, "carol").id).count() == 0


def test_openapi_documents_the_collection_operations(client):  # type: ignore[no-untyped-def]
    schema = client.get("/api/openapi.json").json()
    ops = {(path, method) for path, item in schema["paths"].items() for method in item if "collections" in path}
    assert ops == {("/api/v1/collections", "post"), ("/api/v1/collections/{collection_id}", "get"),
                   ("/api/v1/collections/{collection_id}", "patch"), ("/api/v1/collections/{collection_id}", "delete"),
                   ("/api/v1/collections/{collection_id}/items", "post"),
                   ("/api/v1/collections/{collection_id}/items/{media_id}", "delete"),
                   ("/api/v1/collections/{collection_id}/order", "put"),
                   ("/api/v1/users/{username}/collections", "get"),
                   ("/api/v1/collections/{collection_id}/collaborators", "get"),
                   ("/api/v1/collections/{collection_id}/collaborators", "post"),
                   ("/api/v1/collections/{collection_id}/collaborators/{username}", "delete"),
                   ("/api/v1/collections/{collection_id}/shares", "get"),
                   ("/api/v1/collections/{collection_id}/shares", "post"),
                   ("/api/v1/collections/{collection_id}/shares/{link_id}", "delete")}
    assert all(op["tags"] == ["collections"] for path, item in schema["paths"].items() if "collections" in path
               for op in item.values())
    assert "collection_id" in str(schema["paths"]["/api/v1/media"]["post"]["requestBody"])
