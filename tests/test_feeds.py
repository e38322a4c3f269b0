"""Atom 1.0 feeds for the site, a user and a tag."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import feedparser
import pytest

from tests.test_api import make_user, token_for

ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.mark.db
def test_site_user_and_tag_feeds_are_valid_atom(client, rt, images):
    make_user(rt)
    auth = token_for(client)
    ids = []
    for name, title in (("plain", "A & B <tricky>"), ("flat_png", "Flat")):
        with images[name].open("rb") as fh:
            ids.append(client.post("/api/v1/media", headers=auth, files={"file": (name, fh, "image/jpeg")},
                                   data={"title": title, "tags": "feedtag",
                                         "description": "Some *markdown* & more"}).json()["id"])
    for path in ("/feeds/atom", "/feeds/u/alice/atom", "/feeds/tag/feedtag/atom"):
        resp = client.get(path)
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/atom+xml")
        root = ET.fromstring(resp.content)  # well-formed XML
        assert root.tag == f"{ATOM}feed"
        for required in ("id", "title", "updated"):
            assert root.find(f"{ATOM}{required}") is not None
        feed = feedparser.parse(resp.content)
        assert not feed.bozo, feed.bozo_exception
        assert feed.version == "atom10"
        links = [entry.link for entry in feed.entries]
        assert links == [f"http://testserver/u/alice/m/{i}" for i in reversed(ids)]
        entry = feed.entries[1]
        assert entry.title == "A & B <tricky>"
        assert "<em>markdown</em>" in entry.content[0].value
        assert 'src="http://testserver/media/entries/' in entry.content[0].value
        assert entry.author == "alice"
        for e in root.iter(f"{ATOM}entry"):
            for required in ("id", "title", "updated", "author"):
                assert e.find(f"{ATOM}{required}") is not None
    assert client.get("/feeds/tag/nope/atom").status_code == 404
    assert client.get("/feeds/u/nobody/atom").status_code == 404


def test_enclosures_are_the_media_itself_with_length_and_type(client, rt, images, samples):
    """Podcast and video readers play the enclosure: it is the video, the sound, the medium image;
    the thumbnail comes as Media RSS."""
    make_user(rt)
    auth = token_for(client)
    uploads = {"photo": images["plain"], "song": samples("audio")["mp3"], "clip": samples("video")["landscape_mp4"]}
    for title, path in uploads.items():
        with path.open("rb") as fh:
            resp = client.post("/api/v1/media", headers=auth, files={"file": (path.name, fh)}, data={"title": title})
        assert resp.status_code in (201, 202), resp.text
    feed = feedparser.parse(client.get("/feeds/atom").content)
    assert not feed.bozo, feed.bozo_exception
    expected = {"photo": ("image/", "medium"), "song": ("audio/", "audio"), "clip": ("video/mp4", "video-")}
    for entry in feed.entries:
        media = client.get(entry.link.replace("http://testserver/u/alice/m/", "/api/v1/media/")).json()
        prefix, rendition = expected[entry.title]
        (enclosure,) = [link for link in entry.links if link.rel == "enclosure"]
        assert enclosure.type.startswith(prefix), (entry.title, enclosure.type)
        named = [r for name, r in media["renditions"].items()
                 if name.startswith(rendition) and r["url"] == enclosure.href]
        assert named, (entry.title, enclosure.href, media["renditions"])
        body = client.get(enclosure.href.removeprefix("http://testserver")).content
        assert int(enclosure.length) == len(body) == named[0]["bytes"] > 0
        assert entry.media_thumbnail[0]["url"] == media["renditions"]["thumbnail"]["url"]


def test_control_characters_never_break_a_feed(client, rt, images):
    """Typed text loses what XML forbids on the way in; what is already stored is cleaned on the way out."""
    from sqlalchemy import update

    from kiln.accounts.models import User
    from kiln.media.models import MediaEntry

    make_user(rt)
    auth = token_for(client)
    with images["plain"].open("rb") as fh:
        item = client.post("/api/v1/media", headers=auth, files={"file": ("p.jpg", fh)},
                           data={"title": "bell\x07 escape\x1b", "tags": "t\x07ag", "description": "d\x0c"}).json()
    assert item["title"] == "bell escape" and item["tags"] == ["tag"] and item["description"] == "d"
    with rt.sessions() as session:  # as stored before input was cleaned
        session.execute(update(MediaEntry).values(title="old\x07title\x1b", description="x\x01y"))
        session.execute(update(User).values(display_name="Al\x1bice\ufffe"))
        session.commit()
    for path in ("/feeds/atom", "/feeds/u/alice/atom", "/feeds/tag/tag/atom"):
        body = client.get(path).content
        ET.fromstring(body)  # well-formed
        feed = feedparser.parse(body)
        assert not feed.bozo, (path, feed.bozo_exception)
        assert feed.entries[0].title == "oldtitle" and feed.entries[0].author == "Alice"
