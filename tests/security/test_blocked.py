"""The authorization matrix from a blocked person's side: "bea", whom the owner (olivia) blocks, asks
every GET of the matrix (test_matrix.CASES, areas included) about the owner's media, collections,
comments and profile, and is answered as for something that does not exist (404) wherever "other"
(a stranger with no block) is let in; everything else answers her as it answers "other". Then the
things she might do to the owner are refused with a sentence, and the owner's items are missing
from every listing she reads.

A new role in the matrix itself would need an answer in every entry of every area; this walk asks
the same routes with the same world instead (kiln.social.blocks).
"""

from __future__ import annotations

import pytest

from kiln.accounts import services as accounts
from kiln.accounts.models import User
from kiln.social import blocks
from tests.security.area_federation import FOR_SERVERS
from tests.security.conftest import PASSWORD, USERNAMES, World
from tests.security.matrix_kit import Case
from tests.security.test_matrix import CASES, fill

pytestmark = pytest.mark.db
BLOCKED = "bea"
OWNER_PARAMS = ("{username}", "{media_id}", "{collection_id}", "{comment_id}")


@pytest.fixture(scope="module")
def blocked(world: World) -> World:
    with world.rt.sessions() as session:
        bea = accounts.create_user(session, BLOCKED, f"{BLOCKED}@example.com", PASSWORD, verified=True)
        session.flush()
        owner = session.get(User, world.users["owner"])
        assert owner is not None
        blocks.add(session, owner, bea, "block")
        session.commit()
        world.users["blocked"] = bea.id
    return world


def _about_the_owner(case: Case, world: World) -> bool:
    if any(param in case.path for param in OWNER_PARAMS):
        return True
    named = {case.ids.get("name", "name")} | {case.ids.get("username", "username")}
    if "{name}" in case.path and any(world.ids.get(key) == USERNAMES["owner"] for key in named):
        return True
    params = case.send(world).get("params") or {}
    if isinstance(params, dict) and params.get("type") in ("media", "collection", "comment"):
        return True  # /report?type=...&id=...: the world's items, collections and comments are on the owner's things
    return USERNAMES["owner"] in str(params)


def _wanted(case: Case, world: World) -> tuple[int, ...]:
    others = case.expect["other"]
    if not _about_the_owner(case, world):
        return others
    if any(status < 400 for status in others):
        return (404,)
    return tuple(sorted({*others, 404}))  # refused (403) to a stranger: may already be 404 to her


# What other servers read (ActivityPub) answers alike whoever is logged in: logins are not looked at there,
# so a block between two local accounts cannot show (an anonymous request would get the same answer).
GETS = [case for case in CASES if case.method == "GET" and case.path not in ("/static", "/api/docs/assets")
        and case.path not in FOR_SERVERS]


@pytest.mark.parametrize("case", GETS, ids=lambda c: c.name)
def test_every_read_as_the_blocked_person(blocked: World, case: Case) -> None:
    response = blocked.request("blocked", case.method, fill(case, blocked), **case.send(blocked))
    want = _wanted(case, blocked)
    assert response.status_code in want, f"{case.name}: got {response.status_code}, expected {want}"


def test_what_she_might_do_to_the_owner_is_refused(blocked: World) -> None:
    media = blocked.media["public"]
    name = USERNAMES["owner"]
    for method, path, payload in (("PUT", f"/api/v1/users/{name}/follow", None),
                                  ("POST", f"/u/{name}/follow", None)):
        answer = blocked.request("blocked", method, path, json=payload)
        assert answer.status_code == 403, path
        assert f"You cannot follow {name}: they have blocked you." in answer.text
    for method, path, payload in (("POST", f"/api/v1/media/{media}/comments", {"body": "hi"}),
                                  ("PUT", f"/api/v1/media/{media}/favourite", None),
                                  ("POST", f"/api/v1/collections/{blocked.ids['collection_id']}/items",
                                   {"media_id": media})):
        assert blocked.request("blocked", method, path, json=payload).status_code == 404, path


def test_the_owners_items_are_left_out_of_her_listings(blocked: World) -> None:
    title = "Public"  # the owner's public item (tests/security/conftest.py)
    for path in ("/", "/tag/matrix", "/api/v1/media", "/api/v1/media?tag=matrix"):
        seen_by_other = blocked.request("other", "GET", path).text
        seen_by_her = blocked.request("blocked", "GET", path).text
        assert f"/m/{blocked.media['public']}" in seen_by_other and title in seen_by_other, path
        assert f"/m/{blocked.media['public']}" not in seen_by_her, path
