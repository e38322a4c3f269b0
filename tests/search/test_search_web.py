"""The search page, its API, the feed of a search and the OpenSearch description, on the corpus of
the conformance suite (items straight in the database)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import feedparser
import pytest

from tests.search.test_conformance import corpus  # noqa: F401  (a fixture)
from tests.test_api import token_for

pytestmark = pytest.mark.db


def test_the_page_finds_shows_and_pages_results_without_javascript(client, corpus):  # type: ignore[no-untyped-def]  # noqa: F811
    page = client.get("/search", params={"q": "old pier"})
    assert page.status_code == 200
    html = page.text
    assert f'/u/bo/m/{corpus["pier"]}"' in html and f'/u/bo/m/{corpus["reverse"]}"' in html
    assert 'value="old pier"' in html and 'role="search"' in html
    assert "/feeds/search/atom?q=old+pier" in html and 'aria-current="page">Best match' in html
    first = client.get("/search", params={"q": "", "owner": "bo", "sort": "oldest"})
    assert first.status_code == 200 and "More results" not in first.text  # 5 items, one page
    nothing = client.get("/search", params={"q": "lighthouse"})
    assert nothing.status_code == 200 and "Nothing matches “lighthouse”." in nothing.text
    empty = client.get("/search")
    assert empty.status_code == 200 and 'class="grid"' not in empty.text and "autofocus" in empty.text
    top = client.get("/").text  # every page has the box, and tells browsers about OpenSearch
    assert 'action="/search"' in top and 'rel="search" type="application/opensearchdescription+xml"' in top


def test_bad_filters_get_the_form_back_with_a_sentence(client, corpus):  # type: ignore[no-untyped-def]  # noqa: F811
    page = client.get("/search", params={"q": "pier", "since": "last week"})
    assert page.status_code == 422
    assert "Dates are written as year-month-day" in page.text and 'value="pier"' in page.text
    api = client.get("/api/v1/search", params={"q": "pier", "kind": "hologram"})
    assert api.status_code == 422 and "hologram" in api.json()["error"]["message"]
    assert client.get("/api/v1/search").status_code == 422  # nothing asked


def test_the_api_pages_with_cursors_and_shows_owners_their_private_items(client, rt, corpus):  # type: ignore[no-untyped-def]  # noqa: F811
    got = client.get("/api/v1/search", params={"q": "", "owner": "bo", "limit": 2, "sort": "newest"}).json()
    seen = [item["id"] for item in got["items"]]
    while got["next"]:
        got = client.get("/api/v1/search", params={"owner": "bo", "limit": 2, "sort": "newest",
                                                   "cursor": got["next"]}).json()
        seen += [item["id"] for item in got["items"]]
    assert len(seen) == len(set(seen)) == 5
    assert client.get("/api/v1/search", params={"q": "lighthouse"}).json()["items"] == []
    with rt.sessions() as session:  # every rendition of an item is in its JSON, as in GET /api/v1/media/{id}
        from kiln.media.models import MediaEntry, Rendition

        media = session.get(MediaEntry, corpus["pier"])
        for name in ("thumbnail", "medium"):
            media.renditions.append(Rendition(name=name, key=media.rendition_key(f"{name}.jpg"), mime_type="image/jpeg",
                                              width=10, height=10, size_bytes=1, spec_fingerprint="x"))
        session.commit()
    found = client.get("/api/v1/search", params={"q": "old pier "}).json()["items"]
    assert set(next(i for i in found if i["id"] == corpus["pier"])["renditions"]) == {"thumbnail", "medium"}
    auth = token_for(client, "ada", scope="read")
    mine = client.get("/api/v1/search", params={"q": "lighthouse"}, headers=auth).json()["items"]
    assert {item["title"] for item in mine} == {"Secret lighthouse", "Hidden lighthouse"}


def test_the_feed_of_a_search_is_atom_with_public_items_only(client, corpus):  # type: ignore[no-untyped-def]  # noqa: F811
    auth = token_for(client, "ada", scope="read")
    resp = client.get("/feeds/search/atom", params={"q": "lighthouse"}, headers=auth)  # even for the owner
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/atom+xml")
    assert feedparser.parse(resp.content).entries == []
    feed = feedparser.parse(client.get("/feeds/search/atom", params={"q": "old pier"}).content)
    assert {e.title for e in feed.entries} == {"Evening", "Morning"}
    assert "old pier" in feed.feed.title


def test_the_opensearch_description(client):  # type: ignore[no-untyped-def]
    resp = client.get("/opensearch.xml")
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/opensearchdescription+xml"
    root = ET.fromstring(resp.content)
    ns = "{http://a9.com/-/spec/opensearch/1.1/}"
    templates = {u.get("type"): u.get("template") for u in root.iter(f"{ns}Url")}
    assert templates["text/html"] == "http://testserver/search?q={searchTerms}"
    assert templates["application/atom+xml"] == "http://testserver/feeds/search/atom?q={searchTerms}"


def test_a_kept_search_page_follows_the_index(client, rt, corpus):  # type: ignore[no-untyped-def]  # noqa: F811
    """Search pages are kept by the anonymous page cache per generation of the site; rewriting the
    index moves the generation on, so a page kept before an item's entry was rewritten is not served
    after it."""
    from kiln.media.models import MediaEntry
    from kiln.search.upkeep import index_media

    assert "Nothing matches" in client.get("/search", params={"q": "narwhal"}).text
    with rt.sessions() as session:  # the index learns of a title the page cache has not seen change
        session.execute(MediaEntry.__table__.update().where(MediaEntry.id == corpus["photo"])
                        .values(title="A narwhal"))
        session.commit()
    index_media(rt, [corpus["photo"]])
    assert f'/m/{corpus["photo"]}"' in client.get("/search", params={"q": "narwhal"}).text


def test_explore_shows_this_weeks_favourites_popular_tags_and_the_newest(client, rt, corpus):  # type: ignore[no-untyped-def]  # noqa: F811
    import datetime as dt

    from kiln.accounts import services as accounts
    from kiln.db.base import utcnow
    from kiln.social.models import Favourite

    with rt.sessions() as session:
        ada, bo, cy = (accounts.get_user(session, n) for n in ("ada", "bo", "cy"))
        week_ago = utcnow() - dt.timedelta(days=8)
        session.add_all([Favourite(user_id=bo.id, media_id=corpus["cafe"]),
                         Favourite(user_id=cy.id, media_id=corpus["cafe"]),
                         Favourite(user_id=cy.id, media_id=corpus["pier"]),
                         Favourite(user_id=ada.id, media_id=corpus["pier"], created=week_ago),  # last week
                         Favourite(user_id=ada.id, media_id=corpus["reverse"], created=week_ago),
                         Favourite(user_id=bo.id, media_id=corpus["private"])])  # never shown
        session.commit()
    page = client.get("/explore")
    assert page.status_code == 200
    popular = page.text.split('id="explore-popular"')[1].split("</section>")[0]
    assert popular.index(f'/m/{corpus["cafe"]}"') < popular.index(f'/m/{corpus["pier"]}"')
    assert f'/m/{corpus["reverse"]}"' not in popular and f'/m/{corpus["private"]}"' not in popular
    assert '<a href="/tag/paris">' in page.text and '<a href="/tags">All tags</a>' in page.text
    newest = page.text.split('id="explore-newest"')[1]
    assert f'/m/{corpus["straße"]}"' in newest and f'/m/{corpus["private"]}"' not in newest


def test_a_gallery_narrowed_by_kind_and_tag_and_ordered(client, rt, corpus):  # type: ignore[no-untyped-def]  # noqa: F811
    from tests.test_collections import login

    def shown(html: str) -> list[int]:
        import re
        return [int(n) for n in re.findall(r'href="/u/[^/"]+/m/([0-9]+)"', html)]

    bo_public = [corpus[k] for k in ("photo", "pier", "reverse", "pdf", "straße")]  # in publication order
    assert shown(client.get("/u/bo", params={"sort": "oldest"}).text) == bo_public
    assert shown(client.get("/u/bo", params={"sort": "newest"}).text) == bo_public[::-1]
    assert shown(client.get("/u/bo", params={"kind": "pdf"}).text) == [corpus["pdf"]]
    assert shown(client.get("/u/bo", params={"tag": "evening"}).text) == [corpus["pier"]]
    paged = client.get("/u/bo", params={"sort": "oldest", "kind": "image"})
    assert paged.status_code == 200 and 'selected>Oldest first' in paged.text
    assert client.get("/u/bo", params={"sort": "sideways"}).status_code == 422
    assert corpus["private"] not in shown(client.get("/u/ada", params={"sort": "oldest"}).text)
    own = login(rt, "ada").get("/u/ada", params={"sort": "oldest"}).text  # the owner's own view: all hers
    assert {corpus["private"], corpus["unlisted"]} <= set(shown(own)) and corpus["queued"] not in shown(own)
