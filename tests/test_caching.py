"""Fast pages: the anonymous page cache and its invalidation, conditional requests, compression,
static assets cached for a year, and a fixed number of SQL queries per list whatever its length."""

from __future__ import annotations

import datetime as dt
import gzip
import re
from collections.abc import Iterator
from contextlib import contextmanager

import brotli
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import event, update

from kiln.accounts import services as accounts
from kiln.accounts.models import User
from kiln.app import create_app
from kiln.db.base import utcnow
from kiln.media.models import MediaEntry, Rendition, Tag
from kiln.runtime import Runtime, build_runtime
from kiln.web.caching import choose_encoding
from tests.conftest import BASE_URL, inline_runtime, make_settings
from tests.test_api import make_user, token_for

PLAIN = {"Accept-Encoding": "identity"}


def add_items(rt: Runtime, owner: str, count: int, tags: tuple[str, ...] = ("sea", "sky")) -> list[int]:
    """Processed public items straight in the database (pages only need rows and rendition keys)."""
    with rt.sessions() as session:
        user = accounts.get_user(session, owner)
        tag_rows = []
        for slug in tags:
            tag = session.query(Tag).filter_by(slug=slug).one_or_none() or Tag(slug=slug, name=slug)
            tag_rows.append(tag)
        start = utcnow() - dt.timedelta(days=1)
        items = []
        for n in range(count):
            media = MediaEntry(owner=user, kind="image", state="processed", title=f"Item {n}", original_key=[],
                               mime_type="image/jpeg", width=640, height=480, published=start + dt.timedelta(
                                   minutes=n), info={})
            media.tags = list(tag_rows)
            session.add(media)
            session.flush()
            for name, (w, h) in (("thumbnail", (320, 240)), ("medium", (640, 480))):
                media.renditions.append(Rendition(name=name, key=media.rendition_key(f"{name}.jpg"),
                                                  mime_type="image/jpeg", width=w, height=h, size_bytes=100,
                                                  spec_fingerprint="x"))
            items.append(media)
        session.commit()
        return [m.id for m in items]


@contextmanager
def counting(rt: Runtime) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(rt.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(rt.engine, "before_cursor_execute", record)


@pytest.mark.db
def test_anonymous_pages_come_from_the_cache_until_something_visible_changes(client, rt):
    make_user(rt)
    ids = add_items(rt, "alice", 3)
    first = client.get("/", headers=PLAIN)
    assert first.status_code == 200 and "Item 2" in first.text
    with counting(rt) as statements:
        again = client.get("/", headers=PLAIN)
    assert again.text == first.text
    assert statements == []  # the app's database was not asked: only the change counter was read
    assert again.headers["etag"] == first.headers["etag"]
    assert again.headers["vary"] == "Accept-Encoding, Accept-Language, Cookie"
    assert "content-security-policy" in again.headers  # the page's own headers are kept

    # A change made by another process (its own engine), as a processing worker publishing an item.
    other = build_runtime(rt.settings, dispatcher=rt.dispatcher)
    try:
        with other.sessions() as session:
            session.get(MediaEntry, ids[-1]).title = "Renamed elsewhere"
            session.commit()
    finally:
        other.close()
    changed = client.get("/", headers=PLAIN)
    assert "Renamed elsewhere" in changed.text and changed.headers["etag"] != first.headers["etag"]

    # A bulk UPDATE without the ORM's unit of work counts too.
    with rt.sessions() as session:
        session.execute(update(MediaEntry).where(MediaEntry.id == ids[0]).values(visibility="unlisted"))
        session.commit()
    assert "Item 0" not in client.get("/", headers=PLAIN).text

    # Changes nobody can see do not throw the cache away: a login session, a password.
    before = client.get("/", headers=PLAIN).headers["etag"]
    with rt.sessions() as session:
        user = accounts.get_user(session, "alice")
        user.password_hash = "changed"
        session.commit()
    with counting(rt) as statements:
        assert client.get("/", headers=PLAIN).headers["etag"] == before
    assert statements == []


@pytest.mark.db
def test_every_public_list_is_cached_for_anonymous_visitors_and_invalidated(client, rt):
    make_user(rt)
    ids = add_items(rt, "alice", 2)
    paths = ["/", "/u/alice", f"/u/alice/m/{ids[0]}", "/tag/sea", "/feeds/atom", "/feeds/u/alice/atom",
             "/feeds/tag/sea/atom", "/api/v1/media"]
    for path in paths:
        assert client.get(path).status_code == 200, path
        with counting(rt) as statements:
            assert client.get(path).status_code == 200
        assert statements == [], (path, statements)
    with rt.sessions() as session:
        session.get(MediaEntry, ids[0]).title = "New title"
        session.commit()
    for path in paths:
        assert "New title" in client.get(path).text, path


def test_logged_in_visitors_and_flash_messages_never_share_the_anonymous_page(client, rt, settings):
    make_user(rt)
    add_items(rt, "alice", 1)
    anonymous = client.get("/")
    assert "Log in" in anonymous.text
    login = client.get("/auth/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', login.text).group(1)
    assert client.post("/auth/login", data={"username": "alice", "password": "correct horse",
                                            "csrf_token": token}).status_code == 200
    mine = client.get("/")
    assert "Log out" in mine.text and "Log in" not in mine.text
    assert mine.headers["cache-control"] == "private, no-cache"
    with TestClient(client.app, base_url=BASE_URL) as stranger:
        page = stranger.get("/")
        assert "Log out" not in page.text and "alice" in page.text
        assert "set-cookie" not in page.headers  # no form on it, so no CSRF cookie: cacheable
    # An API token is a logged-in request too.
    with TestClient(client.app, base_url=BASE_URL) as api:
        auth = token_for(api)
        with counting(rt) as statements:
            assert api.get("/api/v1/media", headers=auth).status_code == 200
    assert statements


@pytest.mark.db
def test_conditional_requests_answer_304(client, rt):
    make_user(rt)
    add_items(rt, "alice", 1)
    first = client.get("/u/alice")
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    assert etag.startswith('W/"')
    again = client.get("/u/alice", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert client.get("/u/alice", headers={"If-Modified-Since": modified}).status_code == 304
    assert client.get("/u/alice", headers={"If-None-Match": '"other"'}).status_code == 200
    add_items(rt, "alice", 1, tags=())
    assert client.get("/u/alice", headers={"If-None-Match": etag}).status_code == 200
    # Pages that are not shared get an ETag of their body and a 304 too.
    auth = token_for(client)
    me = client.get("/api/v1/media?user=alice&state=processed", headers=auth)
    assert me.status_code == 200 and me.headers["etag"]
    assert client.get("/api/v1/media?user=alice&state=processed",
                      headers={**auth, "If-None-Match": me.headers["etag"]}).status_code == 304


def test_html_and_json_are_compressed_as_the_client_asks(client, rt, tmp_path):
    make_user(rt)
    add_items(rt, "alice", 5)
    assert "content-encoding" not in client.get("/", headers=PLAIN).headers
    for path in ("/", "/api/v1/media", "/feeds/atom", "/u/alice"):
        identity = client.get(path, headers=PLAIN).content
        for encoding, decode in (("br", brotli.decompress), ("gzip", gzip.decompress)):
            with client.stream("GET", path, headers={"Accept-Encoding": encoding}) as resp:
                raw = b"".join(resp.iter_raw())
            assert resp.headers["content-encoding"] == encoding, path
            assert int(resp.headers["content-length"]) == len(raw) < len(identity), path
            assert decode(raw) == identity, (path, encoding)
    # Pictures are sent as they are stored, whatever the client accepts.
    photo = tmp_path / "photo.jpg"
    Image.new("RGB", (64, 64), "orange").save(photo)
    with rt.sessions() as session:
        thumb = session.query(Rendition).filter_by(name="thumbnail").first()
        rt.stores.public.save(thumb.key, photo.open("rb"))
        url = rt.stores.public.url(thumb.key)
    with client.stream("GET", url, headers={"Accept-Encoding": "gzip, br"}) as resp:
        raw = b"".join(resp.iter_raw())
    assert resp.status_code == 200 and "content-encoding" not in resp.headers
    assert raw == photo.read_bytes()


@pytest.mark.parametrize("header, expected", [
    ("gzip, deflate, br", "br"), ("gzip", "gzip"), ("br;q=0, gzip", "gzip"), ("identity", None), ("", None),
    ("*", "br"), ("gzip;q=0.5, br;q=0", "gzip"), ("gzip;q=bogus", None),
])
def test_encoding_negotiation(header, expected):
    assert choose_encoding(header) == expected


def test_static_assets_are_fingerprinted_and_cached_for_a_year(client, rt):
    page = client.get("/auth/login").text
    links = re.findall(r'(?:href|src)="(/static/[^"]+\?v=[0-9a-f]+)"', page)
    assert links, "pages link static files with a content fingerprint"
    for link in links:
        resp = client.get(link)
        assert resp.status_code == 200
        assert resp.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert client.get(link, headers={"If-None-Match": resp.headers["etag"]}).status_code == 304


def test_gallery_thumbnails_have_their_size_and_load_lazily(client, rt):
    make_user(rt)
    add_items(rt, "alice", 15)
    page = client.get("/u/alice").text
    thumbs = [tag for tag in re.findall(r"<img [^>]*>", page) if "thumbnail.jpg" in tag]
    assert len(thumbs) == 15
    for number, tag in enumerate(thumbs, 1):
        assert 'width="320"' in tag and 'height="240"' in tag and 'decoding="async"' in tag
        # The first rows show at once; the rest load as they scroll into view.
        assert f'loading="{"eager" if number <= 12 else "lazy"}"' in tag, (number, tag)


@pytest.fixture
def uncached_rt(tmp_path, db_url) -> Iterator[Runtime]:
    yield from inline_runtime(make_settings(tmp_path / "data", db_url, web={"page_cache_entries": 0}))


def statements_of(rt: Runtime, client: TestClient, path: str) -> list[str]:
    with counting(rt) as statements:
        client.get(path, headers=PLAIN)
    return [" ".join(s.split())[:160] for s in statements]


def _queries(rt: Runtime, client: TestClient, path: str) -> int:
    client.get(path)  # warm: the first request of a process loads more (e.g. licence lists)
    with counting(rt) as statements:
        resp = client.get(path, headers=PLAIN)
    assert resp.status_code == 200, (path, resp.text[:300])
    return len(statements)


@pytest.mark.parametrize("path", ["/", "/u/alice", "/tag/sea", "/tags", "/feeds/atom", "/feeds/u/alice/atom",
                                  "/feeds/tag/sea/atom", "/api/v1/media?limit=100", "/u/alice/m/{id}"])
@pytest.mark.db
def test_each_list_runs_a_fixed_number_of_queries_whatever_its_length(uncached_rt, path):
    """No N+1: the same page with 2 items and with 40 (owners, renditions and tags included) costs the
    same number of SQL statements, and few of them."""
    rt = uncached_rt
    with TestClient(create_app(rt.settings, rt), base_url=BASE_URL) as client:
        make_user(rt)
        first = add_items(rt, "alice", 2)
        small = _queries(rt, client, path.format(id=first[0]))
        add_items(rt, "alice", 38, tags=("sea", "sky", "rock"))
        large = _queries(rt, client, path.format(id=first[0]))
    if small != large or large > 8:
        print("\n".join(statements_of(rt, client, path.format(id=first[0]))))
    assert small == large, f"{path}: {small} queries with 2 items, {large} with 40"
    assert large <= 8, f"{path}: {large} queries"


@pytest.mark.db
def test_the_counter_reader_sees_new_commits_and_survives_a_broken_connection(rt):
    from sqlalchemy.pool import StaticPool

    from kiln.db import changes
    from kiln.db.session import make_engine

    reader = changes.CounterReader(make_engine(rt.settings.db_url, poolclass=StaticPool))
    first, _ = reader.read()
    make_user(rt)  # a visible change, committed by another connection
    second, when = reader.read()
    assert second > first and when > utcnow() - dt.timedelta(minutes=1)
    reader._raw.dbapi_connection.close()  # as when the database server restarts under it
    add_items(rt, "alice", 1)
    third, _ = reader.read()
    assert third > second
    reader.close()


@pytest.mark.db
def test_only_changes_a_visitor_can_see_move_the_counter(rt: Runtime) -> None:
    """Uploads in progress, step claims, renditions of unfinished items and edits of private items leave
    every cached page alone; publishing, hiding and editing a visible item do not."""
    from kiln.db import changes

    def generation() -> int:
        with rt.engine.connect() as connection:
            return changes.current(connection)[0]

    make_user(rt, "gen")
    with rt.sessions() as session:
        owner = accounts.get_user(session, "gen")
        media = MediaEntry(owner=owner, kind="image", state="queued", title="Draft", original_key=[],
                           mime_type="image/jpeg", info={})
        session.add(media)
        session.commit()
        start = generation()
        media.state = "processing"
        media.renditions.append(Rendition(name="thumbnail", key=media.rendition_key("t.jpg"),
                                          mime_type="image/jpeg", width=1, height=1, size_bytes=1,
                                          spec_fingerprint="x"))
        media.title = "Still a draft"
        session.commit()
        assert generation() == start
        # A visible change moves it on twice: the change, then the rewrite of the item's search entry
        # after the commit (kiln.search.upkeep: a search kept in between must not outlive it).
        media.state = "processed"
        session.commit()
        assert generation() == start + 2  # published
        media.title = "Seen"
        session.commit()
        assert generation() == start + 4
        media.visibility = "private"
        session.commit()
        assert generation() == start + 5  # hidden: pages that listed it must change (its entry is only its owner's)
        media.title = "Nobody sees this"
        media.renditions[0].width = 2
        session.commit()
        assert generation() == start + 5


def test_logged_in_pages_reuse_the_grid_and_see_every_change(rt: Runtime) -> None:
    """Logged-in front pages render their grid once per generation (kiln.web.fragments), for everyone,
    and show a change at once: the grid kept for the old generation is never served after it."""
    make_user(rt, "olga")
    make_user(rt, "pavel")
    add_items(rt, "olga", 3)
    app = create_app(rt.settings, rt)
    with TestClient(app, base_url=BASE_URL) as client, rt.sessions() as session:
        cookies = {name: accounts.start_session(session, accounts.get_user(session, name))
                   for name in ("olga", "pavel")}
        session.commit()
        client.cookies.set("kiln_session", cookies["olga"])
        first = client.get("/", headers=PLAIN)
        assert first.status_code == 200 and "Item 2" in first.text
        assert len(app.state.fragments._items) == 1
        client.cookies.set("kiln_session", cookies["pavel"])  # another person: another menu, the same grid
        second = client.get("/", headers=PLAIN).text
        assert "pavel" in second and "Item 2" in second
        assert len(app.state.fragments._items) == 1
        session.execute(update(MediaEntry).where(MediaEntry.title == "Item 2").values(title="Renamed"))
        session.commit()
        after = client.get("/", headers=PLAIN).text
        assert "Renamed" in after and "Item 2" not in after
        assert len(app.state.fragments._items) == 2
        # The cards name their author: a new display name shows at once too.
        session.execute(update(User).where(User.username == "olga").values(display_name="Olga Renamed"))
        session.commit()
        assert '<a href="/u/olga">Olga Renamed</a>' in client.get("/", headers=PLAIN).text
        assert len(app.state.fragments._items) == 3


def test_an_owners_own_gallery_is_never_kept(rt: Runtime) -> None:
    """Editing a private item leaves the change counter alone (no visitor can see it), so the owner's own
    view of their gallery, which shows it, must be made afresh each time, never kept as a fragment."""
    make_user(rt, "olga")
    [media_id] = add_items(rt, "olga", 1)
    app = create_app(rt.settings, rt)
    with TestClient(app, base_url=BASE_URL) as client, rt.sessions() as session:
        item = session.get(MediaEntry, media_id)
        assert item is not None
        item.visibility = "private"
        session.commit()
        client.cookies.set("kiln_session", accounts.start_session(session, accounts.get_user(session, "olga")))
        session.commit()
        assert "Item 0" in client.get("/u/olga", headers=PLAIN).text
        item.title = "Secret renamed"
        session.commit()
        assert "Secret renamed" in client.get("/u/olga", headers=PLAIN).text
        assert len(app.state.fragments._items) == 0


def test_a_logged_in_media_page_keeps_one_body_and_fills_in_each_viewers_own(rt: Runtime) -> None:
    """The media page's body is rendered once per generation for every viewer but the owner and admins
    (kiln.web.pages.media_page); each still gets their own CSRF token, favourite button, the collections
    they may see and the actions on their own comments, and a change shows at once."""
    from kiln.social import collections as collection_service
    from kiln.social import comments as comment_service
    from kiln.social import favourites
    from kiln.web.comments import CSRF_MARK
    from kiln.web.deps import CSRF_COOKIE
    from tests.social_kit import log_in, person, upload

    olga, pavel, quinn, rosa = (person(rt, name) for name in ("olga", "pavel", "quinn", "rosa"))
    media_id = upload(rt, olga, "Harbour at dawn")
    with rt.sessions() as session:
        media, users = session.get(MediaEntry, media_id), {u: session.get(User, u) for u in (olga, pavel, quinn, rosa)}
        assert media is not None
        comment_service.post(rt, session, users[pavel], media, "Pavel was here")
        comment_service.post(rt, session, users[quinn], media, "Quinn too")
        favourites.favourite(session, users[rosa], media)
        secret = collection_service.create(session, users[olga], "Olga and friends", visibility="private")
        collection_service.add_item(session, users[olga], secret, media)
        collection_service.invite(session, users[olga], secret, "pavel")
        session.commit()
    path = f"/u/olga/m/{media_id}"
    app = create_app(rt.settings, rt)
    with TestClient(app, base_url=BASE_URL) as client:
        def page_for(user_id: int, csrf: str) -> str:
            log_in(client, rt, user_id)
            client.cookies.set(CSRF_COOKIE, csrf)
            answer = client.get(path, headers=PLAIN)
            assert answer.status_code == 200
            assert CSRF_MARK not in answer.text
            return answer.text

        for_pavel = page_for(pavel, "pavel-token")
        kept = len(app.state.fragments._items)
        with counting(rt) as statements:
            for_quinn = page_for(quinn, "quinn-token")
        assert len(app.state.fragments._items) == kept + 1  # pavel helps with a private collection
        with counting(rt) as statements_again:
            assert page_for(quinn, "quinn-token") == for_quinn
        assert len(statements_again) < len(statements)  # the kept body: no comments, renditions, tags
        assert 'value="pavel-token"' in for_pavel and "quinn-token" not in for_pavel
        assert 'value="quinn-token"' in for_quinn and "pavel-token" not in for_quinn
        for_rosa = page_for(rosa, "rosa-token")
        assert len(app.state.fragments._items) == kept + 2  # rosa favourited it: a third variant
        assert 'aria-pressed="true"' in for_rosa and 'aria-pressed="false"' in for_quinn
        assert "Olga and friends" in for_pavel and "Olga and friends" not in for_quinn
        own_edit = re.compile(r'/comments/(\d+)/edit')
        assert len(own_edit.findall(for_pavel)) == 1 and len(own_edit.findall(for_quinn)) == 1
        assert own_edit.findall(for_pavel) != own_edit.findall(for_quinn)
        for_owner = page_for(olga, "olga-token")  # the owner's page is made for her alone
        assert f"/m/{media_id}/edit" in for_owner and f"/m/{media_id}/edit" not in for_pavel
        assert len(app.state.fragments._items) == kept + 2
        with rt.sessions() as session:
            media = session.get(MediaEntry, media_id)
            comment_service.post(rt, session, session.get(User, quinn), media, "A third voice")  # type: ignore[arg-type]
        assert "A third voice" in page_for(pavel, "pavel-token")
