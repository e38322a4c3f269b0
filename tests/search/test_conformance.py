"""The search conformance suite: one corpus, one list of queries and the items each must find, run
on SQLite (FTS5) and on PostgreSQL (the tests are marked db: CI runs them on both), so both backends
give the same results. Items go straight into the database (no processing needed); the index is kept
by the after-commit effect, which the test runtime runs as soon as each transaction commits."""

from __future__ import annotations

import datetime as dt

import pytest

from kiln.accounts import services as accounts
from kiln.db.base import utcnow
from kiln.media.models import MediaEntry, Tag
from kiln.search import service
from kiln.search.upkeep import backend, reindex_all
from kiln.social.models import Collection, CollectionItem, Comment

pytestmark = pytest.mark.db

CORPUS = {
    # key: (owner, title, description, tags, extra)
    "cafe": ("ada", "Café de Flore at dawn", "Coffee on the terrace.", ["paris"], {}),
    "boats": ("ada", "Photos of fishing boats", "Three boats in the harbour.", ["sea"], {}),
    "photo": ("bo", "A photo", "", [], {}),
    "pier": ("bo", "Evening", "We walked along the old pier at sunset.", ["evening"], {}),
    "reverse": ("bo", "Morning", "The pier was old and the sun was low.", [], {}),
    "tokyo": ("ada", "東京タワーの夜景", "", ["東京"], {}),
    "pdf": ("bo", "Annual report", "", [], {"kind": "pdf", "info": {"page_text": ["Quarterly revenue grew.",
                                                                                     "Zeppelin division."]}}),
    "nfo": ("ada", "Release notes", "", [], {"kind": "text", "info": {"text": "GREETZ TO THE DEMOSCENE"}}),
    "private": ("ada", "Secret lighthouse", "", [], {"visibility": "private"}),
    "unlisted": ("ada", "Hidden lighthouse", "", [], {"visibility": "unlisted"}),
    "queued": ("ada", "Unfinished lighthouse", "", [], {"state": "queued"}),
    "removed": ("bo", "Removed lighthouse", "", [], {"removed": True}),
    "straße": ("bo", "Hauptstraße", "Naïve façade in Øresund", [], {}),
}


@pytest.fixture
def corpus(rt):  # type: ignore[no-untyped-def]
    ids: dict[str, int] = {}
    with rt.sessions() as session:
        users = {"ada": accounts.create_user(session, "ada", "ada@example.com", "correct horse", verified=True),
                 "bo": accounts.create_user(session, "bo", "bo@example.com", "correct horse", verified=True),
                 "cy": accounts.create_user(session, "cy", "cy@example.com", "correct horse", verified=True)}
        users["bo"].display_name = "Bo Åkesson"
        start = utcnow() - dt.timedelta(days=10)
        for n, (key, (owner, title, description, tags, extra)) in enumerate(CORPUS.items()):
            media = MediaEntry(owner=users[owner], kind=extra.get("kind", "image"), title=title,
                               description=description, state=extra.get("state", "processed"), original_key=[],
                               visibility=extra.get("visibility", "public"), info=extra.get("info", {}),
                               published=start + dt.timedelta(hours=n),
                               removed=utcnow() if extra.get("removed") else None)
            media.tags = [session.query(Tag).filter_by(slug=t).one_or_none() or Tag(slug=t, name=t) for t in tags]
            session.add(media)
            session.flush()
            ids[key] = media.id
        session.commit()
    return ids


def find(rt, q, viewer=None, **filters):  # type: ignore[no-untyped-def]
    with rt.sessions() as session:
        user = accounts.get_user(session, viewer) if viewer else None
        search = service.make_search(q=q, **filters)
        return set(service.find(rt, session, user, search, per_page=100).ids)


def keys(ids, found):  # type: ignore[no-untyped-def]
    return {k for k, v in ids.items() if v in found}


@pytest.mark.parametrize(("query", "expected"), [
    ("cafe", {"cafe"}),  # accents: typed without
    ("CAFÉ", {"cafe"}),  # and with, in capitals
    ("photo", {"photo", "boats"}),  # stemming: photos is photo
    ("photos", {"photo", "boats"}),
    ("boat ", {"boats"}),  # a whole word (a space after it): boats is boat
    ("sunse", {"pier"}),  # as you type: a prefix
    ("fish", {"boats"}),
    ('"old pier"', {"pier"}),  # a phrase: the words next to each other, in that order
    ("old pier", {"pier", "reverse"}),  # the words anywhere
    ('"pier old"', set()),
    ("東京", {"tokyo"}),  # CJK: a word inside a sentence without spaces
    ("タワー", {"tokyo"}),
    ("夜景", {"tokyo"}),
    ("京タワ", {"tokyo"}),
    ("東", {"tokyo"}),  # one character
    ("大阪", set()),
    ("zeppelin", {"pdf"}),  # text extracted from a PDF
    ("demoscene", {"nfo"}),  # and from a text file
    ("paris", {"cafe"}),  # tags
    ("akesson", {"photo", "pier", "reverse", "pdf", "straße"}),  # the owner's display name, without accents
    ("ada", {"cafe", "boats", "tokyo", "nfo"}),  # and username
    ("hauptstrasse", {"straße"}),  # ß is ss
    ("oresund naive facade", {"straße"}),
    ("lighthouse", set()),  # private, unlisted, unfinished and removed items: never for others
    ("AND OR NOT NEAR ( * \" -", set()),  # operators are words, never syntax
    ("", set()),
])
def test_same_results_on_every_backend(rt, corpus, query, expected):  # type: ignore[no-untyped-def]
    assert keys(corpus, find(rt, query)) == expected
    assert keys(corpus, find(rt, query, viewer="cy")) == expected


def test_owners_find_their_own_unlisted_and_private_items_and_nobody_else_does(rt, corpus):  # type: ignore[no-untyped-def]
    assert keys(corpus, find(rt, "lighthouse", viewer="ada")) == {"private", "unlisted"}
    assert keys(corpus, find(rt, "lighthouse", viewer="bo")) == set()  # removed: not even for its owner


def test_filters_and_orders(rt, corpus):  # type: ignore[no-untyped-def]
    assert keys(corpus, find(rt, "", kind="pdf")) == {"pdf"}
    assert keys(corpus, find(rt, "old", owner="bo")) == {"pier", "reverse"}
    assert keys(corpus, find(rt, "", tag="sea")) == {"boats"}
    assert keys(corpus, find(rt, "pier", license="all-rights-reserved")) == {"pier", "reverse"}
    assert find(rt, "pier", license="cc-by-4.0") == set()
    today = utcnow().date()
    assert keys(corpus, find(rt, "pier", since=(today - dt.timedelta(days=20)).isoformat(),
                             until=today.isoformat())) == {"pier", "reverse"}
    assert find(rt, "pier", until=(today - dt.timedelta(days=20)).isoformat()) == set()
    with rt.sessions() as session:
        newest = service.find(rt, session, None, service.make_search(q="old pier", sort="newest")).ids
        oldest = service.find(rt, session, None, service.make_search(q="old pier", sort="oldest")).ids
        best = service.find(rt, session, None, service.make_search(q="pier")).ids
    assert newest == [corpus["reverse"], corpus["pier"]] and oldest == newest[::-1]
    assert best[0] == corpus["pier"] or best[0] == corpus["reverse"]


def test_keyset_pages_cover_every_match_once_in_every_order(rt, corpus):  # type: ignore[no-untyped-def]
    for sort in service.SORTS:
        seen: list[int] = []
        cursor = None
        with rt.sessions() as session:
            search = service.make_search(q="", owner="bo", sort=sort)
            while True:
                page = service.find(rt, session, None, search, cursor=cursor, per_page=2)
                seen.extend(page.ids)
                cursor = page.next_cursor
                if cursor is None:
                    break
        assert sorted(seen) == sorted(corpus[k] for k in ("photo", "pier", "reverse", "pdf", "straße")), sort
    with rt.sessions() as session:  # relevance pages too
        search = service.make_search(q="pier old sun")
        first = service.find(rt, session, None, search, per_page=1)
        second = service.find(rt, session, None, search, cursor=first.next_cursor, per_page=1)
    assert first.next_cursor and set(first.ids + second.ids) == {corpus["pier"], corpus["reverse"]}


def test_the_index_follows_every_change_after_commit(rt, corpus):  # type: ignore[no-untyped-def]
    with rt.sessions() as session:
        media = session.get(MediaEntry, corpus["photo"])
        media.title = "A zebra crossing"
        session.commit()
    assert keys(corpus, find(rt, "zebra")) == {"photo"}
    assert keys(corpus, find(rt, "photo")) == {"boats"}
    with rt.sessions() as session:  # a comment, a public collection's title, a rename
        ada = accounts.get_user(session, "ada")
        session.add(Comment(media_id=corpus["boats"], author_id=ada.id, body="Lovely *trawlers*"))
        album = Collection(owner_id=ada.id, title="Maritime wonders", visibility="public")
        session.add(album)
        session.flush()
        session.add(CollectionItem(collection_id=album.id, media_id=corpus["cafe"]))
        ada.display_name = "Augusta"
        session.commit()
        album_id = album.id
    assert keys(corpus, find(rt, "trawler")) == {"boats"}
    assert keys(corpus, find(rt, "maritime")) == {"cafe"}
    assert keys(corpus, find(rt, "augusta")) == {"cafe", "boats", "tokyo", "nfo"}
    with rt.sessions() as session:  # the collection goes private: its title no longer finds the item
        session.get(Collection, album_id).visibility = "private"
        session.commit()
    assert find(rt, "maritime") == set()
    with rt.sessions() as session:  # an item made private leaves every search at once
        session.get(MediaEntry, corpus["boats"]).visibility = "private"
        session.commit()
    assert find(rt, "trawler") == set() and keys(corpus, find(rt, "trawler", viewer="ada")) == {"boats"}
    with rt.sessions() as session:
        session.delete(session.get(MediaEntry, corpus["cafe"]))
        session.commit()
        assert corpus["cafe"] not in backend(rt).indexed_ids(session)


def test_a_rolled_back_change_records_nothing(rt, corpus):  # type: ignore[no-untyped-def]
    with rt.sessions() as session:
        session.get(MediaEntry, corpus["photo"]).title = "Quokka"
        session.flush()
        session.rollback()
    assert find(rt, "quokka") == set()


def test_reindex_rebuilds_everything_and_drops_what_is_gone(rt, corpus):  # type: ignore[no-untyped-def]
    with rt.sessions() as session:
        backend(rt).clear(session)
        session.commit()
    assert find(rt, "cafe") == set()
    done: list[int] = []
    written, removed = reindex_all(rt, done.append)
    assert written == len([k for k, v in CORPUS.items() if v[4].get("state", "processed") == "processed"
                           and not v[4].get("removed")])
    assert removed == 0 and sum(done) == len(CORPUS)
    assert keys(corpus, find(rt, "cafe")) == {"cafe"}


@pytest.mark.parametrize(("params", "code"), [
    ({"kind": "hologram"}, "bad_kind"), ({"license": "wtfpl"}, "bad_license"), ({"sort": "random"}, "bad_sort"),
    ({"since": "yesterday"}, "bad_date"), ({"since": "2026-02-30"}, "bad_date"),
    ({"since": "2026-05-01", "until": "2026-04-01"}, "bad_dates"),
])
def test_bad_parameters_are_refused_with_a_sentence(params, code):  # type: ignore[no-untyped-def]
    from kiln.errors import InvalidInput

    with pytest.raises(InvalidInput) as refused:
        service.make_search(q="x", **params)
    assert refused.value.code == code


@pytest.mark.parametrize("cursor", ["x", "1_0", "nan_3", "inf_3", "1e400_3", "99999999999999999999_3", "1.5_"])
def test_broken_page_links_are_refused(rt, corpus, cursor):  # type: ignore[no-untyped-def]
    from kiln.errors import InvalidInput

    with rt.sessions() as session, pytest.raises(InvalidInput):
        service.find(rt, session, None, service.make_search(q="", owner="bo", sort="newest"), cursor=cursor)


def test_an_upgraded_site_gets_its_index_built_once(rt, corpus):  # type: ignore[no-untyped-def]
    """The sweeper's pass finds the index empty while there is something to find, and asks a worker
    to build it (here, at once); afterwards it asks nothing more."""
    from kiln.search.upkeep import fill_if_empty

    with rt.sessions() as session:
        backend(rt).clear(session)
        session.commit()
    assert fill_if_empty(rt) is True
    assert keys(corpus, find(rt, "cafe")) == {"cafe"}
    assert fill_if_empty(rt) is False


def test_an_index_write_that_fails_leaves_nothing_half_done_and_is_tried_again(rt, corpus, monkeypatch):  # type: ignore[no-untyped-def]
    """The index effect's claim, rows and done mark are one transaction: a failure part-way rolls the
    rows back with the claim, the effect waits with the reason, and running it again finishes it."""
    from sqlalchemy import select

    from kiln.processing import outbox
    from kiln.processing.models import OutboxEffect, WorkState

    kind = type(backend(rt))
    put = kind.put

    def put_then_fail(self, session, media_id, document):  # type: ignore[no-untyped-def]
        put(self, session, media_id, document)  # the row is written, then something breaks
        raise OSError("the disk is full")

    monkeypatch.setattr(kind, "put", put_then_fail)
    with rt.sessions() as session:
        session.get(MediaEntry, corpus["photo"]).title = "A narwhal"
        session.commit()  # the test runtime runs the effect now, and it fails
    assert keys(corpus, find(rt, "narwhal")) == set()  # the written row went with the rollback
    with rt.sessions() as session:
        effect = session.scalars(select(OutboxEffect).where(OutboxEffect.kind == "search_index")
                                 .order_by(OutboxEffect.id.desc())).first()
        assert (effect.state, effect.attempts, effect.error_class) == (WorkState.PENDING, 1, "OSError")
    monkeypatch.undo()
    assert outbox.retry(rt, [effect.id]) == [effect.id]
    assert keys(corpus, find(rt, "narwhal")) == {"photo"}
    with rt.sessions() as session:
        assert session.get(OutboxEffect, effect.id).state == WorkState.DONE
