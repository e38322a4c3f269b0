"""Albums to ActivityPub clients (kiln.federation.albums): a public album's page answers with an
``OrderedCollection`` of its items' Note ids, in the album's order, 20 a page; only what a remote,
anonymous reader may see as a Note is listed or counted; unlisted, private and removed albums, and a
banned owner's, are 404 whatever the request carries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from kiln.accounts import services as accounts
from kiln.accounts.models import User
from kiln.db.base import utcnow
from kiln.media.models import MediaEntry, MediaState, Rendition
from kiln.runtime import Runtime
from kiln.social import collections as service
from kiln.social import shares
from kiln.social.models import Collection
from tests.federation.conftest import AP
from tests.federation.test_follow import ALICE

pytestmark = pytest.mark.db
LD = 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
BOB = "http://testserver/u/bob"


def _user(session: Any, name: str) -> User:
    user = session.scalar(select(User).where(User.username == name))
    if user is None:
        user = accounts.create_user(session, name, f"{name}@example.com", "correct horse", verified=True)
        session.flush()
    return user


def add_media(rt: Runtime, owner: str, *kinds: str) -> list[int]:
    """Items straight in the database, one per kind: a visibility ("public", "unlisted", "private"),
    "queued" (not processed yet) or "removed" (public, removed by the moderators)."""
    with rt.sessions() as session:
        user = _user(session, owner)
        made = []
        for n, kind in enumerate(kinds):
            media = MediaEntry(owner=user, kind="image", title=f"{owner} {n}", original_key=[], mime_type="image/jpeg",
                               width=64, height=48, info={},
                               state=MediaState.QUEUED if kind == "queued" else MediaState.PROCESSED,
                               visibility=kind if kind in ("public", "unlisted", "private") else "public",
                               published=None if kind == "queued" else utcnow() - dt.timedelta(minutes=n),
                               removed=utcnow() if kind == "removed" else None)
            session.add(media)
            session.flush()
            media.renditions.append(Rendition(name="medium", key=media.rendition_key("medium.jpg"),
                                              mime_type="image/jpeg", width=64, height=48, size_bytes=100,
                                              spec_fingerprint="x"))
            made.append(media)
        session.commit()
        return [m.id for m in made]


def make_album(rt: Runtime, items: dict[str, list[int]], visibility: str = "public", order: list[int] | None = None,
               description: str = "") -> int:
    """An album of alice's with ``items`` ({owner: media ids}, each added by its owner, a collaborator
    when not alice), in ``order`` if given."""
    with rt.sessions() as session:
        alice = _user(session, "alice")
        album = service.create(session, alice, "Red things", description, visibility)
        for owner, ids in items.items():
            if owner != "alice":
                service.invite(session, alice, album, owner)
            adder = _user(session, owner)
            for media_id in ids:
                service.add_item(session, adder, album, session.get(MediaEntry, media_id))
        if order is not None:
            service.reorder(session, alice, album, order)
        session.commit()
        return album.id


def ap(client: TestClient, path: str, accept: str = AP) -> Any:
    response = client.get(path, headers={"Accept": accept})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/activity+json")
    if not path.startswith("/ap/"):  # the page's own address (the app's inner route says nothing)
        assert "Accept" in response.headers["vary"]
    return response.json()


def walk(client: TestClient, first: str) -> Iterator[dict[str, Any]]:
    """Every page, following ``next``."""
    address: str | None = first
    while address is not None:
        page = ap(client, address.removeprefix("http://testserver"))
        yield page
        address = page.get("next")


def test_a_public_album_is_an_ordered_collection_of_its_notes(fed, fed_rt):
    public, unlisted, private, queued, removed = add_media(fed_rt, "alice", "public", "unlisted", "private",
                                                           "queued", "removed")
    (bobs,) = add_media(fed_rt, "bob", "public")
    album = make_album(fed_rt, {"alice": [public, unlisted, private, queued, removed], "bob": [bobs]},
                       order=[bobs, private, unlisted, removed, public, queued],
                       description="A *red* album <script>alert(1)</script>")
    address = f"http://testserver/c/{album}"

    document = ap(fed, f"/c/{album}")
    assert document == ap(fed, f"/c/{album}/", LD) == ap(fed, f"/ap/c/{album}")
    assert document["id"] == address and document["url"] == address and document["type"] == "OrderedCollection"
    assert document["name"] == "Red things" and document["attributedTo"] == ALICE
    assert "<em>red</em>" in document["summary"] and "<script" not in document["summary"]
    assert document["totalItems"] == 3  # not the private, unfinished or removed item
    assert document["first"] == f"{address}?page=1"

    (page,) = walk(fed, document["first"])
    assert page["type"] == "OrderedCollectionPage" and page["partOf"] == address and page["id"] == f"{address}?page=1"
    # In the album's order; a collaborator's item under its own owner's name.
    assert page["orderedItems"] == [f"{BOB}/m/{bobs}", f"{ALICE}/m/{unlisted}", f"{ALICE}/m/{public}"]
    assert "next" not in page
    # Each is exactly a Note its page serves; what is left out is not served either.
    for note in page["orderedItems"]:
        assert ap(fed, note.removeprefix("http://testserver"))["id"] == note
    for media_id in (private, queued, removed):
        assert fed.get(f"/u/alice/m/{media_id}", headers={"Accept": AP}).status_code == 404

    # Browsers still get the album's page, which says it varies too.
    html = fed.get(f"/c/{album}")
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert "Red things" in html.text and "Accept" in html.headers["vary"]

    # A collaborator banned since: their item goes from the album's Notes, as from their page.
    with fed_rt.sessions() as session:
        _user(session, "bob").banned = True
        session.commit()
    assert ap(fed, f"/c/{album}")["totalItems"] == 2
    assert ap(fed, f"/c/{album}?page=1")["orderedItems"] == [f"{ALICE}/m/{unlisted}", f"{ALICE}/m/{public}"]


def test_albums_others_may_not_see_are_404(fed, fed_rt):
    (public,) = add_media(fed_rt, "alice", "public")
    unlisted = make_album(fed_rt, {"alice": [public]}, "unlisted")
    private = make_album(fed_rt, {"alice": [public]}, "private")
    removed = make_album(fed_rt, {"alice": [public]})
    banned = make_album(fed_rt, {"alice": [public]})
    with fed_rt.sessions() as session:
        alice = _user(session, "alice")
        _row, token = shares.make_share(session, alice, session.get(Collection, private))
        removed_row = session.get(Collection, removed)
        assert removed_row is not None
        removed_row.removed = utcnow()
        session.commit()
    # To people, the unlisted album and the shared private one are there.
    assert fed.get(f"/c/{unlisted}").status_code == 200
    assert fed.get(f"/c/{private}", params={"share": token}).status_code == 200

    def refused(album: int, **params: str) -> None:
        for path in (f"/c/{album}", f"/ap/c/{album}"):
            for query in ({}, {"page": "1"}):
                response = fed.get(path, params={**params, **query}, headers={"Accept": AP})
                assert response.status_code == 404, (path, query)
                assert response.json()["error"]["code"] == "not_found"

    refused(unlisted)
    refused(private)
    refused(private, share=token)  # share links are for people, never for other servers
    refused(removed)
    refused(999_999)
    assert ap(fed, f"/c/{banned}")["totalItems"] == 1
    with fed_rt.sessions() as session:
        _user(session, "alice").banned = True
        session.commit()
    refused(banned)


def test_an_album_is_paginated_in_its_order(fed, fed_rt):
    from kiln.federation import actors

    assert actors.COLLECTION_PAGE == 20
    kinds = ["private" if n % 7 == 3 else "public" for n in range(50)]  # 7 private among them
    ids = add_media(fed_rt, "alice", *kinds)
    order = list(reversed(ids))
    album = make_album(fed_rt, {"alice": ids}, order=order)
    shown = [f"{ALICE}/m/{i}" for i, kind in zip(order, reversed(kinds), strict=True) if kind == "public"]
    assert len(shown) == 43

    document = ap(fed, f"/c/{album}")
    assert document["totalItems"] == 43
    pages = list(walk(fed, document["first"]))
    assert [len(p["orderedItems"]) for p in pages] == [20, 20, 3]
    assert [note for p in pages for note in p["orderedItems"]] == shown
    assert all(p["partOf"] == f"http://testserver/c/{album}" for p in pages)
    assert pages[1]["id"] == pages[0]["next"] and "&before=" in pages[0]["next"]

    # A page link that is not one is 422, as JSON; only page=1 exists (the rest is by ``before``).
    broken = fed.get(f"/c/{album}", params={"page": "1", "before": "x"}, headers={"Accept": AP})
    assert broken.status_code == 422 and broken.json()["error"]["code"] == "bad_cursor"
    assert fed.get(f"/ap/c/{album}", params={"page": "2"}).status_code == 422


def test_turned_off_federation_serves_no_album(tmp_path, db_url):
    from kiln.app import create_app
    from tests.conftest import BASE_URL, inline_runtime, make_settings

    settings = make_settings(tmp_path / "off", db_url, federation={"enabled": False})
    for rt in inline_runtime(settings):
        (public,) = add_media(rt, "alice", "public")
        album = make_album(rt, {"alice": [public]})
        with TestClient(create_app(settings, rt), base_url=BASE_URL) as client:
            assert client.get(f"/ap/c/{album}").status_code == 404
            assert client.get(f"/c/{album}", headers={"Accept": AP}).headers["content-type"].startswith("text/html")
