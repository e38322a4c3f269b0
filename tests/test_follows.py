"""Following people and the Following timeline: idempotent follows, never yourself, a notification
to the followee, keyset-paginated lists, remote followers as plain rows, and a timeline that only
ever shows new public media of the people one follows."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select, text
from sqlalchemy.engine import Engine

from kiln.accounts.models import User
from kiln.errors import InvalidInput
from kiln.media import services as media_service
from kiln.media.models import MediaEntry
from kiln.runtime import Runtime
from kiln.social import follows
from kiln.social.models import Follow, Notification
from tests.social_kit import api, log_in, person, post, upload

pytestmark = pytest.mark.db


@contextmanager
def _statements() -> Iterator[list[str]]:
    """The SQL every engine sends meanwhile (the web's reading engine included)."""
    sent: list[str] = []

    def note(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        sent.append(statement)

    event.listen(Engine, "before_cursor_execute", note)
    try:
        yield sent
    finally:
        event.remove(Engine, "before_cursor_execute", note)


def test_follow_is_idempotent_notifies_once_and_refuses_yourself(rt: Runtime) -> None:
    a, b = person(rt, "anna"), person(rt, "bruno")
    with rt.sessions() as session:
        anna, bruno = session.get(User, a), session.get(User, b)
        assert anna and bruno
        assert follows.follow(session, anna, bruno) is True
        assert follows.follow(session, anna, bruno) is False
        session.commit()
        with pytest.raises(InvalidInput) as refused:
            follows.follow(session, anna, anna)
        assert refused.value.code == "follow_self" and "yourself" in refused.value.message
        notes = session.scalars(select(Notification).where(Notification.user_id == b)).all()
        assert [(n.type, n.actor_id) for n in notes] == [("follow", a)]
        assert follows.is_following(session, a, b) and not follows.is_following(session, b, a)
        assert follows.unfollow(session, anna, bruno) is True
        assert follows.unfollow(session, anna, bruno) is False
        session.commit()
        assert not follows.is_following(session, a, b)


def test_lists_are_keyset_pages_and_a_remote_follower_is_one_more_row(rt: Runtime) -> None:
    star = person(rt, "star")
    fans = [person(rt, f"fan{i}") for i in range(5)]
    with rt.sessions() as session:
        target = session.get(User, star)
        assert target
        for fan in fans:
            follows.follow(session, session.get(User, fan), target)  # type: ignore[arg-type]
        session.add(Follow(followee_id=star, follower_uri="https://elsewhere.example/users/remote"))
        session.commit()
        first = follows.followers(session, target, None, 4)
        assert first.next_cursor is not None and len(first.people) == 4
        rest = follows.followers(session, target, first.next_cursor, 4)
        assert rest.next_cursor is None and len(rest.people) == 2
        everyone = first.people + rest.people
        assert everyone[0].uri == "https://elsewhere.example/users/remote"  # newest first
        assert {p.user.id for p in everyone if p.user} == set(fans)
        assert follows.counts(session, target).followers == 6
        assert [p.user.username for p in follows.following(session, session.get(User, fans[0]), None, 10).people  # type: ignore[union-attr, arg-type]
                ] == ["star"]
        with pytest.raises(InvalidInput):
            follows.followers(session, target, "1-2", 4)


def test_timeline_shows_only_new_public_media_of_people_followed(rt: Runtime, client: TestClient) -> None:
    reader, followed, stranger = person(rt, "reader"), person(rt, "followed"), person(rt, "stranger")
    with rt.sessions() as session:
        follows.follow(session, session.get(User, reader), session.get(User, followed))  # type: ignore[arg-type]
        session.commit()
    shown = [upload(rt, followed, f"Public {i}") for i in range(3)]
    upload(rt, followed, "Hidden unlisted", visibility="unlisted")
    upload(rt, followed, "Hidden private", visibility="private")
    upload(rt, stranger, "Not followed")
    with rt.sessions() as session:
        first = media_service.page(session, follows.timeline_query(reader), None, 2)
        more = media_service.page(session, follows.timeline_query(reader), first.next_cursor, 2)
        assert [m.id for m in first.items + more.items] == shown[::-1] and more.next_cursor is None
    log_in(client, rt, reader)
    with _statements() as sent:
        page = client.get("/timeline")
    assert page.status_code == 200
    assert "Public 2" in page.text and "Hidden" not in page.text and "Not followed" not in page.text
    # Following nobody elsewhere (the login query says so), the page reads no posts from elsewhere;
    # once a follow elsewhere is asked, it does.
    assert not [s for s in sent if "remote_posts" in s]
    with rt.sessions() as session:
        session.add(Follow(follower_id=reader, followee_uri="https://elsewhere.example/users/someone"))
        session.commit()
    with _statements() as sent:
        assert "Public 2" in client.get("/timeline").text
    assert [s for s in sent if "remote_posts" in s]
    body = api(client, "GET", "/api/v1/timeline", params={"limit": 2}).json()
    assert [m["title"] for m in body["items"]] == ["Public 2", "Public 1"] and body["next"]
    body = api(client, "GET", "/api/v1/timeline", params={"limit": 2, "cursor": body["next"]}).json()
    assert [m["title"] for m in body["items"]] == ["Public 0"] and body["next"] is None


def test_follow_button_pages_and_api(rt: Runtime, client: TestClient) -> None:
    a, b = person(rt, "anna"), person(rt, "bruno", display_name="Bruno B", bio="I *shoot* film",
                                       links=[{"label": "Site", "url": "https://bruno.example"}])
    upload(rt, b, "Roll one")
    log_in(client, rt, a)
    gallery = client.get("/u/bruno")
    assert 'action="/u/bruno/follow"' in gallery.text and "<em>shoot</em>" in gallery.text
    assert 'rel="me nofollow"' in gallery.text and "1 item" in gallery.text and "0 followers" in gallery.text
    assert post(client, "/u/bruno/follow").status_code == 303
    gallery = client.get("/u/bruno")
    assert 'action="/u/bruno/unfollow"' in gallery.text and "1 follower" in gallery.text
    assert "anna" in client.get("/u/bruno/followers").text
    assert "Bruno B" in client.get("/u/anna/following").text
    profile = api(client, "GET", "/api/v1/users/bruno").json()
    assert profile["counts"] == {"media": 1, "collections": 0, "followers": 1, "following": 0}
    assert profile["following"] is True and profile["links"][0]["url"] == "https://bruno.example"
    assert api(client, "DELETE", "/api/v1/users/bruno/follow").json() == {"following": False, "followers": 0}
    assert api(client, "PUT", "/api/v1/users/bruno/follow").json() == {"following": True, "followers": 1}
    assert api(client, "PUT", "/api/v1/users/anna/follow").status_code == 422
    assert api(client, "PUT", "/api/v1/users/nobody/follow").status_code == 404
    people = api(client, "GET", "/api/v1/users/bruno/followers").json()
    assert [p["username"] for p in people["items"]] == ["anna"]
    assert api(client, "GET", "/api/v1/users/anna/following").json()["items"][0]["display_name"] == "Bruno B"
    client.cookies.clear()
    assert client.get("/u/bruno").status_code == 200 and 'action="/u/bruno/follow"' not in client.get("/u/bruno").text
    assert api(client, "GET", "/api/v1/users/bruno").json()["following"] is None
    assert client.get("/timeline", follow_redirects=False).status_code == 303


def test_timeline_query_uses_indexes(rt: Runtime) -> None:
    """No full scan of media: SQLite reaches media through an owner index (PostgreSQL: see docs/social.md)."""
    with rt.sessions() as session:
        query = follows.timeline_query(1).order_by(MediaEntry.published.desc(), MediaEntry.id.desc()).limit(31)
        compiled = query.compile(session.get_bind(), compile_kwargs={"literal_binds": True})
        dialect = session.get_bind().dialect.name
        if dialect != "sqlite":
            pytest.skip("the plan is checked on SQLite here")
        plan = " | ".join(str(row[-1]) for row in session.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
    print(plan)
    assert "SCAN media " not in plan + " ", plan
    assert "ix_media_owner_state_published" in plan or "ix_media_state_published" in plan, plan


def test_followers_page_lists_remote_followers_safely(rt: Runtime, client: TestClient) -> None:
    star = person(rt, "star")
    with rt.sessions() as session:
        session.add_all([Follow(followee_id=star, follower_uri="https://elsewhere.example/users/remote"),
                         Follow(followee_id=star, follower_uri="javascript:alert(1)")])
        session.commit()
    page = client.get("/u/star/followers").text
    assert '<a href="https://elsewhere.example/users/remote" rel="nofollow ugc">' in page
    assert 'href="javascript:' not in page and "javascript:alert(1)" in page
    assert "2 followers" in client.get("/u/star").text
