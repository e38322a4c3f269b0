"""Links that unfurl (kiln.web.unfurl, kiln.web.oembed): a media page's address given to an oEmbed
consumer and to an OpenGraph parser (extruct, from PyPI) yields its title, picture and player; nothing
of a private, unfinished or removed item; the embed page is the only one other sites may frame."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import quote, urlsplit

import extruct
import lxml.html
import pytest
from fastapi.testclient import TestClient

from kiln.accounts.models import User, UserPrivilege
from kiln.app import create_app
from kiln.config import load_settings
from kiln.media.models import MediaEntry
from kiln.moderation.removal import remove_media
from kiln.runtime import Runtime
from kiln.social import collections as collection_service
from kiln.social import shares
from tests.conftest import BASE_URL, inline_runtime
from tests.social_kit import log_in, person, upload


def opengraph(html: str) -> dict[str, list[str]]:
    """The page's OpenGraph properties as an unfurler reads them (every value of each, in order)."""
    found: dict[str, list[str]] = {}
    for block in extruct.extract(html, base_url=BASE_URL, syntaxes=["opengraph"], uniform=False)["opengraph"]:
        for name, value in block["properties"]:
            found.setdefault(name, []).append(value)
    return found


def named_meta(html: str) -> dict[str, str]:
    """``<meta name=...>`` tags (Twitter cards are named, not properties: extruct reads only the latter)."""
    tree = lxml.html.fromstring(html)
    return {m.get("name"): m.get("content") for m in tree.iter("meta") if m.get("name")}


def oembed_link(html: str) -> str | None:
    tree = lxml.html.fromstring(html)
    links = [link.get("href") for link in tree.iter("link")
             if link.get("rel") == "alternate" and link.get("type") == "application/json+oembed"]
    return links[0] if links else None


def local(url: str) -> str:
    """An absolute URL of this site as the path the test client asks for."""
    assert url.startswith(BASE_URL + "/"), url
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def oembed(client: TestClient, url: str, **params: Any) -> Any:
    return client.get("/oembed", params={"url": url, **params})


@pytest.fixture
def alice(rt: Runtime) -> int:
    return person(rt, "alice", display_name="Alice A.")


def test_an_image_page_unfurls_with_its_title_picture_and_oembed_photo(client, rt, alice):
    media_id = upload(rt, alice, "Harbour <at> dawn")
    with rt.sessions() as session:
        entry = session.get(MediaEntry, media_id)
        entry.description = "A *calm* morning & boats.\n\nSecond paragraph."
        session.commit()
    page_url = f"{BASE_URL}/u/alice/m/{media_id}"
    html = client.get(local(page_url)).text
    og = opengraph(html)
    assert og["og:title"] == ["Harbour <at> dawn"]
    assert og["og:url"] == [page_url]
    assert og["og:type"] == ["article"]
    assert og["og:site_name"] == [rt.settings.site_name]
    assert og["og:description"] == ["A calm morning & boats. Second paragraph."]
    image = og["og:image"][0]
    assert og["og:image:width"] == ["32"] and og["og:image:height"] == ["24"]
    assert og["og:image:alt"] == ["Harbour <at> dawn"]
    picture = client.get(local(image))
    assert picture.status_code == 200 and picture.headers["content-type"].startswith("image/")
    assert "og:video" not in og and "og:audio" not in og
    twitter = named_meta(html)
    assert twitter["twitter:card"] == "summary_large_image" and twitter["twitter:image"] == image

    discovered = oembed_link(html)
    assert discovered == f"{BASE_URL}/oembed?url={quote(page_url, safe='')}&format=json"
    answer = client.get(local(discovered))
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    data = answer.json()
    assert data["version"] == "1.0" and data["type"] == "photo"
    assert data["title"] == "Harbour <at> dawn"
    assert data["url"] == image and (data["width"], data["height"]) == (32, 24)
    assert data["author_name"] == "Alice A." and data["author_url"] == f"{BASE_URL}/u/alice"
    assert data["provider_name"] == rt.settings.site_name and data["provider_url"] == f"{BASE_URL}/"
    assert data["thumbnail_url"].startswith(BASE_URL) and data["thumbnail_width"] > 0
    # The embed page's address describes the same item.
    assert oembed(client, f"{BASE_URL}/m/{media_id}/embed").json() == data
    # maxwidth and maxheight shrink it, keeping its shape.
    small = oembed(client, page_url, maxwidth="16").json()
    assert (small["width"], small["height"]) == (16, 12)
    assert oembed(client, page_url, maxheight="6").json()["height"] == 6
    # XML, as the specification describes it.
    root = ET.fromstring(oembed(client, page_url, format="xml").content)
    assert root.tag == "oembed" and root.findtext("type") == "photo" and root.findtext("title") == "Harbour <at> dawn"


def test_video_and_audio_pages_name_their_file_and_the_embed_player(client, rt, alice, samples):
    with rt.sessions() as session:
        owner = session.get(User, alice)
        ids = {}
        for kind, path in (("video", samples("video")["landscape_mp4"]), ("audio", samples("audio")["mp3"])):
            from kiln.media import services as media_service

            with path.open("rb") as fh:
                ids[kind] = media_service.submit(rt, session, owner, fh, path.name,
                                                 media_service.MediaFields(title=f"My {kind}")).id
    for kind, media_id in ids.items():
        page_url = f"{BASE_URL}/u/alice/m/{media_id}"
        html = client.get(local(page_url)).text
        og, named = opengraph(html), named_meta(html)
        assert og["og:title"] == [f"My {kind}"]
        assert og["og:image"], kind  # the poster, the cover or the waveform
        assert client.get(local(og[f"og:{kind}"][0])).status_code == 200
        assert og[f"og:{kind}:type"] == (["video/mp4"] if kind == "video" else ["audio/mpeg"])
        assert og["og:type"] == (["video.other"] if kind == "video" else ["music.song"])
        assert named["twitter:card"] == "player"
        assert named["twitter:player"] == f"{BASE_URL}/m/{media_id}/embed"
        data = client.get(local(oembed_link(html) or "")).json()
        assert data["type"] == ("video" if kind == "video" else "rich")
        iframe = lxml.html.fromstring(data["html"])
        assert iframe.tag == "iframe" and iframe.get("src") == f"{BASE_URL}/m/{media_id}/embed"
        assert int(iframe.get("width")) == data["width"] and int(iframe.get("height")) == data["height"]
        assert data["width"] <= 640
        small = oembed(client, page_url, maxwidth="200", maxheight="150").json()
        assert small["width"] <= 200 and small["height"] <= 150
        embed = client.get(f"/m/{media_id}/embed")
        assert embed.status_code == 200
        player = lxml.html.fromstring(embed.text)
        assert player.xpath(f"//{kind}") and player.xpath(f"//a[@href='{page_url}']")
        assert "Log in" not in embed.text


def test_private_unfinished_and_removed_items_never_unfurl(client, rt, alice):
    private = upload(rt, alice, "Secret", visibility="private")
    unlisted = upload(rt, alice, "By link only", visibility="unlisted")
    removed = upload(rt, alice, "Taken down")
    admin = person(rt, "root")
    with rt.sessions() as session:
        root = session.get(User, admin)
        root.privileges.append(UserPrivilege(name="admin"))
        root.privileges.append(UserPrivilege(name="moderator"))
        session.commit()
        remove_media(rt, session, session.get(User, admin), session.get(MediaEntry, removed), reason="spam", via="web")
        session.commit()
    missing_page = client.get("/m/999999/embed")
    assert missing_page.status_code == 404
    for media_id in (private, removed):
        page_url = f"{BASE_URL}/u/alice/m/{media_id}"
        answer = oembed(client, page_url)
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_here"
        assert answer.json() == oembed(client, f"{BASE_URL}/u/alice/m/999999").json()
        embed = client.get(f"/m/{media_id}/embed")
        assert embed.status_code == 404 and embed.text == missing_page.text
    # Not even to the owner or an admin, who may see the page itself.
    for viewer, media_id in ((alice, private), (admin, removed), (admin, private)):
        log_in(client, rt, viewer)
        html = client.get(f"/u/alice/m/{media_id}").text
        assert "Secret" in html or "Taken down" in html
        assert opengraph(html) == {} and oembed_link(html) is None
        assert not any(name.startswith("twitter:") for name in named_meta(html))
        assert 'id="share-embed"' not in html
    client.cookies.clear()
    # An unlisted item unfurls for whoever has its link.
    html = client.get(f"/u/alice/m/{unlisted}").text
    assert opengraph(html)["og:title"] == ["By link only"] and 'id="share-link"' in html
    assert oembed(client, f"{BASE_URL}/u/alice/m/{unlisted}").status_code == 200
    assert client.get(f"/m/{unlisted}/embed").status_code == 200


BAD_OEMBED = [
    ({}, 422, "missing_url"),
    ({"url": "https://elsewhere.example/u/alice/m/{id}"}, 404, "not_here"),
    ({"url": "http://testserver.evil/u/alice/m/{id}"}, 404, "not_here"),
    ({"url": "{base}/u/bob/m/{id}"}, 404, "not_here"),
    ({"url": "{base}/tags"}, 404, "not_here"),
    ({"url": "javascript:alert(1)"}, 404, "not_here"),
    ({"url": "{base}/u/alice/m/99999999999999"}, 404, "not_here"),
    ({"url": "{base}/u/alice/m/{id}", "format": "yaml"}, 501, "format_not_implemented"),
    ({"url": "{base}/u/alice/m/{id}", "format": "j\u0000son"}, 400, "nul_character"),
    ({"url": "{base}/u/alice/m/{id}", "format": "JSON!"}, 422, "bad_format"),
    ({"url": "{base}/u/alice/m/{id}", "maxwidth": "wide"}, 422, "bad_size"),
    ({"url": "{base}/u/alice/m/{id}", "maxheight": "0"}, 422, "bad_size"),
    ({"url": "{base}/u/alice/m/{id}", "maxwidth": "99999999999"}, 422, "bad_size"),
]


def test_bad_oembed_requests_get_a_json_sentence(client, rt, alice):
    media_id = upload(rt, alice, "Boats")
    for params, status, code in BAD_OEMBED:
        filled = {k: v.format(base=BASE_URL, id=media_id) for k, v in params.items()}
        answer = client.get("/oembed", params=filled)
        assert answer.status_code == status, (params, answer.text)
        error = answer.json()["error"]
        assert error["code"] == code, (params, error)
        assert error["message"][0].isupper() and error["message"].endswith("."), error


def test_only_the_embed_page_may_be_framed_by_other_sites(client, rt, alice):
    media_id = upload(rt, alice, "Framed")
    embed = client.get(f"/m/{media_id}/embed")
    policy = embed.headers["content-security-policy"]
    assert "frame-ancestors *" in policy and "x-frame-options" not in embed.headers
    assert "default-src 'self'" in policy and "script-src 'self'" in policy and "object-src 'none'" in policy
    assert "set-cookie" not in embed.headers
    assert "<script" not in embed.text and "<form" not in embed.text
    collection = _collection(rt, alice, media_id, "public")
    for path in ("/", f"/u/alice/m/{media_id}", "/u/alice", f"/c/{collection}", "/tags", "/auth/login",
                 f"/oembed?url={quote(BASE_URL)}%2Fu%2Falice%2Fm%2F{media_id}", "/m/999999/embed", "/feeds/atom"):
        answer = client.get(path)
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"], path
        assert answer.headers["x-frame-options"] == "DENY", path


def _collection(rt: Runtime, owner_id: int, media_id: int, visibility: str) -> int:
    with rt.sessions() as session:
        owner = session.get(User, owner_id)
        collection = collection_service.create(session, owner, f"Album {visibility}", "Boats *and* sea",
                                               visibility=visibility)
        collection_service.add_item(session, owner, collection, session.get(MediaEntry, media_id))
        session.commit()
        return collection.id


def test_collections_and_profiles_unfurl_when_anybody_may_see_them(client, rt, alice):
    shown = upload(rt, alice, "Cover")
    hidden = upload(rt, alice, "Hidden cover", visibility="private")
    public = _collection(rt, alice, shown, "public")
    private = _collection(rt, alice, hidden, "private")
    og = opengraph(client.get(f"/c/{public}").text)
    assert og["og:title"] == ["Album public"] and og["og:description"] == ["Boats and sea"]
    assert og["og:url"] == [f"{BASE_URL}/c/{public}"] and og["og:image"]
    with rt.sessions() as session:
        collection = session.get(collection_service.Collection, private)
        _, token = shares.make_share(session, session.get(User, alice), collection)
        session.commit()
    shared = client.get(f"/c/{private}", params={"share": token})
    assert shared.status_code == 200 and "Hidden cover" in shared.text
    assert opengraph(shared.text) == {}, "a share link's private collection must not unfurl"
    log_in(client, rt, alice)
    assert opengraph(client.get(f"/c/{private}").text) == {}
    # An item only a share link opens: no tags, no share box; its own address stays private.
    through_link = client.get(f"/u/alice/m/{hidden}", params={"share": token})
    client.cookies.clear()
    through_link = client.get(f"/u/alice/m/{hidden}", params={"share": token})
    assert through_link.status_code == 200
    assert opengraph(through_link.text) == {} and 'id="share-link"' not in through_link.text
    # The profile: name, bio, type profile.
    with rt.sessions() as session:
        session.get(User, alice).bio = "I take *pictures* of boats."
        session.commit()
    og = opengraph(client.get("/u/alice").text)
    assert og["og:type"] == ["profile"] and og["og:title"] == ["Alice A."]
    assert og["og:description"] == ["I take pictures of boats."] and og["og:url"] == [f"{BASE_URL}/u/alice"]


def test_the_share_box_offers_the_link_and_embed_code_without_javascript(client, rt, alice):
    media_id = upload(rt, alice, "Share me")
    tree = lxml.html.fromstring(client.get(f"/u/alice/m/{media_id}").text)
    link = tree.get_element_by_id("share-link")
    assert link.get("readonly") is not None and link.get("value") == f"{BASE_URL}/u/alice/m/{media_id}"
    code = tree.get_element_by_id("share-embed")
    assert code.get("readonly") is not None
    iframe = lxml.html.fromstring(code.text)
    assert iframe.get("src") == f"{BASE_URL}/m/{media_id}/embed"
    assert iframe.get("width") == "32" and iframe.get("height") == str(24 + 40)
    buttons = tree.xpath("//button[contains(@class, 'share-copy')]")
    assert len(buttons) == 2 and all(b.get("hidden") is not None for b in buttons)  # share.js shows them
    assert tree.xpath("//script[contains(@src, 'share.js')]")


@pytest.fixture
def unset_rt(tmp_path, db_url, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.delenv("KILN_BASE_URL", raising=False)
    settings = load_settings(data_dir=tmp_path / "data", database_url=db_url)
    assert settings.base_url is None
    yield from inline_runtime(settings)


def test_without_base_url_each_address_gets_its_own_links_even_from_kept_parts(unset_rt):
    """The tags and the share box are kept per generation for logged-in visitors (kiln.web.fragments):
    with base_url unset the address a request came to is part of their key, so one visitor's Host header
    never reaches another's page."""
    rt = unset_rt
    owner, viewer = person(rt, "alice"), person(rt, "bob")
    media_id = upload(rt, owner, "Lake")
    with TestClient(create_app(rt.settings, rt), base_url="http://photos.lan:7801") as client:
        log_in(client, rt, viewer)
        for host in ("photos.lan:7801", "evil.example", "photos.lan:7801"):
            html = client.get(f"/u/alice/m/{media_id}", headers={"host": host}).text
            assert opengraph(html)["og:url"] == [f"http://{host}/u/alice/m/{media_id}"]
            tree = lxml.html.fromstring(html)
            assert tree.get_element_by_id("share-link").get("value") == f"http://{host}/u/alice/m/{media_id}"
            assert f"http://{host}/m/{media_id}/embed" in tree.get_element_by_id("share-embed").text
            assert (host == "evil.example") == ("evil.example" in html)
        # oEmbed takes addresses of the site as the request reached it, and no other.
        page = f"http://photos.lan:7801/u/alice/m/{media_id}"
        assert client.get("/oembed", params={"url": page}).status_code == 200
        assert client.get("/oembed", params={"url": page}, headers={"host": "evil.example"}).status_code == 404


@pytest.mark.parametrize(("kind", "sample"), [("pdf", "one_page"), ("text", "scene"), ("model3d", "glb")])
def test_documents_text_and_models_are_rich_embeds_with_their_picture(client, rt, alice, samples, kind, sample):
    from kiln.media import services as media_service

    path = samples(kind)[sample]
    with rt.sessions() as session, path.open("rb") as fh:
        media_id = media_service.submit(rt, session, session.get(User, alice), fh, path.name,
                                        media_service.MediaFields(title=f"A {kind}")).id
    page_url = f"{BASE_URL}/u/alice/m/{media_id}"
    html = client.get(local(page_url)).text
    og = opengraph(html)
    assert og["og:title"] == [f"A {kind}"] and og["og:type"] == ["article"]
    assert client.get(local(og["og:image"][0])).status_code == 200
    assert named_meta(html)["twitter:card"] == "summary_large_image"
    data = client.get(local(oembed_link(html) or "")).json()
    assert data["type"] == "rich" and data["title"] == f"A {kind}"
    assert lxml.html.fromstring(data["html"]).get("src") == f"{BASE_URL}/m/{media_id}/embed"
    embed = lxml.html.fromstring(client.get(f"/m/{media_id}/embed").text)
    assert embed.xpath("//img[@class='embed-picture']") and embed.xpath(f"//a[@href='{page_url}']")
