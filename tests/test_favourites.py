"""Favourites: idempotent marking and unmarking of visible items, the count, one notification however
often someone changes their mind, the button and the pages, and the API (``favourited`` on lists in
one query)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from kiln.runtime import Runtime
from kiln.social import favourites
from kiln.social.models import Notification
from tests.test_comments import Site, counting, make_site


@pytest.fixture
def site(rt: Runtime, client: TestClient) -> Site:
    return make_site(rt, client)


def fav(site: Site, who: str, media_id: int | None = None, on: bool = True) -> bool:
    with site.rt.sessions() as session:
        call = favourites.favourite if on else favourites.unfavourite
        return call(session, site.user(session, who), site.media(session, media_id))


@pytest.mark.db
def test_favouriting_is_idempotent_counted_and_notifies_once(site: Site) -> None:
    with site.rt.sessions() as session:
        before = site.media(session).updated
    assert fav(site, "bob") is True and fav(site, "bob") is False
    assert fav(site, "carol") is True
    assert fav(site, "bob", on=False) is True and fav(site, "bob", on=False) is False
    assert fav(site, "bob") is True  # changed his mind again: alice is not told a second time
    assert fav(site, "alice") is True  # her own item: nobody to tell
    with site.rt.sessions() as session:
        media = site.media(session)
        assert media.favourite_count == 3 and media.updated == before
    assert site.notifications("alice") == [("favourite", "bob"), ("favourite", "carol")]
    with site.rt.sessions() as session:  # once she has read it, a new favourite is news again
        session.execute(update(Notification).values(read=Notification.created))
        session.commit()
    fav(site, "bob", on=False)
    fav(site, "bob")
    assert site.notifications("alice")[-1] == ("favourite", "bob") and len(site.notifications("alice")) == 3


@pytest.mark.db
def test_only_visible_items_can_be_favourited(site: Site) -> None:
    private = site.upload(visibility="private")
    assert site.request("PUT", f"/api/v1/media/{private}/favourite", headers=site.api("bob")).status_code == 404
    assert site.request("POST", f"/m/{private}/favourite", headers=site.page("bob")).status_code == 404
    assert site.request("PUT", f"/api/v1/media/{site.media_id}/favourite").status_code == 401
    assert site.request("PUT", f"/api/v1/media/{private}/favourite", headers=site.api("alice")).json() == \
        {"favourited": True, "favourites": 1}
    # An item made private after bob favourited it leaves his list (and its count stays the owner's business).
    fav(site, "bob")
    assert [m["id"] for m in site.request("GET", "/api/v1/favourites", headers=site.api("bob")).json()["items"]] \
        == [site.media_id]
    site.request("PATCH", f"/api/v1/media/{site.media_id}", headers=site.api("alice"), json={"visibility": "private"})
    assert site.request("GET", "/api/v1/favourites", headers=site.api("bob")).json()["items"] == []
    assert site.request("DELETE", f"/api/v1/media/{site.media_id}/favourite",
                        headers=site.api("bob")).status_code == 404


@pytest.mark.db
def test_the_button_the_counts_and_the_pages(site: Site) -> None:
    page = site.request("GET", f"/u/alice/m/{site.media_id}", headers=site.page("bob")).text
    assert 'aria-pressed="false"' in page and "0 favourites" in page
    assert f'action="/m/{site.media_id}/favourite"' not in site.request(
        "GET", f"/u/alice/m/{site.media_id}").text  # no button for visitors, just the count
    pressed = site.request("POST", f"/m/{site.media_id}/favourite", headers=site.page("bob"), data={"favourite": "1"})
    assert pressed.status_code == 303 and pressed.headers["location"].endswith("#favourite")
    page = site.request("GET", f"/u/alice/m/{site.media_id}", headers=site.page("bob")).text
    assert 'aria-pressed="true"' in page and "1 favourite" in page and 'name="favourite" value="0"' in page
    gallery = site.request("GET", "/u/alice").text
    assert "♥ 1" in gallery and "1 favourite, 0 comments" in gallery
    mine = site.request("GET", "/favourites", headers=site.page("bob")).text
    assert f"/u/alice/m/{site.media_id}" in mine
    assert "Nothing here yet" in site.request("GET", "/favourites", headers=site.page("carol")).text
    who = site.request("GET", f"/m/{site.media_id}/favourites", headers=site.page("alice"))
    assert who.status_code == 200 and "/u/bob" in who.text
    assert site.request("GET", f"/m/{site.media_id}/favourites", headers=site.page("carol")).status_code == 403
    owner_view = site.request("GET", f"/u/alice/m/{site.media_id}", headers=site.page("alice")).text
    assert f"/m/{site.media_id}/favourites" in owner_view
    site.request("POST", f"/m/{site.media_id}/favourite", headers=site.page("bob"), data={"favourite": "0"})
    assert "0 favourites" in site.request("GET", f"/u/alice/m/{site.media_id}").text


@pytest.mark.db
def test_my_favourites_are_keyset_paginated_newest_first(site: Site) -> None:
    items = [site.upload() for _ in range(5)]
    for media_id in items:
        fav(site, "bob", media_id)
    site.rt.settings.per_page = 2
    seen, url = [], "/favourites"
    while url:
        page = site.request("GET", url, headers=site.page("bob")).text
        seen += [int(n) for n in re.findall(r'href="/u/alice/m/(\d+)"', page)]
        older = re.search(r'href="\?before=([0-9-]+)"', page)
        url = f"/favourites?before={older.group(1)}" if older else ""
    assert seen == items[::-1]
    got, cursor = [], None
    while True:
        body = site.request("GET", "/api/v1/favourites", headers=site.api("bob"),
                            params={"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
        got += [m["id"] for m in body["items"]]
        assert all(m["favourited"] for m in body["items"])
        cursor = body["next"]
        if not cursor:
            break
    assert got == items[::-1]
    assert site.request("GET", "/api/v1/favourites", headers=site.api("bob"),
                        params={"cursor": "garbage"}).status_code == 422


@pytest.mark.db
def test_media_json_says_favourited_with_one_query_per_list(site: Site) -> None:
    for _ in range(6):
        site.upload()
    fav(site, "bob")
    one = site.request("GET", f"/api/v1/media/{site.media_id}", headers=site.api("bob")).json()
    assert one["favourited"] is True and one["favourites"] == 1 and one["comments"] == 0
    assert site.request("GET", f"/api/v1/media/{site.media_id}", headers=site.api("carol")).json()["favourited"] \
        is False
    put = site.request("PUT", f"/api/v1/media/{site.media_id}/favourite", headers=site.api("carol"))
    assert put.json() == {"favourited": True, "favourites": 2}
    gone = site.request("DELETE", f"/api/v1/media/{site.media_id}/favourite", headers=site.api("carol"))
    assert gone.json() == {"favourited": False, "favourites": 1}
    cost = {}
    for limit in (2, 7):
        with counting(site.rt) as statements:
            listed = site.request("GET", "/api/v1/media", headers=site.api("bob"), params={"limit": limit}).json()
        cost[limit] = len(statements)
        with counting(site.rt) as statements:
            site.request("GET", "/api/v1/media", params={"limit": limit})
        cost[limit] -= len(statements)  # what being logged in adds: the token and the favourites
    assert cost[2] == cost[7], cost
    assert [m["favourited"] for m in listed["items"]] == [m["id"] == site.media_id for m in listed["items"]]
    fans = site.request("GET", f"/api/v1/media/{site.media_id}/favourites", headers=site.api("alice")).json()
    assert [f["username"] for f in fans["items"]] == ["bob"] and fans["next"] is None
    assert site.request("GET", f"/api/v1/media/{site.media_id}/favourites",
                        headers=site.api("bob")).status_code == 403
