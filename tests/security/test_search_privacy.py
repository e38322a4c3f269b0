"""What every role finds by searching the matrix's world: the owner's unlisted and private items
only for the owner (by cookie or token), never for anyone else, admins and moderators included; a
failed item for nobody. Through the page, the API and the feed, by words and by filters."""

from __future__ import annotations

import re

import pytest

from tests.security.conftest import ROLES, World

pytestmark = pytest.mark.db
OWNER_SIDE = {"owner", "token_read_owner", "token_write_owner"}


def _found_by_api(world: World, role: str, params: dict[str, str]) -> set[int]:
    resp = world.request(role, "GET", "/api/v1/search", params={**params, "limit": "100"})
    assert resp.status_code == 200, resp.text
    return {item["id"] for item in resp.json()["items"]}


def _found_on_page(world: World, role: str, params: dict[str, str]) -> set[int]:
    resp = world.request(role, "GET", "/search", params=params)
    assert resp.status_code == 200, resp.text
    return {int(n) for n in re.findall(r'href="/u/[^/"]+/m/([0-9]+)"', resp.text)}


@pytest.mark.parametrize("role", ROLES)
def test_each_role_finds_only_what_it_may_see(world: World, role: str) -> None:
    hidden = {world.media["unlisted"], world.media["private"]}
    for params in ({"q": "matrix"}, {"tag": "matrix"}, {"q": "private"},
                   {"q": "unlisted"}, {"owner": "olivia", "sort": "oldest"}):
        # Pages take no bearer token: a token role is a visitor there.
        for found, owner_side in ((_found_by_api(world, role, params), role in OWNER_SIDE),
                                  (_found_on_page(world, role, params), role == "owner")):
            assert world.media["failed"] not in found
            if owner_side:
                if "q" not in params or params["q"] in ("private", "unlisted"):
                    expected = {"private": {world.media["private"]}, "unlisted": {world.media["unlisted"]}}.get(
                        params.get("q", ""), hidden)
                    assert expected <= found, (role, params)
            else:
                assert not found & hidden, (role, params)
    feed = world.request(role, "GET", "/feeds/search/atom", params={"q": "private"})
    assert feed.status_code == 200 and f"/m/{world.media['private']}" not in feed.text
