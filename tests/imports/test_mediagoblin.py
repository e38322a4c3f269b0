"""`kiln import mediagoblin` on a real MediaGoblin 0.15 site, made by MediaGoblin's own code (the
tarball and its facts, ``mediagoblin-0.15-FACTS.md``, beside this file): every fact holds in Kiln, its
people log in with their MediaGoblin passwords, its old URLs redirect, and a second run, or a run after
a crash half-way, changes nothing more."""

from __future__ import annotations

import datetime as dt
import json
import tarfile
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Column, MetaData, Table, create_engine, func, select, text

from kiln.accounts import services as accounts
from kiln.accounts.models import User
from kiln.app import create_app
from kiln.imports import mediagoblin
from kiln.media import services as media_service
from kiln.media.models import MediaEntry
from kiln.moderation.models import AuditEntry, Report
from kiln.runtime import build_runtime
from kiln.social.models import Collection, CollectionItem, Comment
from tests.conftest import BASE_URL, PG_URL, form_post, make_settings

pytestmark = pytest.mark.db  # inserts that skip what is there, dates: both databases
SITE = Path(__file__).parent / "mediagoblin-0.15.tar.gz"
UTC = dt.UTC


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """The MediaGoblin site unpacked, as its admin has it: the path of its mediagoblin.ini."""
    root = tmp_path / "mediagoblin"
    with tarfile.open(SITE) as tar:
        tar.extractall(root, filter="data")
    return root / "mediagoblin.ini"


def when(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_a_mediagoblin_site_moves_in_whole_and_its_old_urls_lead_to_it(kiln, site, db_url) -> None:  # type: ignore[no-untyped-def]
    dry = kiln("import", "mediagoblin", "--config", str(site), "--dry-run")
    assert "media        would import 11, already here 0, left out 1" in dry.output
    first = kiln("import", "mediagoblin", "--config", str(site), "--wait")
    assert "users        imported 4" in first.output and "media        imported 11" in first.output, first.output
    # Media 9 failed in MediaGoblin (a text file called .jpg): Kiln refuses it too, and says so.
    assert "media 9 (Holiday photo): failed in MediaGoblin" in first.output
    again = kiln("import", "mediagoblin", "--config", str(site))
    assert "Nothing to do" in again.output and "imported 0" in again.output, again.output

    settings = make_settings(kiln.data, db_url)
    rt = build_runtime(settings)
    try:
        with rt.sessions() as s:
            users = {u.username: u for u in s.scalars(select(User))}
            assert sorted(users) == ["alice", "bob", "carol", "dave"]
            assert users["alice"].is_admin and users["alice"].email == "alice@example.org"
            assert users["carol"].privilege_names == ["active", "reporter", "uploader"]  # commenter taken away
            assert "active" not in users["dave"].privilege_names  # never verified
            assert users["dave"].banned_now and users["dave"].banned_until == when("2031-01-01")
            assert users["dave"].ban_reason == "Suspected spam account (never verified its email)."
            assert users["carol"].bio.startswith("Illustrator and *amateur* photographer.")
            assert users["carol"].links == [{"label": "carol.example.org", "url": "https://carol.example.org/portfolio"}]
            assert users["alice"].created == when("2026-12-05 08:45:38.026068")

            entries = s.scalars(select(MediaEntry)).all()
            media = {m.title: m for m in entries}  # bob's two "Gavroche sketch" are one key here
            assert len(entries) == 11 and "Holiday photo" not in media
            assert {m.state for m in entries} == {"processed"}
            harbour = media["Harbour at dusk"]
            assert harbour.owner.username == "alice" and harbour.imported_from == "mediagoblin"
            assert harbour.license == "https://creativecommons.org/licenses/by-sa/4.0/"
            assert sorted(t.name for t in harbour.tags) == sorted(["harbour", "sunset", "café", "nikon"])
            assert "[harbour series](https://alice.example.org/harbour)" in harbour.description
            assert harbour.created == harbour.published == when("2026-12-05 08:46:31.428382")
            assert media["ASCII goblin"].license == "" and media["ASCII goblin"].kind == "text"
            assert media["Goblin Zine, issue #1"].kind == "pdf"
            assert media["empty"].owner.username == "bob"
            assert harbour.comment_count == 3

            comments = s.scalars(select(Comment).order_by(Comment.id)).all()
            assert [(c.author.username if c.author else None, c.media.title) for c in comments] == [
                ("bob", "Harbour at dusk"), ("alice", "Harbour at dusk"), ("carol", "Harbour at dusk"),
                ("carol", "Gavroche sketch"), ("alice", "Café terrace"), ("bob", "Goblin Zine, issue #1"),
                ("carol", "Goblin Zine, issue #1"), ("bob", "Café menu (UTF-8 text)")]
            assert comments[5].body == "Page 2 made me laugh 😄"
            assert comments[0].created == when("2026-12-05 08:47:18.113182")

            def items(title: str) -> list[tuple[str, str, str]]:
                collection = s.scalars(select(Collection).where(Collection.title == title)).one()
                rows = s.scalars(select(CollectionItem).where(CollectionItem.collection_id == collection.id)
                                 .order_by(CollectionItem.position)).all()
                return [(r.media.owner.username, r.media.title, r.note) for r in rows]

            assert items("Goblin favourites") == [("alice", "Harbour at dusk", "Where it all started."),
                                                  ("bob", "Gavroche sketch", "Bob's best *sketch*."),
                                                  ("carol", "Café terrace", "Makes me want coffee ☕")]
            sketches = items("Sketches & doodles")
            assert [note for _, _, note in sketches] == ["PNG version", "", "Not a sketch, but a goblin."]
            assert sketches[1][0] == "bob" and sketches[2][1] == "ASCII goblin"

            reports = s.scalars(select(Report).order_by(Report.id)).all()
            assert [(r.state, r.outcome, r.target_type) for r in reports] == [
                ("resolved", "revoked", "comment"), ("open", None, "media")]
            assert reports[0].target_id == comments[6].id and reports[0].reporter.username == "bob"
            assert reports[0].snapshot["text"].startswith("BUY CHEAP GOBLINS")
            assert reports[1].target_id == media["empty"].id and reports[1].target_owner.username == "bob"
            assert s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "import")) == 1

            # Their MediaGoblin passwords work, and are rehashed to Argon2id on the way in.
            alice = accounts.authenticate(s, "alice@example.org", "alice-password-1")
            assert alice.password_hash.startswith("$argon2id$")
            s.commit()
            with pytest.raises(accounts.BadCredentials):
                accounts.authenticate(s, "bob", "alice-password-1")
            with pytest.raises(accounts.Banned):
                accounts.authenticate(s, "dave", "dave-password-4")
            harbour_id, menu_id = harbour.id, media["Café menu (UTF-8 text)"].id

        with TestClient(create_app(settings, rt), base_url=BASE_URL, follow_redirects=False) as web:
            def moved(path: str) -> str:
                answer = web.get(path)
                assert answer.status_code == 301, (path, answer.status_code)
                return str(answer.headers["location"])

            assert moved("/u/alice/") == "/u/alice" and moved("/u/alice/gallery/") == "/u/alice"
            assert moved("/u/alice/atom/") == "/feeds/u/alice/atom"
            assert moved("/u/alice/m/harbour-dusk/") == moved("/u/alice/m/id:1/") == f"/u/alice/m/{harbour_id}"
            assert moved("/u/alice/m/harbour-dusk") == f"/u/alice/m/{harbour_id}"  # the slash left off
            assert moved("/u/alice/m/harbour-dusk/c/2/") == f"/u/alice/m/{harbour_id}#comment-{comments[1].id}"
            assert moved("/tag/cafe/") == "/tag/caf%C3%A9" and moved("/u/carol/tag/cafe/") == "/u/carol?tag=caf%C3%A9"
            favourites = moved("/u/alice/collection/goblin-favourites/")
            assert web.get(favourites).status_code == 200
            feed = favourites.replace("/c/", "/feeds/c/") + "/atom"
            assert moved("/u/alice/collection/goblin-favourites/atom/") == feed
            assert moved("/u/bob/collections/") == "/u/bob/collections"
            thumb = moved("/mgoblin_media/media_entries/1/good.thumbnail.jpg")
            assert "/thumbnail" in thumb and web.get(thumb).status_code == 200
            assert moved("/mgoblin_media/media_entries/11/cafe-menu.txt") == f"/u/carol/m/{menu_id}"
            # What MediaGoblin itself answered 404 for still is not found.
            assert web.get("/u/alice/m/harbour-at-dusk/").status_code != 301
            assert web.get("/u/bob/m/holiday-photo/").status_code != 301
            # People log in on the web with their old passwords.
            answer = form_post(web, "/auth/login", {"username": "bob", "password": "bob-password-2"})
            assert answer.status_code == 303, answer.text

            # An item made private since: its old page and files lead nowhere (no 301 names it).
            with rt.sessions() as s:
                owner = s.scalars(select(User).where(User.username == "alice")).one()
                media_service.update(rt, s, owner, s.get_one(MediaEntry, harbour_id),
                                     media_service.MediaFields(visibility="private"))
            web.cookies.clear()
            assert web.get("/u/alice/m/harbour-dusk/").status_code != 301
            assert web.get("/mgoblin_media/media_entries/1/good.thumbnail.jpg").status_code == 404
            assert web.get("/u/alice/m/harbour-dusk/c/2/").status_code != 301
    finally:
        rt.close()


def test_an_import_that_dies_half_way_goes_on_where_it_stopped_with_no_duplicate(kiln, site, db_url,
                                                                              monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The worst moment: an item's original stored and its row committed, and the import killed before
    it wrote down that it did that item. The next run finds the item by its upload key."""
    submitted = media_service.submit_spooled
    calls = []

    def dies_after_the_fifth(*args, **kwargs):  # type: ignore[no-untyped-def]
        entry = submitted(*args, **kwargs)
        calls.append(entry.id)
        if len(calls) == 5:
            raise KeyboardInterrupt  # as abrupt as it gets in-process: nothing after this line runs
        return entry

    monkeypatch.setattr(mediagoblin.media_service, "submit_spooled", dies_after_the_fifth)
    assert "Aborted" in kiln("import", "mediagoblin", "--config", str(site), ok=False).output
    monkeypatch.setattr(mediagoblin.media_service, "submit_spooled", submitted)
    second = kiln("import", "mediagoblin", "--config", str(site), "--json")
    assert '"already": 4' in second.output  # the four it wrote down
    rt = build_runtime(make_settings(kiln.data, db_url))
    try:
        with rt.sessions() as s:
            titles = s.scalars(select(MediaEntry.title)).all()
            assert len(titles) == 11 and len(set(titles)) == 10  # two "Gavroche sketch", as in MediaGoblin
            assert s.scalar(select(func.count()).select_from(Comment)) == 8
    finally:
        rt.close()


def test_no_path_makes_the_old_address_lookup_fail(client) -> None:  # type: ignore[no-untyped-def]
    """Every GET ending in '/' and every 'not found' asks the recorded paths: hostile ones are just not
    found (no 5xx), on both databases."""
    for path in ("/u/%00/", "/u/a%00b/m/x/", "/" + "x/" * 900, "/u/\u202eevil/", "/mgoblin_media/%00",
                 "/u/alice/m/%F0%9F%98%84/", "/u/alice/m/%ff%fe/", "/tag/%E2%80%8B/", "//", "/u//m//c//"):
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code < 500 and answer.status_code != 301, (path, answer.status_code)


def test_a_mediagoblin_site_on_postgresql_imports_the_same(kiln, site, db_url) -> None:  # type: ignore[no-untyped-def]
    """MediaGoblin's own PostgreSQL URL (``postgresql://``) in its mediagoblin.ini, datetimes as the
    driver gives them: the same site, copied table by table into a PostgreSQL database, imports the same."""
    if not PG_URL:
        pytest.skip("a MediaGoblin site on PostgreSQL is imported in the PostgreSQL run")
    name = f"mg_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    pg = PG_URL.rsplit("/", 1)[0] + "/" + name
    try:
        source = create_engine(f"sqlite:///{site.parent / 'mediagoblin.db'}")
        reflected, copy = MetaData(), MetaData()
        reflected.reflect(source)
        tables = {t.name: Table(t.name, copy, *(Column(c.name, c.type.as_generic(), primary_key=c.primary_key)
                                                for c in t.columns))
                  for t in reflected.sorted_tables}
        target = create_engine(pg)
        copy.create_all(target)
        with source.connect() as read, target.begin() as write:
            for table in reflected.sorted_tables:
                rows = [dict(r._mapping) for r in read.execute(table.select())]
                if rows:
                    write.execute(tables[table.name].insert(), rows)
        source.dispose()
        target.dispose()
        config = site.parent / "mediagoblin-pg.ini"
        config.write_text(site.read_text().replace("sql_engine = sqlite:///%(here)s/mediagoblin.db",
                                                   "sql_engine = " + pg.replace("postgresql+psycopg://", "postgresql://")))
        result = kiln("import", "mediagoblin", "--config", str(config), "--json")
        counts = json.loads(result.output)["counts"]
        assert {k: v.get("new", 0) for k, v in counts.items()} == {
            "users": 4, "media": 11, "comments": 8, "collections": 2, "reports": 2}, result.output
        rt = build_runtime(make_settings(kiln.data, db_url))
        try:
            with rt.sessions() as s:
                first = s.scalars(select(Comment).order_by(Comment.id)).first()
                assert first is not None and first.created == when("2026-12-05 08:47:18.113182")
                dave = s.scalars(select(User).where(User.username == "dave")).one()
                assert dave.banned_until == when("2031-01-01")
        finally:
            rt.close()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
