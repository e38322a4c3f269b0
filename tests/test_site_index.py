"""The tag index (/tags) and the site's icon."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image
from sqlalchemy import update

from kiln.media.models import MediaEntry
from kiln.web.templating import STATIC_DIR
from tests.test_api import make_user
from tests.test_caching import PLAIN, add_items, counting


def tag_list(html: str) -> list[tuple[str, str, int]]:
    """(slug, name, count) of every tag on the index, in order."""
    return [(slug, name.strip(), int(count)) for slug, name, count in re.findall(
        r'<li><a href="/tag/([^"]+)">([^<]+)<span class="count"><span class="visually-hidden">Public items:</span> '
        r'(\d+)</span></a></li>', html)]


@pytest.mark.db
def test_the_tag_index_counts_public_published_items_only(client, rt):
    make_user(rt)
    sea = add_items(rt, "alice", 3, tags=("sea", "sky"))
    add_items(rt, "alice", 2, tags=("rock",))
    add_items(rt, "alice", 1, tags=("zebra",))
    add_items(rt, "alice", 1, tags=("apple",))
    hidden = add_items(rt, "alice", 4, tags=("secret", "sea"))
    with rt.sessions() as session:  # private, unlisted, failed and still queued: none of them counts
        for media_id, values in zip(hidden, ({"visibility": "private"}, {"visibility": "unlisted"},
                                             {"state": "failed"}, {"state": "queued", "published": None}),
                                    strict=True):
            session.execute(update(MediaEntry).where(MediaEntry.id == media_id).values(**values))
        session.commit()

    by_use = client.get("/tags", headers=PLAIN)
    assert by_use.status_code == 200
    assert tag_list(by_use.text) == [("sea", "sea", 3), ("sky", "sky", 3), ("rock", "rock", 2),
                                     ("apple", "apple", 1), ("zebra", "zebra", 1)]
    assert '<a href="/tags" aria-current="page">Most used</a>' in by_use.text
    by_name = client.get("/tags?sort=name")
    assert [slug for slug, _, _ in tag_list(by_name.text)] == ["apple", "rock", "sea", "sky", "zebra"]
    assert '<a href="/tags?sort=name" aria-current="page">A to Z</a>' in by_name.text

    # Linked from the explore page (in the navigation of every page) and from each tag page.
    assert '<a href="/explore">Explore</a>' in client.get("/").text
    assert '<a href="/tags">All tags</a>' in client.get("/explore").text
    tag_page = client.get("/tag/sea").text
    assert '<a href="/tags">All tags</a>' in tag_page

    # Kept by the anonymous page cache, and changed as soon as what counts changes.
    with counting(rt) as statements:
        assert client.get("/tags", headers=PLAIN).text == by_use.text
    assert statements == []
    with rt.sessions() as session:
        session.execute(update(MediaEntry).where(MediaEntry.id == sea[0]).values(visibility="private"))
        session.commit()
    assert tag_list(client.get("/tags").text)[:3] == [("rock", "rock", 2), ("sea", "sea", 2), ("sky", "sky", 2)]


def test_an_empty_site_says_there_are_no_tags_yet(client):
    page = client.get("/tags")
    assert page.status_code == 200 and "No public media has tags yet." in page.text


def test_the_site_has_an_icon_browsers_find_at_favicon_ico_and_in_every_page(client):
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/vnd.microsoft.icon"
    assert icon.content == (STATIC_DIR / "favicon.ico").read_bytes()
    with Image.open(io.BytesIO(icon.content)) as image:
        assert image.format == "ICO" and {(16, 16), (32, 32)} <= image.ico.sizes()
    page = client.get("/auth/login").text
    links = dict(re.findall(r'<link rel="icon" href="(/static/favicon\.(?:ico|svg)\?v=[0-9a-f]+)"[^>]*?'
                            r'(?:type="([^"]+)")?>', page))
    assert len(links) == 2, links
    for link in links:
        served = client.get(link)
        assert served.status_code == 200 and "immutable" in served.headers["cache-control"]
    svg = (STATIC_DIR / "favicon.svg").read_text()
    assert "<script" not in svg and "style" not in svg and " on" not in svg  # nothing the CSP would block
    assert "img-src 'self'" in client.get("/").headers["content-security-policy"]
