"""Every image format through the real app: upload, processing, the media page and the gallery."""

from __future__ import annotations

import datetime as dt
import io
import re
import time
from types import SimpleNamespace

from PIL import Image
from tests.conftest import csrf, register

from kiln.media.models import MediaEntry
from kiln.mediatypes.image.still import placeholder_src


def upload(client, path):  # type: ignore[no-untyped-def]
    files = [("file", (path.name, path.read_bytes(), "application/octet-stream"))]
    return client.post("/upload", data={"csrf_token": csrf(client, "/upload")}, files=files, follow_redirects=False)


def entry(rt, name: str) -> MediaEntry:  # type: ignore[no-untyped-def]
    with rt.sessions() as session:
        found = session.query(MediaEntry).filter_by(original_name=name).order_by(MediaEntry.id.desc()).first()
        assert found is not None, name
        found.renditions  # noqa: B018 -- load them before the session closes
        session.expunge(found)
        return found


def test_every_sample_publishes_with_a_clean_thumbnail_and_a_page(client, settings, rt, samples):
    register(client, settings)
    for label, path in samples("image").items():
        resp = upload(client, path)
        assert resp.status_code < 400, (label, resp.status_code, resp.text[:300])
        media = entry(rt, path.name)
        assert (media.kind, media.state) == ("image", "processed"), (label, media.error_message)
        thumb = media.rendition("thumbnail")
        served = client.get(rt.stores.public.url(thumb.key))
        assert served.status_code == 200 and served.headers["content-type"] in ("image/jpeg", "image/webp"), label
        assert b"Exif\x00\x00" not in served.content and b"GPS" not in served.content, label
        assert (media.info or {}).get("blurhash"), label
        page = client.get(f"/u/alice/m/{media.id}")
        assert page.status_code == 200 and media.title in page.text, label
    gallery = client.get("/u/alice")
    assert len(re.findall(r'href="/u/alice/m/\d+"', gallery.text)) == len(samples("image"))


def test_every_hostile_file_is_refused_or_fails_with_a_reason(client, settings, rt, hostile):
    register(client, settings)
    for label, path in hostile("image").items():
        started = time.monotonic()
        resp = upload(client, path)
        assert time.monotonic() - started < 10, label
        assert resp.status_code < 500, label
        if resp.status_code >= 400:
            assert re.search(r"[A-Za-z]{3,}[^.<]*\.", re.sub(r"<[^>]+>", " ", resp.text)), label
            continue
        media = entry(rt, path.name)
        assert media.state == "failed" and media.error_message, (label, media.state)


def test_animated_gif_plays_on_its_page_and_shows_a_badge(client, settings, rt, images):
    register(client, settings)
    upload(client, images["gif"])
    media = entry(rt, images["gif"].name)
    animated, medium = media.rendition("animated"), media.rendition("medium")
    page = client.get(f"/u/alice/m/{media.id}").text
    assert '<source media="(prefers-reduced-motion: no-preference)"' in page
    assert rt.stores.public.url(animated.key) in page and rt.stores.public.url(medium.key) in page
    served = client.get(rt.stores.public.url(animated.key))
    assert served.headers["content-type"] == "image/webp"
    with Image.open(io.BytesIO(served.content)) as image:
        assert image.n_frames == 3
    assert "▶ animated" in client.get("/u/alice").text


def test_heic_page_shows_an_upright_jpeg(client, settings, rt, images):
    register(client, settings)
    upload(client, images["heic"])
    media = entry(rt, images["heic"].name)
    assert (media.mime_type, media.width, media.height) == ("image/heic", 480, 640)
    assert media.gps_lat is not None  # read for the owner, never published in a rendition
    medium = media.rendition("medium")
    assert (medium.mime_type, medium.width, medium.height) == ("image/jpeg", 480, 640)


def test_gallery_paints_placeholders_without_inline_style_or_script(client, settings, rt, images):
    register(client, settings)
    upload(client, images["camera"])
    upload(client, images["alpha_png"])
    # The web layer registers this global (templating.py); set it here the same way.
    client.app.state.templates.env.globals["placeholder_src"] = placeholder_src
    html = client.get("/u/alice").text
    grid = html[html.index('<ul class="grid">'):html.index("</ul>", html.index('<ul class="grid">'))]
    placeholders = re.findall(r'<img class="placeholder" src="(data:image/png;base64,[^"]+)" width="(\d+)" '
                              r'height="(\d+)"', grid)
    assert len(placeholders) == 1  # the transparent PNG's WebP thumbnail gets none: it would show through
    assert placeholders[0][1:] == ("120", "180")
    assert "style=" not in grid and "<script" not in grid and " on" not in grid.replace(" one", "")
    assert "kinds/image.css" in html


def test_grid_paints_each_thumbnail_on_its_placeholder(client, settings, rt, images):
    register(client, settings)
    upload(client, images["plain"])
    html = client.get("/u/alice").text
    assert '<img class="picture"' in html
    assert re.search(r'<img class="placeholder" src="data:image/png;base64,[A-Za-z0-9+/=]+"', html)


def _item(kind: str, info: dict, index: int = 1, sharp: bool = False):  # type: ignore[no-untyped-def]
    renditions = {"thumbnail": SimpleNamespace(key=["entries", str(index), "thumbnail.jpg"], width=180, height=120,
                                               mime_type="image/jpeg")}
    if sharp:
        renditions["thumbnail_2x"] = SimpleNamespace(key=["entries", str(index), "thumbnail_2x.jpg"], width=360,
                                                     height=240, mime_type="image/jpeg")
    return SimpleNamespace(id=index, kind=kind, info=info, title=f"{kind} {index}", alt=f"{kind} {index}",
                           owner=SimpleNamespace(username="alice", display_name="Alice Liddell"),
                           published=dt.datetime(2026, 3, 14, 22, 30, tzinfo=dt.UTC),
                           visibility="public", state="processed", favourite_count=0, comment_count=0,
                           rendition=renditions.get)


def test_badges_tell_kinds_apart(client):
    env = client.app.state.templates.env
    items = [
        _item("video", {"duration": 12.4}, 1),
        _item("audio", {"duration": 3725.0}, 2),
        _item("pdf", {"pages": 12}, 3),
        _item("pdf", {"pages": 1}, 4),
        _item("image", {"frames": 1}, 5),
        _item("video", {"duration": "junk"}, 6),
        _item("model3d", {}, 7),
        _item("image", {"frames": 8}, 8),
    ]
    html = env.get_template("_grid.html").render(page=SimpleNamespace(items=items, next_cursor=None))
    badges = re.findall(r'<span class="badge">([^<]*)</span>', html)
    assert badges == ["▶ 0:12", "♪ 1:02:05", "12 pages", "1 page", "3D", "▶ animated"]


def test_cards_offer_the_2x_thumbnail_and_say_who_and_when(client):
    env = client.app.state.templates.env
    html = env.get_template("_grid.html").render(page=SimpleNamespace(
        items=[_item("image", {}, 1, sharp=True), _item("image", {}, 2)], next_cursor=None))
    sharp, old = html.split("<li>")[1:]
    src = re.search(r'srcset="([^"]+)"', sharp)
    assert src and src.group(1) == ("/media/entries/1/thumbnail.jpg 180w, /media/entries/1/thumbnail_2x.jpg 360w")
    assert 'sizes="(min-width: 600px) 300px, 45.0vw"' in sharp  # a 3:2 picture drawn wider than its square
    assert "srcset" not in old and 'src="/media/entries/2/thumbnail.jpg"' in old  # made before the 2x: 1x alone
    for card in (sharp, old):
        assert '<a href="/u/alice">Alice Liddell</a>' in card
        assert '<time datetime="2026-03-14">Mar 14, 2026</time>' in card
