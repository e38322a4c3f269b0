"""Blocks and mutes (kiln.social.blocks): each refusal says why, the blocker's things do not exist for
the blocked, listings and threads leave hidden people out (kept pages and fragments included),
follows end, undoing restores, and viewers with no block pay nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select

from kiln.accounts.models import User
from kiln.runtime import Runtime
from kiln.social import blocks, collections, favourites, follows
from kiln.social.models import CollectionCollaborator, Comment
from tests.social_kit import api, log_in, person, post, text, upload

pytestmark = pytest.mark.db


def _as(client: TestClient, rt: Runtime, user_id: int) -> TestClient:
    log_in(client, rt, user_id)
    return client


def _block(rt: Runtime, who: int, whom: int, kind: str = "block") -> None:
    with rt.sessions() as session:
        assert blocks.add(session, session.get(User, who), session.get(User, whom), kind)  # type: ignore[arg-type]
        session.commit()


def _comment(rt: Runtime, author: int, media_id: int, body: str, parent: int | None = None) -> int:
    from kiln.media.models import MediaEntry
    from kiln.social import comments

    with rt.sessions() as session:
        media = session.get(MediaEntry, media_id)
        made = comments.post(rt, session, session.get(User, author), media, body, parent)  # type: ignore[arg-type]
        return made.id


def _upload_tagged(rt: Runtime, owner_id: int, title: str) -> int:
    import io

    from kiln.media import services as media_service
    from tests.social_kit import png

    with rt.sessions() as session:
        owner = session.get(User, owner_id)
        assert owner is not None
        return media_service.submit(rt, session, owner, io.BytesIO(png()), "p.png",
                                    media_service.MediaFields(title=title, tags="sky")).id


@pytest.fixture
def people(rt: Runtime) -> dict[str, int]:
    """ada blocks bob; cleo and dan have no block."""
    return {name: person(rt, name) for name in ("ada", "bob", "cleo", "dan")}


def test_each_refusal_says_why(client: TestClient, rt: Runtime, people: dict[str, int]) -> None:
    ada, bob, cleo = people["ada"], people["bob"], people["cleo"]
    ada_item, bob_item, cleo_item = upload(rt, ada, "Ada's"), upload(rt, bob, "Bob's"), upload(rt, cleo, "Cleo's")
    ada_says = _comment(rt, ada, cleo_item, "Ada on Cleo's item")
    _as(client, rt, ada)
    answer = api(client, "PUT", "/api/v1/users/bob/block")
    assert answer.status_code == 200 and answer.json() == {"blocked": True, "muted": False}

    _as(client, rt, bob)
    refused = api(client, "PUT", "/api/v1/users/ada/follow")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "blocked" and refused.json()["error"]["message"] == (
        "You cannot follow ada: they have blocked you.")
    reply = api(client, "POST", f"/api/v1/media/{cleo_item}/comments", json={"body": "hi", "parent_id": ada_says})
    assert reply.status_code == 403
    assert reply.json()["error"]["message"] == "You cannot reply to ada: they have blocked you."
    assert api(client, "POST", f"/api/v1/media/{cleo_item}/comments", json={"body": "fine"}).status_code == 201
    # On the blocker's own items there is nothing to comment on or favourite: they do not exist for bob.
    assert api(client, "POST", f"/api/v1/media/{ada_item}/comments", json={"body": "x"}).status_code == 404
    assert api(client, "PUT", f"/api/v1/media/{ada_item}/favourite").status_code == 404
    with rt.sessions() as session:
        mine = collections.create(session, session.get(User, bob), "Bob's album")  # type: ignore[arg-type]
        session.commit()
        bobs_album = mine.id
    invite = api(client, "POST", f"/api/v1/collections/{bobs_album}/collaborators", json={"username": "ada"})
    assert invite.status_code == 403 and invite.json()["error"] == {
        "code": "blocked", "message": "You cannot invite ada: they have blocked you."}

    # The blocker is refused too, with what to do about it.
    _as(client, rt, ada)
    for method, path, payload in (("POST", f"/api/v1/media/{bob_item}/comments", {"body": "hi"}),
                                  ("PUT", f"/api/v1/media/{bob_item}/favourite", None),
                                  ("PUT", "/api/v1/users/bob/follow", None)):
        answer = api(client, method, path, json=payload)
        assert answer.status_code == 403, path
        assert answer.json()["error"] == {"code": "you_blocked", "message": "You have blocked bob: unblock them first."}
    with rt.sessions() as session:
        album = collections.create(session, session.get(User, ada), "Ada's album")  # type: ignore[arg-type]
        session.commit()
        adas_album = album.id
    invite = api(client, "POST", f"/api/v1/collections/{adas_album}/collaborators", json={"username": "bob"})
    assert invite.status_code == 403 and invite.json()["error"]["code"] == "you_blocked"
    # The pages say it too: the media page instead of its comment form, and the form's answer.
    shown = client.get(f"/u/bob/m/{bob_item}").text
    assert "You have blocked bob: unblock them first." in shown and 'name="body"' not in shown
    assert 'action="/u/bob/follow"' not in client.get("/u/bob").text
    page = post(client, f"/m/{bob_item}/comments", {"body": "hello"})
    assert page.status_code == 403 and "You have blocked bob: unblock them first." in page.text


def test_the_blockers_things_do_not_exist_for_the_blocked(client: TestClient, rt: Runtime,
                                                          people: dict[str, int]) -> None:
    ada, bob = people["ada"], people["bob"]
    item = upload(rt, ada, "Ada's")
    unlisted = upload(rt, ada, "Ada's unlisted", visibility="unlisted")
    with rt.sessions() as session:
        album = collections.create(session, session.get(User, ada), "Ada's album")  # type: ignore[arg-type]
        session.commit()
        album_id = album.id
    _block(rt, ada, bob)
    _as(client, rt, bob)
    for path in (f"/u/ada/m/{item}", f"/u/ada/m/{unlisted}", "/u/ada", "/u/ada/followers", "/u/ada/collections",
                 f"/c/{album_id}", f"/api/v1/media/{item}", "/api/v1/users/ada", f"/api/v1/media/{item}/comments",
                 f"/api/v1/collections/{album_id}", "/api/v1/users/ada/collections"):
        assert client.get(path).status_code == 404, path
    assert client.get("/api/v1/media", params={"user": "ada"}).status_code == 404
    # Anyone else, and the blocker, still see them; the blocker still reaches bob's profile, to unblock.
    _as(client, rt, people["cleo"])
    assert client.get(f"/u/ada/m/{item}").status_code == 200
    _as(client, rt, ada)
    profile = client.get("/u/bob")
    assert profile.status_code == 200 and 'action="/u/bob/unblock"' in profile.text
    client.cookies.clear()
    assert client.get(f"/u/ada/m/{item}").status_code == 200  # anonymous: no block applies


def test_listings_leave_the_blockers_items_out(client: TestClient, rt: Runtime, people: dict[str, int]) -> None:
    ada, bob, cleo = people["ada"], people["bob"], people["cleo"]
    from kiln.media.models import MediaEntry

    item, other = _upload_tagged(rt, ada, "Ada's sunset"), _upload_tagged(rt, cleo, "Cleo's sunrise")
    with rt.sessions() as session:
        album = collections.create(session, session.get(User, cleo), "Skies")  # type: ignore[arg-type]
        collections.invite(session, session.get(User, cleo), album, "ada")  # type: ignore[arg-type]
        collections.add_item(session, session.get(User, ada), album, session.get(MediaEntry, item))  # type: ignore[arg-type]
        collections.add_item(session, session.get(User, cleo), album, session.get(MediaEntry, other))  # type: ignore[arg-type]
        session.commit()
        album_id = album.id
    for followee in (ada, cleo):
        with rt.sessions() as session:
            follows.follow(session, session.get(User, bob), session.get(User, followee))  # type: ignore[arg-type]
            session.commit()
    with rt.sessions() as session:
        favourites.favourite(session, session.get(User, bob), session.get(MediaEntry, item))  # type: ignore[arg-type]
    pages = ("/", "/tag/sky", "/timeline", f"/c/{album_id}")
    # Someone with no block sees both first, so the grids are kept before bob asks.
    _as(client, rt, people["dan"])
    for path in pages[:2] + pages[3:]:
        assert "Ada&#39;s sunset" in client.get(path).text, path
    _as(client, rt, bob)
    assert "Ada&#39;s sunset" in client.get("/timeline").text
    assert len(client.get("/api/v1/favourites").json()["items"]) == 1
    _block(rt, ada, bob)
    for path in pages:
        shown = client.get(path)
        assert shown.status_code == 200 and "Ada&#39;s sunset" not in shown.text, path
        assert "Cleo&#39;s sunrise" in shown.text, path
    for path in ("/api/v1/media", "/api/v1/timeline", f"/api/v1/collections/{album_id}"):
        body = client.get(path).text
        assert "Ada's sunset" not in body and "Cleo's sunrise" in body, path
    assert client.get("/api/v1/favourites").json()["items"] == []  # favourited before the block
    # The block ended bob's follow of ada (he follows cleo still).
    with rt.sessions() as session:
        assert not follows.is_following(session, bob, ada) and follows.is_following(session, bob, cleo)


def test_a_block_ends_follows_both_ways_and_collaborations(rt: Runtime, people: dict[str, int]) -> None:
    ada, bob, cleo = people["ada"], people["bob"], people["cleo"]
    with rt.sessions() as session:
        a, b, c = session.get(User, ada), session.get(User, bob), session.get(User, cleo)
        assert a and b and c
        follows.follow(session, a, b)
        follows.follow(session, b, a)
        follows.follow(session, c, a)
        adas, bobs = collections.create(session, a, "A"), collections.create(session, b, "B")
        collections.invite(session, a, adas, "bob")
        collections.invite(session, b, bobs, "ada")
        session.commit()
        assert blocks.add(session, a, b, "block") is True
        assert blocks.add(session, a, b, "block") is False  # again: nothing changes
        session.commit()
        assert not follows.is_following(session, ada, bob) and not follows.is_following(session, bob, ada)
        assert follows.is_following(session, cleo, ada)
        assert session.scalars(select(CollectionCollaborator)).all() == []
        with pytest.raises(blocks.InvalidInput) as refused:
            blocks.add(session, a, a, "mute")
        assert refused.value.code == "block_self"
        assert (a.hiding, b.hiding, c.hiding) == (1, 1, 0)


def test_mute_hides_comments_and_media_even_from_kept_pages(client: TestClient, rt: Runtime,
                                                              people: dict[str, int]) -> None:
    ada, bob, cleo = people["ada"], people["bob"], people["cleo"]
    cleos, adas = upload(rt, cleo, "Cleo's"), upload(rt, ada, "Ada's")
    bobs = upload(rt, bob, "Bob's loud item")
    loud = _comment(rt, bob, cleos, "BOB SHOUTS")
    _comment(rt, bob, adas, "Bob on Ada's item")
    _comment(rt, cleo, cleos, "Cleo answers", parent=loud)
    _comment(rt, people["dan"], cleos, "Dan says hello")
    # Someone with no mute asks first: the media page's body and the thread are kept.
    _as(client, rt, people["dan"])
    assert "BOB SHOUTS" in client.get(f"/u/cleo/m/{cleos}").text
    _as(client, rt, ada)
    assert api(client, "PUT", "/api/v1/users/bob/mute").json() == {"blocked": False, "muted": True}
    page = text(client.get(f"/u/cleo/m/{cleos}").text)
    assert "BOB SHOUTS" not in page and "Cleo answers" not in page and "Dan says hello" in page
    listed = client.get(f"/api/v1/media/{cleos}/comments").json()["items"]
    assert [c["body"] for c in listed] == ["Dan says hello"]
    assert "Bob&#39;s loud item" not in client.get("/").text
    assert client.get(f"/u/bob/m/{bobs}").status_code == 200  # muted, not blocked: reachable by its link
    assert "Bob on Ada" in client.get(f"/u/ada/m/{adas}").text  # on her own media: hers to delete
    # Bob notices nothing and may still interact.
    _as(client, rt, bob)
    assert "Dan says hello" in client.get(f"/u/cleo/m/{cleos}").text
    assert api(client, "PUT", "/api/v1/users/ada/follow").status_code == 200
    _comment(rt, bob, adas, "Bob again on Ada's item")
    # Unmuting restores. What bob did while muted told ada nothing (his earlier comment did).
    _as(client, rt, ada)
    told = [n["type"] for n in client.get("/api/v1/notifications").json()["items"]]
    assert told == ["comment"], told
    assert api(client, "DELETE", "/api/v1/users/bob/mute").json() == {"blocked": False, "muted": False}
    assert "BOB SHOUTS" in client.get(f"/u/cleo/m/{cleos}").text
    assert "Bob&#39;s loud item" in client.get("/").text


def test_unblock_restores(client: TestClient, rt: Runtime, people: dict[str, int]) -> None:
    ada, bob = people["ada"], people["bob"]
    item = upload(rt, ada, "Ada's")
    _block(rt, ada, bob)
    _as(client, rt, ada)
    assert api(client, "DELETE", "/api/v1/users/bob/block").json() == {"blocked": False, "muted": False}
    with rt.sessions() as session:
        assert (session.get(User, ada).hiding, session.get(User, bob).hiding) == (0, 0)  # type: ignore[union-attr]
    _as(client, rt, bob)
    assert client.get(f"/u/ada/m/{item}").status_code == 200
    assert "Ada&#39;s" in client.get("/").text
    assert api(client, "PUT", "/api/v1/users/ada/follow").status_code == 200
    assert api(client, "PUT", f"/api/v1/media/{item}/favourite").status_code == 200


def test_the_blocks_page_and_the_profile_buttons(client: TestClient, rt: Runtime, people: dict[str, int]) -> None:
    _as(client, rt, people["ada"])
    profile = client.get("/u/bob")
    assert 'action="/u/bob/block"' in profile.text and 'action="/u/bob/mute"' in profile.text
    assert post(client, "/u/bob/block").headers["location"] == "/u/bob"
    assert post(client, "/u/cleo/mute").status_code == 303
    assert 'action="/u/bob/unblock"' in client.get("/u/bob").text
    listing = client.get("/account/blocks")
    assert listing.status_code == 200
    assert 'action="/u/bob/unblock"' in listing.text and 'action="/u/cleo/unmute"' in listing.text
    as_json = client.get("/api/v1/account/blocks").json()
    assert [p["username"] for p in as_json["blocked"]] == ["bob"]
    assert [p["username"] for p in as_json["muted"]] == ["cleo"]
    undone = post(client, "/u/bob/unblock", {"back": "blocks"})
    assert undone.status_code == 303 and undone.headers["location"] == "/account/blocks"
    assert 'action="/u/bob/unblock"' not in client.get("/account/blocks").text
    assert post(client, "/u/ada/block").status_code == 422  # not yourself
    client.cookies.clear()
    assert client.get("/account/blocks", follow_redirects=False).status_code == 303


@pytest.fixture
def statements(rt: Runtime) -> Iterator[list[str]]:
    seen: list[str] = []

    def note(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(rt.engine, "before_cursor_execute", note)
    yield seen
    event.remove(rt.engine, "before_cursor_execute", note)


def test_viewers_with_no_block_never_read_the_block_list(client: TestClient, rt: Runtime, people: dict[str, int],
                                                        statements: list[str]) -> None:
    cleo, dan = people["cleo"], people["dan"]
    item = upload(rt, cleo, "Cleo's")
    _comment(rt, dan, item, "Nice")
    _block(rt, people["ada"], people["bob"])  # blocks exist, just not dan's
    _as(client, rt, dan)
    statements.clear()
    for path in ("/", f"/u/cleo/m/{item}", "/u/cleo", "/timeline", f"/api/v1/media/{item}/comments"):
        assert client.get(path).status_code == 200
    assert api(client, "PUT", f"/api/v1/media/{item}/favourite").status_code == 200
    assert not [s for s in statements if "user_blocks" in s]
    # Bob (blocked) reads it once per request.
    _as(client, rt, people["bob"])
    statements.clear()
    assert client.get(f"/u/cleo/m/{item}").status_code == 200
    assert len([s for s in statements if "user_blocks" in s]) == 1
    with rt.sessions() as session:
        assert session.scalar(select(Comment.body)) == "Nice"


def test_a_block_hides_nothing_from_an_admin_whose_own_mutes_still_apply(client: TestClient, rt: Runtime,
                                                                        people: dict[str, int]) -> None:
    from kiln.accounts.models import UserPrivilege

    with rt.sessions() as session:
        root = session.get(User, person(rt, "root"))
        assert root is not None
        root.privileges.append(UserPrivilege(name="admin"))
        session.commit()
        root_id = root.id
    item, loud = upload(rt, people["ada"], "Ada's"), upload(rt, people["bob"], "Bob's loud item")
    _block(rt, people["ada"], root_id)
    _block(rt, root_id, people["bob"], "mute")
    _as(client, rt, root_id)
    assert client.get(f"/u/ada/m/{item}").status_code == 200 and client.get("/u/ada").status_code == 200
    front = client.get("/").text
    assert "Ada&#39;s" in front and "Bob&#39;s loud item" not in front
    assert client.get(f"/u/bob/m/{loud}").status_code == 200
